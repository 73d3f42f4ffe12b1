//! `cargo wreg publish` beyond the main job: the semver check against the previous release of a
//! series, the metadata and annotations a release carries, dry runs, refusals that leave the
//! registry untouched, and whole-workspace publishing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Registry, Sandbox, run_ok, sha256_digest, skopeo};

/// A small WIT package; `{version}` and `{extra}` are filled in per release.
const SHAPES: &str = "/// Shapes for the publish tests.
package acme:shapes@{version};

interface geometry {
    record point { x: f32, y: f32 }
    area: func(points: list<point>) -> f64;
    {extra}
}
";

/// Writes release `version` of `acme:shapes`, with `edit` applied to its text, and returns
/// its directory.
fn shapes(sandbox: &Sandbox, version: &str, extra: &str, edit: (&str, &str)) -> PathBuf {
    let text =
        SHAPES.replace("{version}", version).replace("{extra}", extra).replace(edit.0, edit.1);
    let dir = sandbox.path().join(format!("shapes-{}", &sha256_digest(text.as_bytes())[7..19]));
    fs::create_dir_all(&dir).expect("create a WIT package dir");
    fs::write(dir.join("shapes.wit"), text).expect("write a WIT package");
    dir
}

const SAME: (&str, &str) = ("", "");
const X_AS_F64: (&str, &str) = ("x: f32", "x: f64");
const NO_AREA: (&str, &str) = ("area: func(points: list<point>) -> f64;", "");
const PERIMETER: &str = "perimeter: func(points: list<point>) -> f64;";

fn publish_wit(sandbox: &Sandbox, registry: &Registry, path: &Path) -> common::Wreg {
    sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(path)
}

/// Whether `package@version` can be pulled from `registry`.
fn published(sandbox: &Sandbox, registry: &Registry, spec: &str) -> bool {
    let out = sandbox.path().join("pulled-check.wasm");
    let pull = sandbox.wreg(["pull", spec, "--registry", registry.url(), "-o"]).arg(&out);
    pull.run_with_input(b"").status.success()
}

#[test]
fn breaking_wit_changes_are_refused_within_a_series_and_compatible_ones_accepted() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    publish_wit(&sandbox, &registry, &shapes(&sandbox, "1.0.0", "", SAME)).ok();

    // Adding a function is compatible.
    let output = publish_wit(&sandbox, &registry, &shapes(&sandbox, "1.1.0", PERIMETER, SAME)).ok();
    output.assert_stderr_contains("Comparing acme:shapes@1.1.0 with 1.0.0");

    // Changing a field's type is not, and nothing is pushed.
    let breaking = shapes(&sandbox, "1.2.0", PERIMETER, X_AS_F64);
    publish_wit(&sandbox, &registry, &breaking)
        .fails()
        .assert_stderr_contains("`acme:shapes@1.2.0` breaks compatibility with `acme:shapes@1.1.0`")
        .assert_stderr_contains(
            "interface `acme:shapes/geometry`: type `point` changed: field `x`: `f32` became `f64`",
        )
        .assert_stderr_contains("such as version 2.0.0");
    assert!(!published(&sandbox, &registry, "acme:shapes@1.2.0"), "a refused release was pushed");

    // Removing a function is not compatible either; --allow-breaking publishes it with a warning.
    let removed = shapes(&sandbox, "1.2.0", PERIMETER, NO_AREA);
    publish_wit(&sandbox, &registry, &removed)
        .fails()
        .assert_stderr_contains("function `area` was removed");
    publish_wit(&sandbox, &registry, &removed)
        .arg("--allow-breaking")
        .ok()
        .assert_stderr_contains("warning:")
        .assert_stderr_contains("as --allow-breaking asks");
    assert!(published(&sandbox, &registry, "acme:shapes@1.2.0"));

    // A new major version starts a new series: nothing to compare with.
    let output = publish_wit(&sandbox, &registry, &shapes(&sandbox, "2.0.0", "", X_AS_F64)).ok();
    assert!(!output.stderr.contains("Comparing"), "2.0.0 was compared\n{output}");
}

#[test]
fn below_one_the_minor_version_is_the_series() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    publish_wit(&sandbox, &registry, &shapes(&sandbox, "0.3.0", "", SAME)).ok();

    publish_wit(&sandbox, &registry, &shapes(&sandbox, "0.3.1", "", NO_AREA))
        .fails()
        .assert_stderr_contains("breaks compatibility with `acme:shapes@0.3.0`")
        .assert_stderr_contains("such as version 0.4.0");
    publish_wit(&sandbox, &registry, &shapes(&sandbox, "0.4.0", "", NO_AREA)).ok();
    // Only earlier releases are compared with: 0.3.2 follows 0.3.0, not 0.4.0.
    let output = publish_wit(&sandbox, &registry, &shapes(&sandbox, "0.3.2", PERIMETER, SAME)).ok();
    output.assert_stderr_contains("Comparing acme:shapes@0.3.2 with 0.3.0");
}

