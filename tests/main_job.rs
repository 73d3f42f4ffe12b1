//! The main job end to end: publish WIT packages to the embedded registry, build a component
//! against them, run it, publish it and pull it back.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Project, Registry, Sandbox, built_component, invoke, modified, sha256_digest};

#[test]
fn main_job() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    sandbox.publish_wit_fixtures(&registry);
    let hello = sandbox.project("hello");

    // The first build resolves, fetches, generates bindings and compiles.
    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    let output = build.arg(hello.manifest()).ok();
    let component = built_component("debug", "hello");
    let line = output.status_line("Component");
    assert!(line.starts_with(&component.display().to_string()), "component path: {line}");
    assert!(line.ends_with("acme:greeting/greeter@1.1.0)"), "world: {line}");

    check_lock(&sandbox, &registry, &hello);
    check_wit_deps(&hello);
    assert!(hello.path("src/bindings.rs").is_file(), "no src/bindings.rs");
    assert_eq!(invoke(&component, r#"greet("World")"#), r#""Hello, World!""#);
    assert_eq!(invoke(&component, r#"greet-in("World", upper)"#), r#""HELLO, WORLD!""#);
    assert_eq!(invoke(&component, "version()"), r#""0.1.0""#);

    check_rebuild_is_quiet(&sandbox, &registry, &hello);
    check_publish_and_pull(&sandbox, &registry, &hello);
}

/// The lock pins the newest compatible versions, with the digests of their wasm layers.
fn check_lock(sandbox: &Sandbox, registry: &Registry, project: &Project) {
    let locked = project.locked_packages();
    let versions: Vec<(&str, &str)> =
        locked.iter().map(|(name, version, _)| (name.as_str(), version.as_str())).collect();
    assert!(versions.contains(&("acme:greeting", "1.1.0")), "wkg.lock: {locked:?}");
    assert!(versions.contains(&("acme:text", "1.1.0")), "wkg.lock: {locked:?}");
    assert_eq!(versions.len(), 2, "wkg.lock locks exactly the two used packages: {locked:?}");

    for (name, version, digest) in &locked {
        let pulled = sandbox.path().join(format!("{name}-{version}.wasm").replace(':', "-"));
        sandbox
            .wreg(["pull", &format!("{name}@{version}"), "--registry", registry.url(), "-o"])
            .arg(&pulled)
            .ok();
        let bytes = fs::read(&pulled).expect("read a pulled WIT package");
        assert_eq!(&sha256_digest(&bytes), digest, "locked digest of {name}@{version}");
    }
}

/// Every resolved package is laid out as WIT under `wit/deps`, and nothing else is.
fn check_wit_deps(project: &Project) {
    let deps = project.path("wit/deps");
    let mut dirs: Vec<String> = fs::read_dir(&deps)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", deps.display()))
        .map(|entry| entry.expect("read wit/deps").file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["acme-greeting-1.1.0", "acme-text-1.1.0"]);

    for (dir, package) in
        [("acme-greeting-1.1.0", "acme:greeting@1.1.0"), ("acme-text-1.1.0", "acme:text@1.1.0")]
    {
        let wit = wit_text(&deps.join(dir));
        assert!(wit.contains(&format!("package {package}")), "{dir} lacks `package {package}`");
    }
}

/// All `.wit` files in `dir`, concatenated.
fn wit_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in fs::read_dir(dir).expect("read a wit/deps package dir") {
        let path = entry.expect("read a wit/deps entry").path();
        if path.extension().is_some_and(|ext| ext == "wit") {
            text += &fs::read_to_string(&path).expect("read a .wit file");
        }
    }
    text
}

/// A second build with nothing changed rewrites neither the bindings nor the lock.
fn check_rebuild_is_quiet(sandbox: &Sandbox, registry: &Registry, project: &Project) {
    let bindings = project.path("src/bindings.rs");
    let lock = project.path("wkg.lock");
    let before = (modified(&bindings), modified(&lock));

    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    build.arg(project.manifest()).ok();
    assert_eq!((modified(&bindings), modified(&lock)), before, "the second build rewrote files");
}

/// Publishing pushes the release component once; pulling it by digest gives the same bytes.
fn check_publish_and_pull(sandbox: &Sandbox, registry: &Registry, project: &Project) {
    let publish = || sandbox.wreg(["publish", "--registry", registry.url(), "--manifest-path"]);
    let pulled = sandbox.path().join("pulled-hello.wasm");
    let pull = |extra: &[&str]| {
        sandbox
            .wreg(["pull", "acme:hello@0.1.0", "--registry", registry.url()])
            .args(extra)
            .arg("-o")
            .arg(&pulled)
    };

    // A dry run builds but pushes nothing.
    publish().arg(project.manifest()).arg("--dry-run").ok();
    pull(&[]).fails();

    let output = publish().arg(project.manifest()).ok();
    let published = output.status_line("Published");
    let digest = published
        .strip_prefix("acme:hello@0.1.0 (")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected `Published` line: {published}"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "bad digest: {digest}");

    publish().arg(project.manifest()).fails().assert_stderr_contains("already exists");

    pull(&["--digest", digest]).ok();
    let release = fs::read(built_component("release", "hello")).expect("read the release build");
    assert!(
        fs::read(&pulled).expect("read the pulled component") == release,
        "pulled bytes differ"
    );
    assert_eq!(invoke(&pulled, r#"greet("World")"#), r#""Hello, World!""#);
}

/// Cargo finds `cargo-wreg` on `PATH` and runs it as `cargo-wreg wreg ...`.
#[test]
fn cargo_runs_the_subcommand() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-wreg")).parent().expect("the binary's dir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["wreg", "--help"])
        .env("PATH", std::env::join_paths(dirs).expect("join PATH"))
        .output()
        .expect("run `cargo wreg --help`");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("publish"), "help lacks the publish command:\n{stdout}");
}
