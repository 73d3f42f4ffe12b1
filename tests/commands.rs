//! `cargo wreg add` and `cargo wreg info` against the embedded registry: what they write into
//! Cargo.toml (and leave alone), and what they print.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Project, Registry, Sandbox, closed_port_url, fixture_wit, modified};

/// The `hello` fixture's manifest with comments and spacing that an edit must keep.
const MANIFEST: &str = r#"# The greeting component.
[package]
name = "hello"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]   # a component

[dependencies]
wit-bindgen-rt = { version = "0.44.0", features = ["bitflags"] }

[package.metadata.component]
package = "acme:hello"    # published as
target = "acme:greeting/greeter@1.0"

# Never part of an enclosing workspace, wherever this fixture is copied.
[workspace]
"#;

const TARGET_LINE: &str = "target = \"acme:greeting/greeter@1.0\"\n";

/// A pre-release of `acme:text`, newer than every release of the WIT fixtures.
const PRE_RELEASE_WIT: &str =
    "package acme:text@3.0.0-rc.1;\n\ninterface casing {\n  upper: func(s: string) -> string;\n}\n";

/// A copy of the `hello` fixture whose Cargo.toml is `manifest`.
fn hello_with(sandbox: &Sandbox, manifest: &str) -> Project {
    let project = sandbox.project("hello");
    fs::write(project.manifest(), manifest).expect("write the test manifest");
    project
}

fn manifest_text(project: &Project) -> String {
    fs::read_to_string(project.manifest()).expect("read the project manifest")
}

/// `MANIFEST` with `table` (header and entries) inserted after the component table.
fn manifest_with(table: &str) -> String {
    MANIFEST.replace(TARGET_LINE, &format!("{TARGET_LINE}\n{table}"))
}

/// A WIT directory holding `PRE_RELEASE_WIT`.
fn pre_release_dir(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.path().join("acme-text-3.0.0-rc.1");
    fs::create_dir_all(&dir).expect("create the pre-release WIT dir");
    fs::write(dir.join("text.wit"), PRE_RELEASE_WIT).expect("write the pre-release WIT");
    dir
}

#[test]
fn add_without_requirement_writes_the_newest_release_keeping_the_rest_of_the_file() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let pre_release = pre_release_dir(&sandbox);
    sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(pre_release).ok();
    let project = hello_with(&sandbox, MANIFEST);

    let add = sandbox.wreg(["add", "acme:text", "--registry", registry.url(), "--manifest-path"]);
    add.arg(project.manifest())
        .ok()
        .assert_stderr_contains("Adding acme:text ^2.0.0 to dependencies");
    let table = "[package.metadata.component.dependencies]\n\"acme:text\" = \"2.0.0\"\n";
    assert_eq!(manifest_text(&project), manifest_with(table));

    // Adding it again with a requirement changes only that requirement.
    let add = sandbox.wreg(["add", "acme:text@1.1", "--registry", registry.url()]);
    let output = add.arg("--manifest-path").arg(project.manifest()).ok();
    output.assert_stderr_contains("Updating acme:text ^2.0.0 -> ^1.1");
    let table = "[package.metadata.component.dependencies]\n\"acme:text\" = \"1.1\"\n";
    assert_eq!(manifest_text(&project), manifest_with(table));

    // A requirement no release satisfies is refused, and the manifest stays as it was.
    let add = sandbox.wreg(["add", "acme:text@5", "--registry", registry.url()]);
    add.arg("--manifest-path")
        .arg(project.manifest())
        .fails()
        .assert_stderr_contains("no release of `acme:text` matches `5`")
        .assert_stderr_contains("are 3.0.0-rc.1, 2.0.0, 1.1.0, 1.0.0");
    assert_eq!(manifest_text(&project), manifest_with(table));
}

#[test]
fn add_with_requirement_writes_it_as_given_when_the_registry_is_down() {
    let sandbox = Sandbox::new();
    let project = hello_with(&sandbox, MANIFEST);

    let add = sandbox.wreg(["add", "acme:kv@~1.2", "--registry", &closed_port_url()]);
    let output = add.arg("--manifest-path").arg(project.manifest()).ok();
    output.assert_stderr_contains("could not check that a release of acme:kv matches `~1.2`");
    output.assert_stderr_contains("Adding acme:kv ~1.2 to dependencies");
    let table = "[package.metadata.component.dependencies]\n\"acme:kv\" = \"~1.2\"\n";
    assert_eq!(manifest_text(&project), manifest_with(table));
}

#[test]
fn add_with_target_writes_the_local_targets_dependencies() {
    let sandbox = Sandbox::new();
    let local = "[package.metadata.component.target]\npath = \"wit\"\nworld = \"greeter\"\n";
    let manifest = MANIFEST.replace(TARGET_LINE, &format!("\n{local}"));
    let project = hello_with(&sandbox, &manifest);

    let add = sandbox.wreg(["add", "acme:text@1.1", "--target", "--registry", &closed_port_url()]);
    let output = add.arg("--manifest-path").arg(project.manifest()).ok();
    output.assert_stderr_contains("Adding acme:text ^1.1 to target dependencies");
    let table = "[package.metadata.component.target.dependencies]\n\"acme:text\" = \"1.1\"\n";
    let expected = MANIFEST.replace(TARGET_LINE, &format!("\n{local}\n{table}"));
    assert_eq!(manifest_text(&project), expected);
}

