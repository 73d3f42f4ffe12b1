//! Components as dependencies: a published component's exports become imports of the world of
//! the crate that depends on it.

mod common;

use std::fs;

use common::{Registry, Sandbox, built_component};

#[test]
fn a_published_components_exports_become_imports() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    sandbox
        .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
        .arg(hello.manifest())
        .ok();

    let caller = sandbox.project("caller");
    let out = sandbox
        .wreg(["build", "--registry", registry.url(), "--manifest-path"])
        .arg(caller.manifest())
        .ok();
    out.status_line("Component");

    // The lock pins the component like a WIT package.
    let locked = caller.locked_packages();
    assert!(locked.iter().any(|(n, v, _)| n == "acme:hello" && v == "0.1.0"), "{locked:?}");

    // `version` comes in under its own name; `greet` clashes with the world's own import
    // and comes in under the dependency's name.
    let wasm = fs::read(built_component("debug", "caller")).expect("read the caller component");
    let imports = component_imports(&wasm);
    for name in ["greet", "acme-hello-greet", "version"] {
        assert!(imports.iter().any(|i| i == name), "no import `{name}` in {imports:?}");
    }
}

/// The names of a component's top-level imports.
fn component_imports(wasm: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::ComponentImportSection(section)) = payload {
            for import in section.into_iter().flatten() {
                names.push(import.name.name.to_string());
            }
        }
    }
    names
}

/// Two dependencies exporting the same interface cannot both be imported yet: a clear error,
/// and nothing written.
#[test]
fn two_components_exporting_one_interface_are_refused_clearly() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let wit = common::wasi_wit_deps("40.0.0");
    for package in ["io", "clocks", "random", "filesystem", "sockets", "cli", "http"] {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--wit"])
            .arg(wit.join(package))
            .ok();
    }

    // One component exporting `wasi:http/incoming-handler`, published under two names.
    let server = sandbox.project("wasi-http");
    let publish = || {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
            .arg(server.manifest())
            .ok()
    };
    publish();
    let manifest = fs::read_to_string(server.manifest()).expect("read Cargo.toml");
    fs::write(server.manifest(), manifest.replace("acme:hello-http", "acme:other-http"))
        .expect("write Cargo.toml");
    publish();

    let caller = sandbox.project("caller");
    let manifest = fs::read_to_string(caller.manifest()).expect("read Cargo.toml");
    let both = "\"acme:hello-http\" = \"0.1\"\n\"acme:other-http\" = \"0.1\"\n";
    fs::write(caller.manifest(), manifest.replace("\"acme:hello\" = \"0.1\"\n", both))
        .expect("write Cargo.toml");
    fs::write(caller.path("src/lib.rs"), CALLER_OF_TWO).expect("write lib.rs");
    let out = sandbox
        .wreg(["build", "--registry", registry.url(), "--manifest-path"])
        .arg(caller.manifest())
        .fails();
    out.assert_stderr_contains(
        "`acme:other-http` exports `wasi:http/incoming-handler@0.2.6`, which the world already imports",
    );
    assert!(!caller.path("src/bindings.rs").exists(), "bindings were written");
    assert!(!caller.path("wkg.lock").exists(), "wkg.lock was written");
}

const CALLER_OF_TWO: &str = r#"#[allow(warnings)]
mod bindings;

struct Component;

impl bindings::Guest for Component {
    fn run() -> String {
        String::new()
    }
}

bindings::export!(Component with_types_in bindings);
"#;