#[test]
fn a_wit_dry_run_shows_what_would_be_pushed_and_pushes_nothing() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let host = registry.url().trim_start_matches("http://").to_string();
    let package = shapes(&sandbox, "1.0.0", "", SAME);
    let output = publish_wit(&sandbox, &registry, &package).arg("--dry-run").ok();
    output
        .assert_stderr_contains(&format!(
            "Would push acme:shapes@1.0.0 to {host}/acme/shapes:1.0.0"
        ))
        .assert_stderr_contains("Annotation org.opencontainers.image.version=1.0.0")
        .assert_stderr_contains(
            "Annotation org.opencontainers.image.description=Shapes for the publish tests.",
        )
        .assert_stderr_contains("Annotation org.opencontainers.image.created=");
    for verb in ["Manifest", "Config", "Layer"] {
        let line = output.status_line(verb);
        assert!(line.starts_with("sha256:") && line.contains(" bytes)"), "{verb} line: {line}");
    }
    assert!(!published(&sandbox, &registry, "acme:shapes@1.0.0"), "a dry run pushed");
}

#[test]
fn publishing_without_a_package_name_is_a_clear_error_and_pushes_nothing() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let hello = sandbox.project("hello");
    edit_manifest(&hello.manifest(), |doc| {
        let component = &mut doc["package"]["metadata"]["component"];
        component.as_table_like_mut().expect("a component table").remove("package");
    });

    let output = sandbox
        .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
        .arg(hello.manifest())
        .fails();
    output
        .assert_stderr_contains("does not set `package` in `[package.metadata.component]`")
        .assert_stderr_contains("help: add `package = \"ns:name\"`");
    assert!(!output.stderr.contains("Compiling"), "it built before refusing\n{output}");
    hello.assert_nothing_generated();
    // The server's own lock on its storage is the one file there may be.
    let stored: Vec<PathBuf> = files_under(&registry.storage())
        .into_iter()
        .filter(|p| !p.ends_with(".serve.lock"))
        .collect();
    assert_eq!(stored, Vec::<PathBuf>::new(), "something was pushed");
}

