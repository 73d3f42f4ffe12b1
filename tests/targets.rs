//! Components from core modules: a command and an HTTP proxy built for `wasm32-wasip1` and a
//! library for bare `wasm32-unknown-unknown`, each made a component with the right preview 1
//! adapter (or none) and run by wasmtime; the cargo commands that hand over to cargo after a
//! fetch; and the bad input of this area: bad adapters and unimplemented world exports.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Output, Registry, Sandbox, WasmtimeServer, fixture_target_dir, http_get, invoke,
    path_with_wasmtime, run_ok, wasi_wit_deps, wasmtime,
};

/// The WASI packages, each after the packages it references.
const WASI_PACKAGES: &[&str] = &["io", "clocks", "random", "filesystem", "sockets", "cli", "http"];

/// The path and world of the `Component` line of a build, checking that the path is where
/// cargo puts `crate_file` for `triple`.
fn component(output: &Output, triple: &str, crate_file: &str) -> (PathBuf, String) {
    let line = output.status_line("Component");
    let (path, world) = line.rsplit_once(" (").unwrap_or_else(|| panic!("component: {line}"));
    let expected = fixture_target_dir().join(triple).join("debug").join(crate_file);
    assert_eq!(Path::new(path), expected, "component path\n{output}");
    (PathBuf::from(path), world.trim_end_matches(')').to_string())
}

fn assert_is_component(path: &Path) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(
        bytes.get(..8),
        Some(&b"\0asm\x0d\0\x01\0"[..]),
        "{} is a component",
        path.display()
    );
}

