#!/usr/bin/env bash
# Benchmarks the embedded registry beside Distribution (`docker-registry`) on this machine, in
# one run: manifest GET and 1 MiB blob GET throughput with the same client (wrk), the same
# data and the same settings, then each server's peak memory (GNU time) during a 1 GiB blob
# upload. Everything runs on 127.0.0.1, each load is bounded in time, and all files go to a
# temp dir removed at exit.
#
# Settings: DURATION (per wrk run, default 10s), CONNECTIONS (default 32), THREADS (wrk
# threads, default 2), BIG_MIB (size of the upload, default 1024), WREG_BIN (a cargo-wreg
# binary to use instead of building one in release mode).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
BIG_MIB="${BIG_MIB:-1024}"
IMAGE=application/vnd.oci.image.manifest.v1+json

step() { printf '\n==> %s\n' "$*" >&2; }

step "Checking tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v curl >/dev/null || missing+=(curl)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing: ${missing[*]} (apt-get install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wreg="${WREG_BIN:-}"
if [[ -z "$wreg" ]]; then
    step "Building cargo-wreg (release)"
    cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml" --bin cargo-wreg
    wreg="$repo/target/release/cargo-wreg"
fi

work="$(mktemp -d)"
pids=()
# Servers run under GNU time, which does not pass signals on: signal its child instead.
signal_server() {
    pkill "-$1" -P "$2" 2>/dev/null || true
}
cleanup() {
    for pid in "${pids[@]}"; do signal_server KILL "$pid"; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `$1/v2/` answers.
wait_ready() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "$1/v2/" && return 0
        sleep 0.1
    done
    echo "server at $1 did not start" >&2
    exit 1
}

# Starts the embedded registry (request log off, like Distribution's below) under GNU time;
# sets `wreg_url` and `wreg_pid`.
start_wreg() {
    local storage="$1" times="$2"
    /usr/bin/time -v -o "$times" "$wreg" -q registry serve --addr 127.0.0.1:0 \
        --storage "$storage" >"$work/wreg.url" 2>"$work/wreg.log" &
    wreg_pid=$!
    pids+=("$wreg_pid")
    for _ in $(seq 100); do [[ -s "$work/wreg.url" ]] && break; sleep 0.1; done
    wreg_url="$(head -n1 "$work/wreg.url")"
    wait_ready "$wreg_url"
}

# Starts Distribution with a config like its Debian default, minus auth and request logs;
# sets `dist_url` and `dist_pid`.
start_distribution() {
    local storage="$1" times="$2" port
    port="$(free_port)"
    cat >"$work/distribution.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $storage
http:
  addr: 127.0.0.1:$port
EOF
    /usr/bin/time -v -o "$times" docker-registry serve "$work/distribution.yml" \
        >"$work/distribution.log" 2>&1 &
    dist_pid=$!
    pids+=("$dist_pid")
    dist_url="http://127.0.0.1:$port"
    wait_ready "$dist_url"
}

# Stops a server started under GNU time and prints its peak resident memory in KiB.
stop_and_peak() {
    local pid="$1" times="$2"
    signal_server TERM "$pid"
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 600); do
        grep -q 'Maximum resident' "$times" 2>/dev/null && break
        sleep 0.1
    done
    awk -F': ' '/Maximum resident set size/ {print $2}' "$times"
}

sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# Uploads file $3 to repository $2 of registry $1: POST a session, then PUT the content.
upload() {
    local base="$1" repo="$2" file="$3" digest location separator
    digest="$(sha "$file")"
    location="$(curl -sS -D - -o /dev/null -X POST "$base/v2/$repo/blobs/uploads/" |
        awk -F': ' 'tolower($1) == "location" {print $2}' | tr -d '\r')"
    [[ "$location" == http* ]] || location="$base$location"
    separator='?'
    [[ "$location" == *'?'* ]] && separator='&'
    curl -sS --fail -o /dev/null -T "$file" -H 'Content-Type: application/octet-stream' \
        "$location${separator}digest=$digest"
}

