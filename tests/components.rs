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

    // The lock pins the component like a WIT package, and the package its exports use.
    let locked = caller.locked_packages();
    assert!(locked.iter().any(|(n, v, _)| n == "acme:hello" && v == "0.1.0"), "{locked:?}");
    assert!(locked.iter().any(|(n, _, _)| n == "acme:text"), "{locked:?}");
    let tree = sandbox.wreg(["tree", "--registry", registry.url(), "--manifest-path"]);
    let out = tree.arg(caller.manifest()).ok().stdout;
    assert!(out.contains("└── acme:hello v0.1.0"), "{out}");
    assert!(out.contains("    └── acme:text v1.1.0"), "{out}");

    // The dependency's functions come in together as `acme-hello`, beside the world's own
    // `greet`, as cargo-component names them.
    let caller_wasm = built_component("debug", "caller");
    let wasm = fs::read(&caller_wasm).expect("read the caller component");
    let imports = component_imports(&wasm);
    for name in ["greet", "acme-hello"] {
        assert!(imports.iter().any(|i| i == name), "no import `{name}` in {imports:?}");
    }

    // Plugged into the published `acme:hello` (whose `greet` also serves as the world's own),
    // it runs.
    let hello = sandbox.path().join("hello.wasm");
    sandbox.wreg(["pull", "acme:hello@0.1.0", "--registry", registry.url(), "-o"]).arg(&hello).ok();
    let composed = sandbox.path().join("composed.wasm");
    let wiring = [("acme-hello", None), ("greet", Some("greet"))];
    common::compose(&caller_wasm, &hello, &wiring, &composed);
    assert_eq!(
        common::invoke(&composed, "run()"),
        "\"Hello, caller! / Hello, host! (hello 0.1.0)\""
    );
}

/// A binary with no world of its own, only a component to call, gets an empty world to import
/// it into, as cargo-component gives it.
#[test]
fn a_binary_without_a_world_calls_a_component_dependency() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    sandbox
        .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
        .arg(hello.manifest())
        .ok();

    // The caller fixture made a binary named `greeting-bin`, without its world.
    let project = sandbox.project("caller");
    let manifest = fs::read_to_string(project.manifest()).expect("read Cargo.toml");
    let manifest = manifest
        .replace("name = \"caller\"", "name = \"greeting-bin\"")
        .replace("[lib]\ncrate-type = [\"cdylib\"]\n", "");
    fs::write(project.manifest(), manifest).expect("write Cargo.toml");
    fs::remove_dir_all(project.path("wit")).expect("remove the world");
    fs::remove_file(project.path("src/lib.rs")).expect("remove lib.rs");
    let main = "#[allow(warnings)]\nmod bindings;\n\n\
                fn main() {\n    println!(\"{}\", bindings::acme_hello::greet(\"bin\"));\n}\n";
    fs::write(project.path("src/main.rs"), main).expect("write main.rs");

    let build = || {
        sandbox
            .wreg(["build", "--registry", registry.url(), "--manifest-path"])
            .arg(project.manifest())
            .ok()
    };
    build().assert_stderr_contains("(component:greeting-bin/greeting-bin)");
    // `wit/deps` now exists, and is still no world of the crate's own.
    build();

    let hello_wasm = sandbox.path().join("hello.wasm");
    sandbox
        .wreg(["pull", "acme:hello@0.1.0", "--registry", registry.url(), "-o"])
        .arg(&hello_wasm)
        .ok();
    let composed = sandbox.path().join("composed.wasm");
    let bin = built_component("debug", "greeting-bin");
    common::compose(&bin, &hello_wasm, &[("acme-hello", None)], &composed);
    assert_eq!(common::run_command(&composed), "Hello, bin!");
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

/// Dependencies exporting the same interface each get names of their own, the names in the
/// manifest, and the bindings reach each where cargo-component puts them.
#[test]
fn two_components_exporting_one_interface_are_both_imported() {
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

    // A crate of its own name, so its component does not overwrite the other test's.
    let caller = sandbox.project("caller");
    let manifest = fs::read_to_string(caller.manifest()).expect("read Cargo.toml");
    // The first once more under a name of its own, as cargo's `package` key renames a crate.
    let both = "\"acme:hello-http\" = \"0.1\"\n\"acme:other-http\" = \"0.1\"\n\
                \"acme:third-http\" = { version = \"0.1\", package = \"acme:hello-http\" }\n";
    let manifest = manifest
        .replace("name = \"caller\"", "name = \"caller-of-two\"")
        .replace("\"acme:hello\" = \"0.1\"\n", both);
    fs::write(caller.manifest(), manifest).expect("write Cargo.toml");
    fs::write(caller.path("src/lib.rs"), CALLER_OF_TWO).expect("write lib.rs");
    sandbox
        .wreg(["build", "--registry", registry.url(), "--manifest-path"])
        .arg(caller.manifest())
        .ok();

    let wasm = fs::read(built_component("debug", "caller_of_two")).expect("read the component");
    let imports = component_imports(&wasm);
    for name in [
        "acme:hello-http/wasi-http-incoming-handler",
        "acme:other-http/wasi-http-incoming-handler",
        "acme:third-http/wasi-http-incoming-handler",
    ] {
        assert!(imports.iter().any(|i| i == name), "no import `{name}` in {imports:?}");
    }
    let locked = caller.locked_packages();
    for name in ["acme:hello-http", "acme:other-http"] {
        assert!(locked.iter().any(|(n, _, _)| n == name), "{name} not locked: {locked:?}");
    }
}

const CALLER_OF_TWO: &str = r#"#[allow(warnings)]
mod bindings;

use bindings::acme::{hello_http, other_http, third_http};

struct Component;

impl bindings::Guest for Component {
    fn run() -> String {
        // Both handlers are reachable, each under its own dependency's module; kept, so the
        // component imports both.
        let first: fn(_, _) = hello_http::wasi_http_incoming_handler::handle;
        let second: fn(_, _) = other_http::wasi_http_incoming_handler::handle;
        let third: fn(_, _) = third_http::wasi_http_incoming_handler::handle;
        format!("{:?}", std::hint::black_box([first, second, third]))
    }
}

bindings::export!(Component with_types_in bindings);
"#;