#[test]
fn components_carry_their_facts_as_metadata_and_annotations_skopeo_sees() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    edit_manifest(&hello.manifest(), |doc| {
        let package = &mut doc["package"];
        package["description"] = toml_edit::value("Greets people by name");
        package["license"] = toml_edit::value("MIT OR Apache-2.0");
        package["repository"] = toml_edit::value("https://example.com/acme/hello");
        package["homepage"] = toml_edit::value("https://example.com/hello");
        let mut authors = toml_edit::Array::new();
        authors.push("Ada <ada@example.com>");
        package["authors"] = toml_edit::value(authors);
    });
    let revision = commit_all(hello.root());
    // Its own target dir: other tests build `hello` in release too, and would replace the file
    // this test compares with what was pushed.
    let target_dir = common::repo_root().join("target").join("fixture-builds-publish-metadata");
    let publish = || {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
            .arg(hello.manifest())
            .env("CARGO_TARGET_DIR", &target_dir)
    };

    // A dry run builds and shows the annotations, but pushes nothing.
    let output = publish().arg("--dry-run").ok();
    output.assert_stderr_contains(&format!(
        "Annotation org.opencontainers.image.revision={revision}"
    ));
    assert!(!published(&sandbox, &registry, "acme:hello@0.1.0"), "a dry run pushed");

    publish().ok();
    let host = registry.url().trim_start_matches("http://");
    let reference = format!("docker://{host}/acme/hello:0.1.0");
    let raw =
        run_ok(Command::new(skopeo()).args(["inspect", "--raw", "--tls-verify=false", &reference]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("skopeo prints JSON");
    // The config names the world the component targets, for registry UIs and wkg.
    let config = ["inspect", "--config", "--raw", "--tls-verify=false", &reference];
    let config = run_ok(Command::new(skopeo()).args(config));
    let config: serde_json::Value = serde_json::from_str(&config).expect("skopeo prints JSON");
    assert_eq!(config["component"]["target"], "acme:greeting/greeter@1.1.0", "{config}");
    let annotations = &manifest["annotations"];
    let expected = [
        ("version", "0.1.0"),
        ("description", "Greets people by name"),
        ("licenses", "MIT OR Apache-2.0"),
        ("source", "https://example.com/acme/hello"),
        ("url", "https://example.com/hello"),
        ("authors", "Ada <ada@example.com>"),
        ("revision", revision.as_str()),
    ];
    for (key, value) in expected {
        assert_eq!(annotations[format!("org.opencontainers.image.{key}")], value, "{raw}");
    }
    assert!(annotations["org.opencontainers.image.created"].is_string(), "{raw}");

    // The pushed component is the file the build left, stamped with the same facts.
    let pulled = sandbox.path().join("hello.wasm");
    sandbox
        .wreg(["pull", "acme:hello@0.1.0", "--registry", registry.url(), "-o"])
        .arg(&pulled)
        .ok();
    let wasm = fs::read(&pulled).expect("read the pulled component");
    let built = target_dir.join("wasm32-wasip2").join("release").join("hello.wasm");
    assert!(wasm == fs::read(built).expect("read the build"));
    let payload = wasm_metadata::Payload::from_binary(&wasm).expect("read the wasm metadata");
    let metadata = payload.metadata();
    assert_eq!(metadata.name.as_deref(), Some("hello"));
    let text = |field: Option<&dyn std::fmt::Display>| field.map(ToString::to_string);
    assert_eq!(text(metadata.version.as_ref().map(|v| v as _)).as_deref(), Some("0.1.0"));
    assert_eq!(
        text(metadata.description.as_ref().map(|v| v as _)).as_deref(),
        Some("Greets people by name")
    );
    assert_eq!(
        text(metadata.licenses.as_ref().map(|v| v as _)).as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert_eq!(text(metadata.revision.as_ref().map(|v| v as _)), Some(revision.clone()));

    // The next release of the series is compared with this one.
    edit_manifest(&hello.manifest(), |doc| doc["package"]["version"] = toml_edit::value("0.1.1"));
    publish().ok().assert_stderr_contains("Comparing acme:hello@0.1.1 with 0.1.0");
}

#[test]
fn a_workspace_publishes_every_member_or_none() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let root = workspace_of(&sandbox, &[("hello", "alpha"), ("hello", "beta")]);
    let manifest = root.join("Cargo.toml");
    let publish = |extra: &[&str]| {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--manifest-path"])
            .arg(&manifest)
            .args(extra)
    };

    publish(&[])
        .fails()
        .assert_stderr_contains("the workspace has several components")
        .assert_stderr_contains("--workspace");
    // From a member's own manifest, that member is the one, as with cargo.
    let beta = sandbox.wreg(["publish", "--registry", registry.url(), "--manifest-path"]);
    let output = beta.arg(root.join("beta/Cargo.toml")).ok();
    assert_eq!(output.status_line("Published").split(' ').next(), Some("acme:beta@0.1.0"));
    assert!(!output.stderr.contains("alpha"), "alpha was built too\n{output}");
    // `--workspace` takes them all from there; `tree` starts from the member too.
    let build = sandbox.wreg(["build", "--registry", registry.url(), "--workspace"]);
    let output = build.arg("--manifest-path").arg(root.join("beta/Cargo.toml")).ok();
    output.assert_stderr_contains("alpha.wasm").assert_stderr_contains("beta.wasm");
    let tree = sandbox.wreg(["tree", "--registry", registry.url(), "--manifest-path"]);
    let out = tree.arg(root.join("beta/Cargo.toml")).ok().stdout;
    assert!(out.starts_with("beta\n") && !out.contains("alpha"), "{out}");

    // One member's version exists: nothing is built or pushed.
    let output = publish(&["--workspace"]).fails();
    output.assert_stderr_contains("`acme:beta@0.1.0` already exists");
    assert!(!output.stderr.contains("Compiling"), "it built before refusing\n{output}");
    assert!(!published(&sandbox, &registry, "acme:alpha@0.1.0"));

    edit_manifest(&root.join("beta/Cargo.toml"), |doc| {
        doc["package"]["version"] = toml_edit::value("0.1.1")
    });
    let output = publish(&["--workspace"]).ok();
    assert_eq!(output.status_line("Published").split(' ').next(), Some("acme:alpha@0.1.0"));
    output.assert_stderr_contains("Published acme:beta@0.1.1");
    output.assert_stderr_contains("Comparing acme:beta@0.1.1 with 0.1.0");
}

/// A member whose component uses another member's goes up after it, built against it.
#[test]
fn members_go_up_after_the_members_they_use() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let root = workspace_of(&sandbox, &[("caller", "caller"), ("hello", "hello")]);
    let publish = |extra: &[&str]| {
        sandbox
            .wreg(["publish", "--registry", registry.url(), "--workspace", "--manifest-path"])
            .arg(root.join("Cargo.toml"))
            .args(extra)
            .ok()
    };

    // A dry run builds `caller` against the `hello` it built, since none is published yet.
    let dry_run = publish(&["--dry-run"]);
    dry_run.assert_stderr_contains("Would push acme:hello@0.1.0");
    dry_run.assert_stderr_contains("Would push acme:caller@0.1.0");
    assert!(!published(&sandbox, &registry, "acme:hello@0.1.0"), "a dry run pushed");

    let output = publish(&[]);
    let published: Vec<&str> = output
        .stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Published "))
        .map(|rest| rest.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(published, ["acme:hello@0.1.0", "acme:caller@0.1.0"], "{output}");
    // And what the dry run stood in for is locked now, as published.
    let lock = fs::read_to_string(root.join("wkg.lock")).expect("read wkg.lock");
    assert!(lock.contains("name = \"acme:hello\""), "{lock}");

    // The next releases: building level by level neither drops `caller`'s lock entry nor
    // trips --locked, in a dry run or for real.
    for member in ["hello", "caller"] {
        edit_manifest(&root.join(member).join("Cargo.toml"), |doc| {
            doc["package"]["version"] = toml_edit::value("0.1.1")
        });
    }
    publish(&["--dry-run"]);
    let after = fs::read_to_string(root.join("wkg.lock")).expect("read wkg.lock");
    assert_eq!(after, lock, "a dry run changed wkg.lock");
    // (That first run also brought Cargo.lock up to the new versions, as --locked needs.)
    publish(&["--dry-run", "--locked"]);
    publish(&["--locked"]).assert_stderr_contains("Published acme:caller@0.1.1");
}

/// A workspace of fixture copies: each `(fixture, name)` becomes member `name`, published as
/// `acme:<name>`.
fn workspace_of(sandbox: &Sandbox, members: &[(&str, &str)]) -> PathBuf {
    let root = sandbox.path().join("workspace");
    fs::create_dir_all(&root).expect("create the workspace dir");
    for (fixture, name) in members {
        let copy = sandbox.project(fixture);
        let member = root.join(name);
        fs::rename(copy.root(), &member).expect("move a member into the workspace");
        edit_manifest(&member.join("Cargo.toml"), |doc| {
            doc.remove("workspace");
            doc["package"]["name"] = toml_edit::value(*name);
            let package = format!("acme:{name}");
            doc["package"]["metadata"]["component"]["package"] = toml_edit::value(package);
        });
        fs::rename(member.join("Cargo.lock"), root.join("Cargo.lock")).expect("move Cargo.lock");
    }
    let names: Vec<String> = members.iter().map(|(_, n)| format!("\"{n}\"")).collect();
    let manifest = format!("[workspace]\nmembers = [{}]\nresolver = \"3\"\n", names.join(", "));
    fs::write(root.join("Cargo.toml"), manifest).expect("write the workspace manifest");
    root
}

fn edit_manifest(path: &Path, edit: impl FnOnce(&mut toml_edit::DocumentMut)) {
    let text = fs::read_to_string(path).expect("read a manifest");
    let mut doc: toml_edit::DocumentMut = text.parse().expect("parse a manifest");
    edit(&mut doc);
    fs::write(path, doc.to_string()).expect("write a manifest");
}

/// Makes `dir` a git repository with everything committed; returns the commit.
fn commit_all(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.arg("-C").arg(dir).args(["-c", "user.name=Test", "-c", "user.email=t@example.com"]);
        run_ok(command.args(["-c", "commit.gpgsign=false"]).args(args))
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "release"]);
    git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// Every file under `dir`, which need not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("read a storage entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A WIT package keeps the versions its references name, even when newer compatible releases
/// of those packages exist at publish time: they are the minimum its consumers need.
#[test]
fn published_wit_keeps_the_versions_it_references() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);

    let pulled = sandbox.path().join("greeting.wasm");
    sandbox
        .wreg(["pull", "acme:greeting@1.0.0", "--registry", registry.url(), "-o"])
        .arg(&pulled)
        .ok();
    let bytes = std::fs::read(&pulled).expect("read the pulled package");
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("acme:text/types@1.0.0"), "the reference to acme:text@1.0.0 was moved");
    assert!(!contains("acme:text/types@1.1.0"), "the reference names a newer release");
}