# Pushes the benchmark data to registry $1: a 1 MiB layer, a config and a manifest.
seed() {
    local base="$1"
    upload "$base" bench/app "$work/layer"
    upload "$base" bench/app "$work/config"
    curl -sS --fail -o /dev/null -X PUT -H "Content-Type: $IMAGE" \
        --data-binary @"$work/manifest.json" "$base/v2/bench/app/manifests/1.0.0"
}

# Runs wrk against URL $1 and prints `requests/s transfer/s`; fails on any error response.
load() {
    local out
    wrk -d 2s -t "$THREADS" -c "$CONNECTIONS" -H "Accept: $IMAGE" "$1" >/dev/null
    out="$(wrk -d "$DURATION" -t "$THREADS" -c "$CONNECTIONS" -H "Accept: $IMAGE" "$1")"
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "error responses from $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '/Transfer\/sec/ {print $2}' <<<"$out")"
}

step "Making the data"
head -c $((1 << 20)) /dev/urandom >"$work/layer"
printf '{}' >"$work/config"
cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"$IMAGE","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"$(sha "$work/config")","size":2},"layers":[{"mediaType":"application/wasm","digest":"$(sha "$work/layer")","size":$((1 << 20))}]}
EOF
head -c $((BIG_MIB << 20)) /dev/urandom >"$work/big"
layer="$(sha "$work/layer")"

step "Throughput: $CONNECTIONS connections, $THREADS wrk threads, $DURATION per run"
start_wreg "$work/wreg" "$work/wreg.time"
start_distribution "$work/distribution" "$work/distribution.time"
seed "$wreg_url"
seed "$dist_url"
for server in wreg dist; do
    url_var="${server}_url"
    base="${!url_var}"
    read -r manifest_rps _ < <(load "$base/v2/bench/app/manifests/1.0.0")
    read -r blob_rps blob_rate < <(load "$base/v2/bench/app/blobs/$layer")
    printf -v "${server}_manifest" '%s' "$manifest_rps"
    printf -v "${server}_blob" '%s (%s/s)' "$blob_rps" "$blob_rate"
done
stop_and_peak "$wreg_pid" "$work/wreg.time" >/dev/null
stop_and_peak "$dist_pid" "$work/distribution.time" >/dev/null

step "Peak memory during a $BIG_MIB MiB upload"
rm -rf "$work/wreg" "$work/distribution"
start_wreg "$work/wreg" "$work/wreg-big.time"
start=$(date +%s.%N)
upload "$wreg_url" bench/big "$work/big"
wreg_upload_s=$(awk "BEGIN {print $(date +%s.%N) - $start}")
wreg_peak="$(stop_and_peak "$wreg_pid" "$work/wreg-big.time")"
start_distribution "$work/distribution" "$work/distribution-big.time"
start=$(date +%s.%N)
upload "$dist_url" bench/big "$work/big"
dist_upload_s=$(awk "BEGIN {print $(date +%s.%N) - $start}")
dist_peak="$(stop_and_peak "$dist_pid" "$work/distribution-big.time")"

printf '\n| | cargo-wreg | Distribution %s |\n|---|---|---|\n' \
    "$(docker-registry --version 2>&1 | awk '{print $3}')"
printf '| manifest GET, requests/s | %s | %s |\n' "$wreg_manifest" "$dist_manifest"
printf '| 1 MiB blob GET, requests/s | %s | %s |\n' "$wreg_blob" "$dist_blob"
printf '| %s MiB upload, seconds | %.1f | %.1f |\n' "$BIG_MIB" "$wreg_upload_s" "$dist_upload_s"
printf '| peak memory during that upload, MiB | %.1f | %.1f |\n' \
    "$(awk "BEGIN {print $wreg_peak / 1024}")" "$(awk "BEGIN {print $dist_peak / 1024}")"
