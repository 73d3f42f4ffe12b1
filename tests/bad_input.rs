//! Bad input and broken registries: each run fails with an error naming the culprit and leaves
//! no lock file, bindings or WIT dependencies behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Project, Registry, Sandbox, closed_port_url};

/// Runs `fetch` on `project` against `registry_url` and expects it to fail.
fn fetch_fails(sandbox: &Sandbox, project: &Project, registry_url: &str) -> common::Output {
    let fetch = sandbox.wreg(["fetch", "--registry", registry_url, "--manifest-path"]);
    let output = fetch.arg(project.manifest()).fails();
    project.assert_nothing_generated();
    output
}

#[test]
fn malformed_target_is_rejected() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let hello = sandbox.project("hello");
    hello.set_target("acme/greeting@1.0");

    fetch_fails(&sandbox, &hello, registry.url()).assert_stderr_contains("acme/greeting@1.0");
}

#[test]
fn unknown_package_is_reported() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    hello.set_target("acme:missing/greeter@1.0");

    fetch_fails(&sandbox, &hello, registry.url()).assert_stderr_contains("acme:missing");
}

#[test]
fn unknown_world_lists_the_worlds_there_are() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    hello.set_target("acme:greeting/nosuch@1.1");

    fetch_fails(&sandbox, &hello, registry.url())
        .assert_stderr_contains("nosuch")
        .assert_stderr_contains("the worlds there are `greeter`, `parting-greeter`");
}

#[test]
fn requirement_no_version_satisfies_is_reported() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    hello.set_target("acme:greeting/greeter@3.0");

    fetch_fails(&sandbox, &hello, registry.url())
        .assert_stderr_contains("acme:greeting")
        .assert_stderr_contains("3.0");
}

#[test]
fn registry_down_is_reported() {
    let sandbox = Sandbox::new();
    let hello = sandbox.project("hello");
    let url = closed_port_url();
    let address = url.trim_start_matches("http://");

    fetch_fails(&sandbox, &hello, &url).assert_stderr_contains(address);
}

#[test]
fn unparsable_wit_is_not_published() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("broken-wit");
    fs::create_dir_all(&dir).expect("create the broken WIT dir");
    let broken = "package acme:broken@1.0.0;\n\nworld oops {\n    export f: func(;\n}\n";
    fs::write(dir.join("broken.wit"), broken).expect("write broken.wit");

    sandbox
        .wreg(["publish", "--registry", registry.url(), "--wit"])
        .arg(&dir)
        .fails()
        .assert_stderr_contains("broken");

    let pulled = sandbox.path().join("broken.wasm");
    let pull = sandbox.wreg(["pull", "acme:broken@1.0.0", "--registry", registry.url(), "-o"]);
    pull.arg(&pulled).fails();
    assert!(!pulled.exists(), "a failed pull still wrote {}", pulled.display());

    let empty = sandbox.path().join("empty-wit");
    fs::create_dir_all(&empty).expect("create an empty dir");
    sandbox
        .wreg(["publish", "--registry", registry.url(), "--wit"])
        .arg(&empty)
        .fails()
        .assert_stderr_contains("holds no `.wit` files");
}

#[test]
fn pulls_name_what_is_missing_or_mismatched() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let out = sandbox.path().join("text.wasm");
    let pull = |args: &[&str]| {
        sandbox.wreg(["pull", "--registry", registry.url(), "-o"]).arg(&out).args(args)
    };

    pull(&["acme:text@9.9.9"])
        .fails()
        .assert_stderr_contains("`acme:text` has no release 9.9.9")
        .assert_stderr_contains("the newest releases are 2.0.0, 1.1.0, 1.0.0");

    // A version and a digest must agree.
    let fetched = pull(&["acme:text@1.0.0"]).ok();
    let digest = fetched.stderr.split(['(', ')']).find(|part| part.starts_with("sha256:"));
    let digest = digest.unwrap_or_else(|| panic!("no digest in\n{fetched}")).to_string();
    fs::remove_file(&out).expect("remove the pulled file");
    pull(&["acme:text@1.1.0", "--digest", &digest])
        .fails()
        .assert_stderr_contains(&format!("not `{digest}`"));
    assert!(!out.exists(), "a refused pull wrote {}", out.display());
    pull(&["acme:text@1.0.0", "--digest", &digest]).ok();

    // A layer digest, as wkg.lock records, is not what --digest takes; the error says so.
    let info = sandbox.wreg(["info", "acme:text", "--registry", registry.url()]).ok();
    let layer = info.stdout.lines().next().and_then(|line| line.split_whitespace().nth(1));
    let layer = layer.unwrap_or_else(|| panic!("no layer digest in\n{info}"));
    pull(&["acme:text", "--digest", layer])
        .fails()
        .assert_stderr_contains("the third column of `cargo wreg info acme:text`");
}

#[test]
fn wit_referencing_an_unpublished_package_is_not_published() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("uses-local");
    fs::create_dir_all(dir.join("deps/local")).expect("create the WIT dirs");
    let main = "package acme:uses@1.0.0;\n\ninterface api {\n    \
                use acme:local/types@1.0.0.{thing};\n    get: func() -> thing;\n}\n";
    fs::write(dir.join("api.wit"), main).expect("write api.wit");
    let local = "package acme:local@1.0.0;\n\ninterface types {\n    type thing = u32;\n}\n";
    fs::write(dir.join("deps/local/types.wit"), local).expect("write types.wit");

    sandbox
        .wreg(["publish", "--registry", registry.url(), "--wit"])
        .arg(&dir)
        .fails()
        .assert_stderr_contains("references `acme:local@1.0.0`, which")
        .assert_stderr_contains("publish `acme:local@1.0.0` first");

    // Once the package it references is there, it goes.
    let publish = sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]);
    publish.arg(dir.join("deps/local")).ok();
    sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(&dir).ok();

    // What the registry holds is what counts, not a `deps` copy that says more.
    let changed = local.replace("type thing = u32;", "type thing = u32;\n    type extra = u8;");
    fs::write(dir.join("deps/local/types.wit"), changed).expect("write types.wit");
    let main = main.replace("@1.0.0;", "@1.1.0;").replace("{thing}", "{thing, extra}");
    fs::write(dir.join("api.wit"), main).expect("write api.wit");
    sandbox
        .wreg(["publish", "--registry", registry.url(), "--wit"])
        .arg(&dir)
        .fails()
        .assert_stderr_contains("extra");
}

#[test]
fn tampered_blob_is_detected() {
    let registry = Registry::start();
    Sandbox::new().publish_wit_fixtures(&registry);
    let tampered = tamper_wasm_blobs(&registry.storage());
    assert!(tampered > 0, "no wasm blob under {}", registry.storage().display());

    // A fresh sandbox has an empty blob cache, so every layer comes from the tampered store.
    let sandbox = Sandbox::new();
    let hello = sandbox.project("hello");
    fetch_fails(&sandbox, &hello, registry.url()).assert_stderr_contains("digest");
}

/// Flips one byte of every wasm blob the server stores; returns how many it changed.
fn tamper_wasm_blobs(storage: &Path) -> usize {
    let blobs = storage.join("blobs").join("sha256");
    let entries: Vec<PathBuf> = fs::read_dir(&blobs)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", blobs.display()))
        .map(|entry| entry.expect("read a blob entry").path())
        .collect();
    let mut tampered = 0;
    for path in entries {
        let mut bytes = fs::read(&path).expect("read a stored blob");
        if !bytes.starts_with(b"\0asm") {
            continue;
        }
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).expect("write a tampered blob");
        tampered += 1;
    }
    tampered
}
