//! Resolution, the lock and offline work: several versions side by side, conflicts, `--locked`,
//! `--offline`, builds with the registry gone, and the `update` and `tree` commands.

mod common;

use std::fs;

use common::{Project, Registry, Sandbox, modified};

/// Adds a `[package.metadata.component.dependencies]` table to the project's manifest.
fn add_dependencies(project: &Project, table: &str) {
    let manifest = project.manifest();
    let mut text = fs::read_to_string(&manifest).expect("read Cargo.toml");
    text.push_str(&format!("\n[package.metadata.component.dependencies]\n{table}\n"));
    fs::write(&manifest, text).expect("write Cargo.toml");
}

fn fetch(sandbox: &Sandbox, registry: &Registry, project: &Project) -> common::Wreg {
    sandbox.wreg(["fetch", "--registry", registry.url(), "--manifest-path"]).arg(project.manifest())
}

#[test]
fn incompatible_versions_of_one_package_coexist() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    add_dependencies(&hello, r#""acme:text" = "2""#);

    fetch(&sandbox, &registry, &hello).ok();

    let locked: Vec<(String, String)> =
        hello.locked_packages().into_iter().map(|(name, version, _)| (name, version)).collect();
    let text = |v: &str| ("acme:text".to_string(), v.to_string());
    assert!(locked.contains(&text("1.1.0")) && locked.contains(&text("2.0.0")), "{locked:?}");
    assert!(hello.path("wit/deps/acme-text-1.1.0/package.wit").is_file());
    assert!(hello.path("wit/deps/acme-text-2.0.0/package.wit").is_file());

    let tree =
        sandbox.wreg(["tree", "--registry", registry.url(), "--duplicates", "--manifest-path"]);
    let out = tree.arg(hello.manifest()).ok().stdout;
    assert!(out.contains("acme:text v1.1.0"), "{out}");
    assert!(out.contains("acme:text v2.0.0"), "{out}");
    assert!(out.contains("└── acme:greeting v1.1.0"), "{out}");

    // `acme:text@2`, which the world does not use, leaves its bindings' names alone: the
    // crate's `bindings::acme::text` still compiles.
    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    build.arg(hello.manifest()).ok();
}

/// A WIT package named by path needs no registry itself; what it references is resolved with
/// the rest, and `tree` draws it as a node of its own.
#[test]
fn path_dependencies_resolve_what_they_reference() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    let local = hello.path("deps/local");
    fs::create_dir_all(&local).expect("create deps/local");
    let wit = "package acme:local@0.1.0;\n\ninterface shout {\n    \
               use acme:text/types@1.0.0.{case-style};\n    \
               shout: func(text: string, style: case-style) -> string;\n}\n";
    fs::write(local.join("local.wit"), wit).expect("write local.wit");
    add_dependencies(&hello, r#""acme:local" = { path = "./deps/local" }"#);

    fetch(&sandbox, &registry, &hello).ok();
    // Its reference to `acme:text@1.0.0` shares the release the target world chose.
    assert!(hello.path("wit/deps/acme-local-0.1.0/package.wit").is_file());
    assert!(!hello.path("wit/deps/acme-text-1.0.0").exists());
    let locked = hello.locked_packages();
    assert!(locked.iter().all(|(name, _, _)| name != "acme:local"), "{locked:?}");

    let tree = sandbox.wreg(["tree", "--registry", registry.url(), "--manifest-path"]);
    let out = tree.arg(hello.manifest()).ok().stdout;
    let node = format!("└── acme:local ({})\n    └── acme:text v1.1.0", local.display());
    assert!(out.contains(&node), "{out}");

    let inverted = sandbox.wreg(["tree", "--registry", registry.url(), "-i", "acme:local"]);
    let out = inverted.arg("--manifest-path").arg(hello.manifest()).ok().stdout;
    assert!(out.starts_with(&format!("acme:local ({})\n└── hello", local.display())), "{out}");
}

/// A WIT package that `dependencies` names and the crate's own world also references, with the
/// same requirement, is one the world uses.
#[test]
fn a_dependency_the_local_world_references_is_assembled() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    fs::create_dir_all(hello.path("wit")).expect("create wit");
    let world = "package acme:app@0.1.0;\n\nworld app {\n    \
                 use acme:text/types@1.1.0.{case-style};\n    \
                 export shout: func(style: case-style) -> string;\n}\n";
    fs::write(hello.path("wit/world.wit"), world).expect("write world.wit");
    let manifest = fs::read_to_string(hello.manifest()).expect("read Cargo.toml");
    let manifest = manifest.replace("target = \"acme:greeting/greeter@1.0\"\n", "");
    fs::write(hello.manifest(), manifest).expect("write Cargo.toml");
    add_dependencies(&hello, r#""acme:text" = "1.1.0""#);

    fetch(&sandbox, &registry, &hello).ok();
    assert!(hello.path("src/bindings.rs").is_file());
}

#[test]
fn conflicts_are_explained() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    add_dependencies(&hello, r#""acme:text" = "=1.0.0""#);

    let out = fetch(&sandbox, &registry, &hello).fails();
    out.assert_stderr_contains("no release of `acme:text` satisfies every requirement");
    out.assert_stderr_contains("`hello` needs `acme:text =1.0.0`");
    out.assert_stderr_contains(
        "`hello` needs `acme:greeting ^1.0` -> `acme:greeting 1.1.0` needs `acme:text ^1.1.0`",
    );
    out.assert_stderr_contains("2.0.0, 1.1.0, 1.0.0");
    hello.assert_nothing_generated();
}