#[test]
fn command_built_for_wasip1_runs_in_wasmtime() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let project = sandbox.project("command-wasip1");
    let build = || {
        sandbox
            .wreg(["build", "--registry", registry.url(), "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(project.manifest())
    };

    let output = build().ok();
    let (path, world) = component(&output, "wasm32-wasip1", "shout.wasm");
    assert_eq!(world, "acme:shout/shout@0.1.0");
    assert_is_component(&path);
    let stdout = run_ok(Command::new(wasmtime()).arg("run").arg(&path).args(["upper", "hi", "p1"]));
    assert_eq!(stdout.trim(), "HI P1");

    // Cargo links the core module again on every build; the component made of it is the same.
    let first = fs::read(&path).expect("read the component");
    build().ok();
    assert!(fs::read(&path).expect("read the component again") == first, "a rebuild differs");

    // `run` and `test` hand over to cargo, with wasmtime as the runner.
    let cargo = |command: &str| {
        sandbox
            .wreg([command, "--registry", registry.url(), "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(project.manifest())
            .env("PATH", path_with_wasmtime())
    };
    let run = cargo("run").args(["--", "lower", "Quiet", "Please"]).ok();
    assert_eq!(run.stdout.trim(), "quiet please", "{run}");
    let test = cargo("test").ok();
    assert!(test.stdout.contains("test tests::shouts_in_upper_case ... ok"), "{test}");

    // With no runner at all, nothing is handed to cargo to try executing the module; unless
    // nothing is to run, or `--config` names a runner.
    let cargo_bin = std::env::var_os("CARGO").map(PathBuf::from).expect("cargo sets CARGO");
    let toolchain = cargo_bin.parent().expect("cargo's directory");
    // The toolchain and the system's own tools (a wasmtime shim may need a shell), no wasmtime.
    let toolchain = std::env::join_paths([toolchain, Path::new("/usr/bin"), Path::new("/bin")])
        .expect("a PATH");
    let no_runner = cargo("test").env("PATH", &toolchain).fails();
    no_runner.assert_stderr_contains("`wasmtime` is not on PATH");
    cargo("test").env("PATH", &toolchain).arg("--no-run").ok();
    let runner =
        format!("target.wasm32-wasip1.runner={:?}", common::wasmtime().display().to_string());
    let test = cargo("test").env("PATH", &toolchain).args(["--config", &runner]).ok();
    assert!(test.stdout.contains("test tests::shouts_in_upper_case ... ok"), "{test}");
}

#[test]
fn library_for_bare_wasm32_needs_no_adapter_and_cargo_config_picks_the_target() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let project = sandbox.project("reactor-unknown");
    // Cargo reads `.cargo/config.toml` from where it runs, so these run in the project.
    let wreg = |args: &[&str]| {
        sandbox.wreg(args).args(["--registry", registry.url()]).current_dir(project.root())
    };

    let output = wreg(&["build"]).ok();
    let (path, world) = component(&output, "wasm32-unknown-unknown", "hello_core.wasm");
    assert_eq!(world, "acme:greeting/greeter@1.1.0");
    assert_eq!(invoke(&path, r#"greet("World")"#), r#""Hello, World!""#);
    assert_eq!(invoke(&path, r#"greet-in("World", upper)"#), r#""HELLO, WORLD!""#);

    // The same library for wasip1 imports WASI, through the reactor adapter.
    let output = wreg(&["build", "--target", "wasm32-wasip1"]).ok();
    let (path, _) = component(&output, "wasm32-wasip1", "hello_core.wasm");
    assert_eq!(invoke(&path, "version()"), r#""0.1.0""#);

    // What rust-analyzer runs: nothing changed, so no fetch, and cargo's JSON on stdout.
    let check = wreg(&["check", "--message-format=json"]).ok();
    assert!(!check.stderr.contains("Generating"), "the check fetched again\n{check}");
    let artifact = check.stdout.lines().find(|line| {
        line.contains(r#""reason":"compiler-artifact""#) && line.contains("#hello-core@0.1.0")
    });
    let artifact = artifact.unwrap_or_else(|| panic!("no artifact message\n{check}"));
    assert!(artifact.contains("wasm32-unknown-unknown"), "checked for another target\n{check}");
    wreg(&["clippy"]).ok();
    wreg(&["doc"]).ok();

    let run = wreg(&["run"]).fails();
    run.assert_stderr_contains("package `hello-core` has no binary to run");
    run.assert_stderr_contains("wasmtime run --invoke");
    // Tests built for it would run nothing under wasmtime, and pass.
    let test = wreg(&["test"]).fails();
    test.assert_stderr_contains("cannot run what it builds for `wasm32-unknown-unknown`");
}

#[test]
fn proxy_built_for_wasip1_serves_http() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let wit = wasi_wit_deps("40.0.0");
    for package in WASI_PACKAGES {
        let publish = sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]);
        publish.arg(wit.join(package)).ok();
    }
    let project = sandbox.project("proxy-wasip1");

    let build = sandbox.wreg(["build", "--registry", registry.url(), "--target", "wasm32-wasip1"]);
    let output = build.arg("--manifest-path").arg(project.manifest()).ok();
    let (path, world) = component(&output, "wasm32-wasip1", "hello_proxy.wasm");
    assert_eq!(world, "wasi:http/proxy@0.2.6");

    // Without `-S cli`, wasmtime serves only what `wasi:http/proxy` imports: with the reactor
    // adapter the component would import the CLI environment too and not start.
    let serves = |path: &Path| {
        let server = WasmtimeServer::start(path, &[]);
        let (status, body) = http_get(server.url())
            .unwrap_or_else(|err| panic!("GET {} failed: {err:#}\n{}", server.url(), server.log()));
        assert_eq!((status, body.as_str()), (200, "Hello from wasip1"), "{}", server.log());
    };
    serves(&path);

    // Without `proxy = true`, the `wasi:http/proxy` world alone picks the proxy adapter. The
    // source is touched so that cargo links the module again and it is adapted anew.
    let manifest = fs::read_to_string(project.manifest()).expect("read Cargo.toml");
    fs::write(project.manifest(), manifest.replace("proxy = true\n", "")).expect("write");
    let source = project.path("src/lib.rs");
    fs::write(&source, fs::read(&source).expect("read lib.rs")).expect("touch lib.rs");
    let build = sandbox.wreg(["build", "--registry", registry.url(), "--target", "wasm32-wasip1"]);
    let output = build.arg("--manifest-path").arg(project.manifest()).ok();
    let (path, _) = component(&output, "wasm32-wasip1", "hello_proxy.wasm");
    serves(&path);
}

#[test]
fn bad_adapters_fail_the_build_and_nothing_is_published() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let project = sandbox.project("command-wasip1");
    fs::write(project.path("not-a-module.wasm"), "plain text").expect("write a bad adapter");
    let publish = || {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(project.manifest())
    };
    let pull = || {
        let out = sandbox.path().join("pulled.wasm");
        sandbox.wreg(["pull", "acme:shout@0.1.0", "--registry", registry.url(), "-o"]).arg(out)
    };

    set_adapter(&project.manifest(), "missing.wasm");
    let output = publish().fails();
    output.assert_stderr_contains("failed to read adapter `");
    output.assert_stderr_contains("help: `adapter` in `[package.metadata.component]`");
    assert!(!output.stderr.contains("Finished"), "cargo built first\n{output}");
    pull().fails();

    set_adapter(&project.manifest(), "not-a-module.wasm");
    publish().fails().assert_stderr_contains("is not wasm at all");
    pull().fails();
}

#[test]
fn an_unimplemented_world_export_shows_cargo_error_and_a_hint() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let project = sandbox.project("hello");
    // `parting-greeter` adds `part`, which the crate does not implement.
    project.set_target("acme:greeting/parting-greeter@1.1");

    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    let output = build.arg(project.manifest()).fails();
    output.assert_stderr_contains("error[E0046]: not all trait items implemented, missing: `part`");
    output.assert_stderr_contains(
        "error: package `hello` does not implement its target world \
         `acme:greeting/parting-greeter@1.1.0`",
    );
    output.assert_stderr_contains("help: implement each function of the world's `Guest` traits");
}

/// Sets `adapter` in the fixture's `[package.metadata.component]`.
fn set_adapter(manifest: &Path, adapter: &str) {
    let text = fs::read_to_string(manifest).expect("read the fixture manifest");
    let mut doc: toml_edit::DocumentMut = text.parse().expect("parse the fixture manifest");
    doc["package"]["metadata"]["component"]["adapter"] = toml_edit::value(adapter);
    fs::write(manifest, doc.to_string()).expect("write the fixture manifest");
}