#[test]
fn add_with_target_refuses_a_registry_target() {
    let sandbox = Sandbox::new();
    let project = hello_with(&sandbox, MANIFEST);

    let add = sandbox.wreg(["add", "acme:text@1", "--target", "--registry", &closed_port_url()]);
    let output = add.arg("--manifest-path").arg(project.manifest()).fails();
    output
        .assert_stderr_contains(&project.manifest().display().to_string())
        .assert_stderr_contains(
            "`package.metadata.component.target` is the registry world \
             `acme:greeting/greeter@1.0`",
        )
        .assert_stderr_contains("help:");
    assert_eq!(manifest_text(&project), MANIFEST);
}

#[test]
fn add_with_path_writes_a_path_table_without_asking_a_registry() {
    let sandbox = Sandbox::new();
    let project = hello_with(&sandbox, MANIFEST);
    fs::create_dir_all(project.path("wit/kv")).expect("create wit/kv");
    fs::write(project.path("wit/kv/kv.wit"), "package acme:kv@0.1.0;\n").expect("write kv.wit");

    let registry = closed_port_url();
    let add = sandbox.wreg(["add", "acme:kv", "--path", "wit/kv", "--registry", &registry]);
    let output = add.arg("--manifest-path").arg(project.manifest()).ok();
    output.assert_stderr_contains("Adding acme:kv path `wit/kv` to dependencies");
    let table = "[package.metadata.component.dependencies]\n\"acme:kv\" = { path = \"wit/kv\" }\n";
    assert_eq!(manifest_text(&project), manifest_with(table));

    let add = sandbox.wreg(["add", "acme:other", "--path", "wit/other", "--manifest-path"]);
    add.arg(project.manifest()).fails().assert_stderr_contains("`wit/other` does not exist");
    assert_eq!(manifest_text(&project), manifest_with(table));
}

#[test]
fn add_dry_run_writes_nothing() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let project = hello_with(&sandbox, MANIFEST);
    let before = modified(&project.manifest());

    let add = sandbox.wreg(["add", "acme:text", "--dry-run", "--registry", registry.url()]);
    add.arg("--manifest-path")
        .arg(project.manifest())
        .ok()
        .assert_stderr_contains("Adding acme:text ^2.0.0 to dependencies")
        .assert_stderr_contains("dry run");
    assert_eq!(manifest_text(&project), MANIFEST);
    assert_eq!(modified(&project.manifest()), before, "a dry run touched Cargo.toml");
}

#[test]
fn info_lists_versions_newest_first_with_the_digests_publish_printed() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let mut expected = Vec::new();
    for name in ["acme-text-1.0.0", "acme-text-1.1.0", "acme-text-2.0.0"] {
        let digests = publish_printing_digests(&sandbox, &registry, &fixture_wit(name));
        let version = name.trim_start_matches("acme-text-");
        expected.push(format!("{version}  {digests}"));
    }
    let digests = publish_printing_digests(&sandbox, &registry, &pre_release_dir(&sandbox));
    expected.push(format!("3.0.0-rc.1  {digests}"));
    expected.reverse();

    let output = sandbox.wreg(["info", "acme:text", "--registry", registry.url()]).ok();
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines, expected, "stdout of `info`\n{output}");
}

/// Publishes the WIT package at `path` and returns the layer digest that `publish --dry-run`
/// printed for it and the manifest digest that `publish` printed, two spaces apart.
fn publish_printing_digests(sandbox: &Sandbox, registry: &Registry, path: &Path) -> String {
    let publish = || sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(path);
    let dry_run = publish().arg("--dry-run").ok();
    let line = dry_run.status_line("Would");
    let layer = line.split("(layer ").nth(1).and_then(|rest| rest.split(',').next());
    let layer = layer.unwrap_or_else(|| panic!("no layer digest in {line:?}")).to_string();
    let published = publish().ok();
    let line = published.status_line("Published");
    let manifest = line.split(['(', ')']).nth(1);
    let manifest = manifest.unwrap_or_else(|| panic!("no manifest digest in {line:?}"));
    format!("{layer}  {manifest}")
}

#[test]
fn info_and_add_of_an_unknown_package_fail_clearly() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let project = hello_with(&sandbox, MANIFEST);

    let output = sandbox.wreg(["info", "acme:nope", "--registry", registry.url()]).fails();
    output.assert_stderr_contains("package `acme:nope` has no releases");
    assert_eq!(output.stdout, "", "`info` printed to stdout on failure");

    let add = sandbox.wreg(["add", "acme:nope", "--registry", registry.url(), "--manifest-path"]);
    add.arg(project.manifest())
        .fails()
        .assert_stderr_contains("package `acme:nope` has no releases");
    assert_eq!(manifest_text(&project), MANIFEST);
}

/// `config` shows where each package would come from; one unreachable registry does not hide
/// the others.
#[test]
fn config_reports_every_package_even_past_an_unreachable_registry() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let host = registry.url().trim_start_matches("http://").to_string();
    let closed = closed_port_url().trim_start_matches("http://").to_string();
    let dir = sandbox.path().join("xdg-config/wasm-pkg");
    fs::create_dir_all(&dir).expect("create the wasm-pkg config dir");
    let config =
        format!("default_registry = \"{host}\"\n\n[namespace_registries]\nfoo = \"{closed}\"\n");
    fs::write(dir.join("config.toml"), config).expect("write the wasm-pkg config");

    let output = sandbox.wreg(["config", "foo:bar", "acme:text"]).ok();
    let out = &output.stdout;
    assert!(out.contains(&format!("foo:bar: `{closed}`")), "{output}");
    assert!(out.contains("  OCI repository: unknown: "), "{output}");
    assert!(out.contains(&format!("acme:text: `{host}`")), "{output}");
    assert!(out.contains(&format!("  OCI repository: {host}/acme/text")), "{output}");
}
