#!/usr/bin/env bash
# The main job on the bundled example, against the embedded registry: publish the example WIT
# packages, build the `hello` component against them, run it with wasmtime, publish it.
# Everything it writes goes to a temp dir (removed at exit) or to target/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
step() {
    if [[ -t 1 ]]; then printf '\n\033[1m==> %s\033[0m\n' "$*"; else printf '\n==> %s\n' "$*"; fi
}

step "Installing what is missing (wasm targets, wasmtime, test tools)"
. "$repo/scripts/setup.sh"

step "Building cargo-wreg"
cargo build --locked --quiet --manifest-path "$repo/Cargo.toml"
# With the binary on PATH, `cargo wreg ...` works exactly as after `cargo install`.
export PATH="$repo/target/debug:$PATH"

work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export CARGO_WREG_CACHE_DIR="$work/cache"
export CARGO_TARGET_DIR="$repo/target/fixture-builds"

step "Starting the embedded registry"
cargo-wreg registry serve --addr 127.0.0.1:0 --storage "$work/storage" \
    >"$work/serve.out" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
    [[ -s "$work/serve.out" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
registry="$(head -n 1 "$work/serve.out")"
[[ -n "$registry" ]] || { echo "the registry did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
export CARGO_WREG_REGISTRY="$registry"
echo "registry at $registry"

step "Publishing the example WIT packages"
for package in acme-text-1.0.0 acme-text-1.1.0 acme-text-2.0.0 \
    acme-greeting-1.0.0 acme-greeting-1.1.0; do
    cargo wreg publish --wit "$repo/fixtures/wit/$package"
done

step "Building the hello component"
cp -r "$repo/fixtures/hello" "$work/hello"
rm -rf "$work/hello/target" "$work/hello/wit/deps" "$work/hello/src/bindings.rs" \
    "$work/hello/wkg.lock"
cargo wreg build --manifest-path "$work/hello/Cargo.toml"

step "Running it"
"$WASMTIME" run --invoke 'greet("World")' "$CARGO_TARGET_DIR/wasm32-wasip2/debug/hello.wasm"

step "Publishing it"
cargo wreg publish --manifest-path "$work/hello/Cargo.toml"