#[test]
fn builds_from_lock_and_cache_with_the_registry_gone() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    let url = registry.url().to_string();
    sandbox.wreg(["build", "--registry", &url, "--manifest-path"]).arg(hello.manifest()).ok();
    drop(registry);

    let lock_time = modified(&hello.path("wkg.lock"));
    let out =
        sandbox.wreg(["build", "--registry", &url, "--manifest-path"]).arg(hello.manifest()).ok();
    out.status_line("Component");
    assert_eq!(modified(&hello.path("wkg.lock")), lock_time, "wkg.lock was rewritten");

    // Offline needs no registry configured at all.
    sandbox.wreg(["build", "--offline", "--manifest-path"]).arg(hello.manifest()).ok();
}

#[test]
fn locked_refuses_a_changed_requirement() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    fetch(&sandbox, &registry, &hello).ok();
    let before = fs::read(hello.path("wkg.lock")).expect("read wkg.lock");

    hello.set_target("acme:greeting/greeter@=1.0.0");
    let out = fetch(&sandbox, &registry, &hello).arg("--locked").fails();
    out.assert_stderr_contains("needs to be updated but --locked was passed");
    assert_eq!(fs::read(hello.path("wkg.lock")).expect("read wkg.lock"), before);

    fetch(&sandbox, &registry, &hello).ok();
    let locked = hello.locked_packages();
    assert!(locked.iter().any(|(n, v, _)| n == "acme:greeting" && v == "1.0.0"), "{locked:?}");
}

#[test]
fn offline_with_an_empty_cache_fails_clearly() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    fetch(&sandbox, &registry, &hello).ok();

    // Without vendored WIT to fall back on.
    fs::remove_dir_all(hello.path("wit/deps")).expect("remove wit/deps");
    let other = Sandbox::new();
    let out = other
        .wreg(["fetch", "--offline", "--registry", registry.url(), "--manifest-path"])
        .arg(hello.manifest())
        .fails();
    out.assert_stderr_contains("cannot be contacted with --offline");
    out.assert_stderr_contains("without --offline");
}

#[test]
fn update_moves_versions_and_reports_them() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    fetch(&sandbox, &registry, &hello).ok();
    let update = || {
        sandbox
            .wreg(["update", "--registry", registry.url(), "--manifest-path"])
            .arg(hello.manifest())
    };

    let before = fs::read(hello.path("wkg.lock")).expect("read wkg.lock");
    let out = update().args(["acme:greeting", "--precise", "1.0.0", "--dry-run"]).ok();
    out.assert_stderr_contains("Updating acme:greeting v1.1.0 -> v1.0.0");
    assert_eq!(fs::read(hello.path("wkg.lock")).expect("read wkg.lock"), before, "dry run wrote");

    update().args(["acme:greeting", "--precise", "1.0.0"]).ok();
    let locked = hello.locked_packages();
    assert!(locked.iter().any(|(n, v, _)| n == "acme:greeting" && v == "1.0.0"), "{locked:?}");

    let out = update().ok();
    out.assert_stderr_contains("Updating acme:greeting v1.0.0 -> v1.1.0");
    let out = update().args(["acme:greeting", "--precise", "2.0.0"]).fails();
    out.assert_stderr_contains("`acme:greeting` has no release 2.0.0");
    out.assert_stderr_contains("the newest releases are 1.1.0, 1.0.0");
    // The same for a version the requirement would accept.
    let out = update().args(["acme:greeting", "--precise", "1.0.5"]).fails();
    out.assert_stderr_contains("`acme:greeting` has no release 1.0.5");
    let out = update().args(["acme:text", "--precise", "2.0.0"]).fails();
    out.assert_stderr_contains(
        "`acme:text@2.0.0` does not satisfy the requirements on `acme:text`: \
         `acme:greeting 1.1.0` needs `acme:text ^1.1.0`",
    );

    let inverted =
        sandbox.wreg(["tree", "--registry", registry.url(), "-i", "acme:text", "--manifest-path"]);
    let out = inverted.arg(hello.manifest()).ok().stdout;
    assert!(out.starts_with("acme:text v1.1.0"), "{out}");
    assert!(out.contains("└── hello"), "{out}");
}

#[test]
fn the_no_op_fast_path_notices_changes() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    let build = || {
        sandbox
            .wreg(["build", "--registry", registry.url(), "--manifest-path"])
            .arg(hello.manifest())
    };
    build().ok();

    fs::remove_file(hello.path("src/bindings.rs")).expect("remove bindings");
    build().ok();
    assert!(hello.path("src/bindings.rs").is_file(), "bindings were not regenerated");

    hello.set_target("acme:greeting/greeter@=1.0.0");
    let out = build().ok();
    assert!(out.status_line("Component").ends_with("acme:greeting/greeter@1.0.0)"), "{out}");
}

#[test]
fn vendored_wit_builds_without_any_registry() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");
    fetch(&sandbox, &registry, &hello).ok();
    drop(registry);

    // A fresh clone: wkg.lock and wit/deps committed, an empty cache, no registry at all.
    fs::remove_file(hello.path("src/bindings.rs")).expect("remove bindings");
    let clone = Sandbox::new();
    let out = clone.wreg(["build", "--manifest-path"]).arg(hello.manifest()).ok();
    out.status_line("Component");
    assert!(hello.path("src/bindings.rs").is_file(), "bindings were not generated");
}
