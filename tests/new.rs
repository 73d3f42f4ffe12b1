//! `cargo wreg new` makes crates that build first time: a library and a command with a world
//! of their own, and libraries implementing registry worlds, with root-level exports and with
//! an exported interface. A `new` that fails leaves nothing behind.

mod common;

use std::fs;
use std::path::Path;

use common::{Registry, Sandbox, fixture_target_dir, run_ok, wasi_wit_deps, wasmtime};

/// The WASI packages, each after the packages it references.
const WASI_PACKAGES: &[&str] = &["io", "clocks", "random", "filesystem", "sockets", "cli", "http"];

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Builds the crate at `dir` and checks the world of the component it reports.
fn build(sandbox: &Sandbox, registry: Option<&Registry>, dir: &Path, world: &str) {
    let mut build = sandbox.wreg(["build", "--manifest-path"]).arg(dir.join("Cargo.toml"));
    if let Some(registry) = registry {
        build = build.args(["--registry", registry.url()]);
    }
    let output = build.ok();
    let line = output.status_line("Component");
    assert!(line.ends_with(&format!("({world})")), "world: {line}");
}

#[test]
fn new_library_and_command_build_without_a_registry() {
    let sandbox = Sandbox::new();
    let library = sandbox.path().join("new-lib");
    let output = sandbox.wreg(["new"]).arg(&library).ok();
    output.assert_stderr_contains("Generated");
    let manifest = read(&library.join("Cargo.toml"));
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    let runtime = r#"wit-bindgen-rt = { version = "0.44.0", features = ["bitflags"] }"#;
    assert!(manifest.contains(runtime), "{manifest}");
    assert!(manifest.contains("[package.metadata.component]"), "{manifest}");
    let source = read(&library.join("src/lib.rs"));
    assert!(source.contains("fn greet(name: String) -> String {\n        todo!()"), "{source}");
    let ignored = read(&library.join(".gitignore"));
    assert!(ignored.contains("/src/bindings.rs") && ignored.contains("/wit/deps"), "{ignored}");
    build(&sandbox, None, &library, "component:new-lib/new-lib");

    let command = sandbox.path().join("new-cmd");
    sandbox.wreg(["new", "--bin"]).arg(&command).ok();
    assert!(read(&command.join("src/main.rs")).contains("fn main() {"));
    build(&sandbox, None, &command, "component:new-cmd/new-cmd");
    let component = fixture_target_dir().join("wasm32-wasip2/debug/new-cmd.wasm");
    let stdout = run_ok(std::process::Command::new(wasmtime()).arg("run").arg(component));
    assert_eq!(stdout.trim(), "Hello, world!");
}

#[test]
fn new_library_for_a_registry_world_implements_its_exports() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let dir = sandbox.path().join("new-greeter");

    let new = sandbox.wreg(["new", "--target", "acme:greeting/greeter@1.0", "--registry"]);
    new.arg(registry.url()).arg(&dir).ok();
    let manifest = read(&dir.join("Cargo.toml"));
    assert!(manifest.contains("target = \"acme:greeting/greeter@1.0\""), "{manifest}");
    let source = read(&dir.join("src/lib.rs"));
    for signature in [
        "fn greet(name: String) -> String {",
        "fn greet_in(name: String, style: bindings::CaseStyle) -> String {",
        "fn version() -> String {",
        "bindings::export!(Component with_types_in bindings);",
    ] {
        assert!(source.contains(signature), "no `{signature}` in\n{source}");
    }
    build(&sandbox, Some(&registry), &dir, "acme:greeting/greeter@1.1.0");
}

#[test]
fn new_library_for_an_exported_interface_implements_it() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let wit = wasi_wit_deps("40.0.0");
    for package in WASI_PACKAGES {
        let publish = sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]);
        publish.arg(wit.join(package)).ok();
    }
    let dir = sandbox.path().join("new-proxy");

    let new = sandbox.wreg(["new", "--target", "wasi:http/proxy@0.2.6", "--registry"]);
    new.arg(registry.url()).arg(&dir).ok();
    let source = read(&dir.join("src/lib.rs"));
    let guest = "impl bindings::exports::wasi::http::incoming_handler::Guest for Component {";
    assert!(source.contains(guest), "{source}");
    build(&sandbox, Some(&registry), &dir, "wasi:http/proxy@0.2.6");
}

#[test]
fn a_failed_new_leaves_nothing_behind() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let workspace = sandbox.path().join("workspace");
    fs::create_dir(&workspace).expect("create the workspace dir");
    let manifest = "[workspace]\nresolver = \"3\"\nmembers = []\n";
    fs::write(workspace.join("Cargo.toml"), manifest).expect("write the workspace manifest");
    let dir = workspace.join("member");

    let new = sandbox.wreg(["new", "--target", "acme:missing/world@1.0", "--registry"]);
    let output = new.arg(registry.url()).arg(&dir).fails();
    output.assert_stderr_contains("`acme:missing` was not found");
    assert!(!dir.exists(), "the crate is still there\n{output}");
    assert_eq!(read(&workspace.join("Cargo.toml")), manifest, "the workspace was changed");
    assert!(!workspace.join("Cargo.lock").exists(), "a lock file was left\n{output}");

    sandbox.wreg(["new", "--target", "not a world"]).arg(&dir).fails();
    assert!(!dir.exists(), "an invalid target still made a crate");
}
