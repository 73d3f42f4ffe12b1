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
