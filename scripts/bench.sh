#!/usr/bin/env bash
# Benchmarks of resolution, fetch and the no-op build; prints figures, asserts nothing.
# Everything runs on loopback against the embedded registry, in a temp dir removed at exit.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

runs=10
work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Median wall time in milliseconds of `runs` runs of a command (output discarded).
median_ms() {
    local times=()
    for _ in $(seq "$runs"); do
        local start end
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

echo "==> building (release)"
cargo build --release --locked --quiet
wreg="$repo/target/release/cargo-wreg"

echo "==> resolver"
cargo bench --locked --quiet --bench resolve 2>/dev/null | grep '^resolve:'

echo "==> a 30-package WIT graph on the embedded registry"
"$wreg" registry serve --addr 127.0.0.1:0 --storage "$work/storage" >"$work/url" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do [[ -s "$work/url" ]] && break; sleep 0.1; done
registry="$(head -n 1 "$work/url")"
export CARGO_WREG_REGISTRY="$registry" CARGO_WREG_CACHE_DIR="$work/cache"
export CARGO_TARGET_DIR="$repo/target/fixture-builds"

# bench:p<i> uses types of the next three packages, so the graph is 30 deep and wide.
count=30
for i in $(seq $((count - 1)) -1 0); do
    dir="$work/wit/p$i"
    mkdir -p "$dir"
    {
        echo "package bench:p$i@1.0.0;"
        echo "interface types {"
        for j in $((i + 1)) $((i + 2)) $((i + 3)); do
            ((j < count)) && echo "  use bench:p$j/types@1.0.0.{r$j};"
        done
        echo "  record r$i { value: u32 }"
        echo "}"
        echo "world w { use types.{r$i}; export get: func() -> r$i; }"
    } >"$dir/package.wit"
    "$wreg" publish --quiet --wit "$dir"
done

project="$work/project"
mkdir -p "$project/src"
cat >"$project/Cargo.toml" <<TOML
[package]
name = "bench-graph"
version = "0.1.0"
edition = "2024"
[lib]
crate-type = ["cdylib"]
[dependencies]
wit-bindgen-rt = { version = "0.44.0", features = ["bitflags"] }
[package.metadata.component]
package = "bench:graph"
target = "bench:p0/w@1"
[workspace]
TOML
cp fixtures/hello/Cargo.lock "$project/Cargo.lock"
cat >"$project/src/lib.rs" <<'RUST'
#[allow(warnings)]
mod bindings;
struct Component;
impl bindings::Guest for Component {
    fn get() -> bindings::R0 {
        bindings::R0 { value: 0 }
    }
}
bindings::export!(Component with_types_in bindings);
RUST

cold_fetch() {
    rm -rf "$CARGO_WREG_CACHE_DIR" "$project/wkg.lock" "$project/wit" "$project/src/bindings.rs"
    "$wreg" fetch --quiet --manifest-path "$project/Cargo.toml"
}
echo "cold fetch of $count packages (empty cache, no lock): $(runs=5 median_ms cold_fetch) ms median"
locked=$(grep -c '^name = ' "$project/wkg.lock")
echo "  wkg.lock holds $locked packages"

echo "==> no-op fetch and build on a locked, cached project"
"$wreg" build --quiet --manifest-path "$project/Cargo.toml"
kill "$server"
wait "$server" 2>/dev/null || true
server=""
echo "no-op fetch (registry stopped, so zero requests): $(median_ms "$wreg" fetch --manifest-path "$project/Cargo.toml") ms median"
noop_build=$(median_ms "$wreg" build --manifest-path "$project/Cargo.toml")
plain_build=$(median_ms cargo build --manifest-path "$project/Cargo.toml" --target wasm32-wasip2)
echo "no-op cargo wreg build: $noop_build ms median; plain cargo build: $plain_build ms median"
awk -v a="$noop_build" -v b="$plain_build" 'BEGIN {printf "ratio: %.2fx\n", a / b}'
# What a user typing `cargo wreg build` waits for: cargo itself first starts and looks the
# subcommand up, which the figures above leave out.
mkdir -p "$work/bin"
ln -s "$wreg" "$work/bin/cargo-wreg"
dispatched=$(PATH="$work/bin:$PATH" median_ms cargo wreg build --manifest-path "$project/Cargo.toml")
echo "the same through cargo's subcommand dispatch: $dispatched ms median"
awk -v a="$dispatched" -v b="$plain_build" 'BEGIN {printf "ratio: %.2fx\n", a / b}'
