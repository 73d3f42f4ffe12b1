//! The real WASI 0.2 WIT packages end to end: publish them to the embedded registry, build a
//! `wasi:http/proxy` component against them and serve HTTP requests with it in wasmtime.
//!
//! The WIT comes from the `wit/deps` folder that published `wasmtime-wasi-http` crates ship.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Project, Registry, Sandbox, built_component, fixture_target_dir, run_ok, wasi_wit_deps,
    wasmtime,
};

/// The WASI packages, each after the packages it references.
const WASI_PACKAGES: &[&str] = &["io", "clocks", "random", "filesystem", "sockets", "cli", "http"];

/// What the fixture component answers to every request.
const GREETING: &str = "Hello from cargo-wreg";

/// How long wasmtime may take to compile the component and start listening.
const SERVE_TIMEOUT: Duration = Duration::from_secs(120);

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn wasi_http_component_serves_requests() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    // wasmtime-wasi-http 40.0.0 ships WASI 0.2.6 as one directory per package.
    let wit = wasi_wit_deps("40.0.0");
    publish_wasi(&sandbox, &registry, |package| wit.join(package));
    let project = sandbox.project("wasi-http");

    let build = sandbox.wreg(["build", "--registry", registry.url(), "--manifest-path"]);
    let output = build.arg(project.manifest()).ok();
    let line = output.status_line("Component");
    assert!(line.ends_with("(wasi:http/proxy@0.2.6)"), "world: {line}");
    check_locked(&project, "0.2.6");
    check_wit_deps(&project, "0.2.6");

    let server = Server::start(&built_component("debug", "hello_http"));
    let (status, body) = http_get(&server.url)
        .unwrap_or_else(|err| panic!("GET {} failed: {err:#}\n{}", server.url, server.log()));
    assert_eq!((status, body.as_str()), (200, GREETING), "wasmtime:\n{}", server.log());
    drop(server);

    // Once fetched, the project is an ordinary crate: cargo alone builds it.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["build", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(project.manifest())
            .env("CARGO_TARGET_DIR", fixture_target_dir())
            .env_remove("CARGO_BUILD_TARGET"),
    );
}

/// WASI published as one `.wit` file per package resolves too, and a project asking for
/// `wasi:http/proxy@0.2.6` moves every WASI package up to the newest compatible release.
#[test]
fn newest_compatible_wasi_release_is_chosen() {
    let registry = Registry::start();
    let sandbox = Sandbox::new();
    let old = wasi_wit_deps("40.0.0");
    // wasmtime-wasi-http 48.0.8 ships WASI 0.2.12 as one `.wit` file per package.
    let new = wasi_wit_deps("48.0.8");
    publish_wasi(&sandbox, &registry, |package| old.join(package));
    publish_wasi(&sandbox, &registry, |package| new.join(format!("{package}.wit")));
    let project = sandbox.project("wasi-http");

    // Only a fetch: a build here would race the other test for the same `.wasm` path.
    let fetch = sandbox.wreg(["fetch", "--registry", registry.url(), "--manifest-path"]);
    fetch.arg(project.manifest()).ok();
    check_locked(&project, "0.2.12");
    check_wit_deps(&project, "0.2.12");
}

/// Publishes every WASI package, dependencies first; `path` gives each one's WIT.
fn publish_wasi(sandbox: &Sandbox, registry: &Registry, path: impl Fn(&str) -> PathBuf) {
    for package in WASI_PACKAGES {
        sandbox.wreg(["publish", "--registry", registry.url(), "--wit"]).arg(path(package)).ok();
    }
}

/// The lock pins exactly the WASI packages, all at `version`, each with a sha256 digest.
fn check_locked(project: &Project, version: &str) {
    let locked = project.locked_packages();
    let mut names: Vec<&str> = locked.iter().map(|(name, ..)| name.as_str()).collect();
    names.sort();
    let mut expected: Vec<String> = WASI_PACKAGES.iter().map(|p| format!("wasi:{p}")).collect();
    expected.sort();
    assert_eq!(names, expected, "wkg.lock: {locked:?}");

    for (name, locked_version, digest) in &locked {
        assert_eq!(locked_version, version, "locked version of {name}");
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "locked digest of {name}: {digest:?}"
        );
    }
}

/// `wit/deps` holds each WASI package at `version`, as WIT naming that package.
fn check_wit_deps(project: &Project, version: &str) {
    let deps = project.path("wit/deps");
    let mut dirs: Vec<String> = fs::read_dir(&deps)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", deps.display()))
        .map(|entry| entry.expect("read wit/deps").file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut expected: Vec<String> =
        WASI_PACKAGES.iter().map(|p| format!("wasi-{p}-{version}")).collect();
    expected.sort();
    assert_eq!(dirs, expected);

    for package in WASI_PACKAGES {
        let wit = wit_text(&deps.join(format!("wasi-{package}-{version}")));
        let declaration = format!("package wasi:{package}@{version}");
        assert!(wit.contains(&declaration), "wit/deps lacks `{declaration}`");
    }
}

/// All `.wit` files in `dir`, concatenated.
fn wit_text(dir: &Path) -> String {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    let mut text = String::new();
    for entry in entries {
        let path = entry.expect("read a wit/deps entry").path();
        if path.extension().is_some_and(|ext| ext == "wit") {
            text += &fs::read_to_string(&path).expect("read a .wit file");
        }
    }
    text
}

/// A GET of `url` on a fresh client that never goes through a proxy: status code and body.
fn http_get(url: &str) -> reqwest::Result<(u16, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().timeout(REQUEST_TIMEOUT).build()?;
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    })
}

/// `wasmtime serve` running one component on a free loopback port; killed on drop.
struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(component: &Path) -> Server {
        // Rust's standard library imports `wasi:cli` interfaces outside the proxy world (the
        // environment, for one); `wasmtime serve` provides them only with `-S cli`.
        let mut child = Command::new(wasmtime())
            .args(["serve", "-S", "cli", "--addr", "127.0.0.1:0"])
            .arg(component)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn `wasmtime serve`");
        let stderr = stderr_lines(child.stderr.take().expect("stderr is piped"));
        let mut server = Server { child, url: String::new(), stderr };
        server.url = server.wait_for_url();
        server
    }

    /// Waits for the `Serving HTTP on http://127.0.0.1:PORT/` line wasmtime prints once it
    /// listens, and returns that URL.
    fn wait_for_url(&mut self) -> String {
        let deadline = Instant::now() + SERVE_TIMEOUT;
        let mut seen = Vec::new();
        let outcome = loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => match line.trim().strip_prefix("Serving HTTP on ") {
                    Some(url) => return url.to_string(),
                    None => seen.push(line),
                },
                // Its stderr closed, so wasmtime has exited.
                Err(RecvTimeoutError::Disconnected) => {
                    break self.child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
                }
                Err(RecvTimeoutError::Timeout) => {
                    break format!("still running after {SERVE_TIMEOUT:?}");
                }
            }
        };
        panic!("`wasmtime serve` did not report its address ({outcome})\n{}", seen.join("\n"));
    }

    /// What wasmtime printed on stderr since it started listening, for failure messages.
    fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `stderr` down a channel, draining it so wasmtime never blocks on it.
fn stderr_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}
