//! The real WASI 0.2 WIT packages end to end: publish them to the embedded registry, build a
//! `wasi:http/proxy` component against them and serve HTTP requests with it in wasmtime.
//!
//! The WIT comes from the `wit/deps` folder that published `wasmtime-wasi-http` crates ship.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{
    Project, Registry, Sandbox, WasmtimeServer, built_component, fixture_target_dir, http_get,
    run_ok, wasi_wit_deps, wit_text,
};

/// The WASI packages, each after the packages it references.
const WASI_PACKAGES: &[&str] = &["io", "clocks", "random", "filesystem", "sockets", "cli", "http"];

/// What the fixture component answers to every request.
const GREETING: &str = "Hello from cargo-wreg";

#[test]
fn wasi_http_component_serves_requests() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    // wasmtime-wasi-http 40.0.0 ships WASI 0.2.6 as one directory per package.
    let wit = wasi_wit_deps("40.0.0");
    publish_wasi(&sandbox, &registry, |package| wit.join(package));
    let project = sandbox.project("wasi-http");

    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    let output = build.arg(project.manifest()).ok();
    let line = output.status_line("Component");
    assert!(line.ends_with("(wasi:http/proxy@0.2.6)"), "world: {line}");
    check_locked(&project, "0.2.6");
    check_wit_deps(&project, "0.2.6");

    // Rust's standard library imports `wasi:cli` interfaces outside the proxy world (the
    // environment, for one); `wasmtime serve` provides them only with `-S cli`.
    let server = WasmtimeServer::start(&built_component("debug", "hello_http"), &["-S", "cli"]);
    let (status, body) = http_get(server.url())
        .unwrap_or_else(|err| panic!("GET {} failed: {err:#}\n{}", server.url(), server.log()));
    assert_eq!((status, body.as_str()), (200, GREETING), "wasmtime:\n{}", server.log());
    drop(server);

    // Once fetched, the project is an ordinary crate: cargo alone builds it.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["build", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(project.manifest())
            .env("CARGO_TARGET_DIR", fixture_target_dir())
            .env_remove("CARGO_BUILD_TARGET"),
    );

    // A fresh clone of it, registry gone, cache empty, nothing configured: wkg.lock says
    // where the WASI packages came from, which outranks the built-in `wasi` → `wasi.dev`, so
    // --offline goes on with the committed wit/deps.
    drop(registry);
    fs::remove_file(project.path("src/bindings.rs")).expect("remove bindings");
    let clone = Sandbox::new();
    clone.wreg(["build", "--offline", "--manifest-path"]).arg(project.manifest()).ok();
    assert!(project.path("src/bindings.rs").is_file(), "bindings were not generated");
}

/// WASI published as one `.wit` file per package resolves too, and a project asking for
/// `wasi:http/proxy@0.2.6` moves every WASI package up to the newest compatible release.
#[test]
fn newest_compatible_wasi_release_is_chosen() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let old = wasi_wit_deps("40.0.0");
    // wasmtime-wasi-http 48.0.8 ships WASI 0.2.12 as one `.wit` file per package.
    let new = wasi_wit_deps("48.0.8");
    publish_wasi(&sandbox, &registry, |package| old.join(package));
    publish_wasi(&sandbox, &registry, |package| new.join(format!("{package}.wit")));
    let project = sandbox.project("wasi-http");

    // Only a fetch: a build here would race the other test for the same `.wasm` path.
    let fetch = sandbox.wreg(["fetch", "--registry", registry.url(), "--manifest-path"]);
    fetch.arg(project.manifest()).ok();
    check_locked(&project, "0.2.12");
    check_wit_deps(&project, "0.2.12");
}

/// Publishes every WASI package, dependencies first; `path` gives each one's WIT.
fn publish_wasi(sandbox: &Sandbox, registry: &Registry, path: impl Fn(&str) -> PathBuf) {
    for package in WASI_PACKAGES {
        sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(path(package)).ok();
    }
}

/// The lock pins exactly the WASI packages, all at `version`, each with a sha256 digest.
fn check_locked(project: &Project, version: &str) {
    let locked = project.locked_packages();
    let mut names: Vec<&str> = locked.iter().map(|(name, ..)| name.as_str()).collect();
    names.sort();
    let mut expected: Vec<String> = WASI_PACKAGES.iter().map(|p| format!("wasi:{p}")).collect();
    expected.sort();
    assert_eq!(names, expected, "wkg.lock: {locked:?}");

    for (name, locked_version, digest) in &locked {
        assert_eq!(locked_version, version, "locked version of {name}");
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "locked digest of {name}: {digest:?}"
        );
    }
}

/// `wit/deps` holds each WASI package at `version`, as WIT naming that package.
fn check_wit_deps(project: &Project, version: &str) {
    let deps = project.path("wit/deps");
    let mut expected: Vec<String> =
        WASI_PACKAGES.iter().map(|p| format!("wasi-{p}-{version}")).collect();
    expected.sort();
    assert_eq!(common::entry_names(&deps), expected);

    for package in WASI_PACKAGES {
        let wit = wit_text(&deps.join(format!("wasi-{package}-{version}")));
        let declaration = format!("package wasi:{package}@{version}");
        assert!(wit.contains(&declaration), "wit/deps lacks `{declaration}`");
    }
}
