//! cargo-wreg against real registry software and an independent client: the main job against
//! Distribution (Debian's `docker-registry`), anonymous and with htpasswd Basic auth; login,
//! wrong passwords and CI tokens; chunked uploads and cross-repository mounts; and skopeo
//! reading what we push and pushing what we read.
//!
//! Each test starts its own Distribution on `127.0.0.1` with storage in a temp dir.

mod common;

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cargo_wreg::oci::{Artifact, Client, ClientOptions};
use common::{
    Sandbox, Target, fixture_wit, free_port, main_job_scenario, on_path, run_ok, sha256_digest,
    skopeo,
};
use tempfile::TempDir;

/// A test-only account; the bcrypt line below is `htpasswd -nbB -C 5 wreg-test <PASSWORD>`.
const USER: &str = "wreg-test";
const PASSWORD: &str = "not-a-real-secret";
const HTPASSWD: &str = "wreg-test:$2y$05$7UEjBsNMAu5mhOfi1m2wFu6sdinb.GiXeRPhAdTrcOje4XZ.Zrmre\n";

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A Distribution registry on a free loopback port; killed on drop.
struct Distribution {
    child: Child,
    host: String,
    dir: TempDir,
}

impl Distribution {
    /// Starts one, with htpasswd Basic authentication when `basic_auth`.
    fn start(basic_auth: bool) -> Distribution {
        let binary = on_path("docker-registry").unwrap_or_else(|| {
            panic!(
                "docker-registry not found: these tests run the main job against Distribution. \
                 Install Debian's `docker-registry` package (`apt-get install docker-registry`; \
                 `.ci/run` does)"
            )
        });
        // The free port may be taken again before Distribution binds it (tests run in
        // parallel): then it exits, and another port is tried.
        for _ in 0..5 {
            let dir = TempDir::new().expect("create the Distribution temp dir");
            let port = free_port();
            let config = config_yaml(dir.path(), port, basic_auth);
            fs::write(dir.path().join("config.yml"), config).expect("write the config");
            fs::write(dir.path().join("htpasswd"), HTPASSWD).expect("write the htpasswd file");
            let log = fs::File::create(dir.path().join("registry.log")).expect("create the log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(dir.path().join("config.yml"))
                .env_remove("REGISTRY_HTTP_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut registry = Distribution { child, host: format!("127.0.0.1:{port}"), dir };
            if registry.wait_until_listening() {
                return registry;
            }
        }
        panic!("docker-registry found no free port to listen on");
    }

    /// Waits for this Distribution's own "listening" log line, not just for anything to answer
    /// on the port; false when it exited, having lost the port.
    fn wait_until_listening(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let listening = format!("listening on {}", self.host);
        while !self.log().contains(&listening) || TcpStream::connect(&self.host).is_err() {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if Instant::now() > deadline {
                panic!("docker-registry did not start\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// `127.0.0.1:<port>`, which cargo-wreg reaches over plain HTTP.
    fn host(&self) -> &str {
        &self.host
    }

    fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The access and error log so far.
    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(dir: &Path, port: u16, basic_auth: bool) -> String {
    let auth = if basic_auth {
        format!(
            "auth:\n  htpasswd:\n    realm: wreg-test\n    path: {}\n",
            dir.join("htpasswd").display()
        )
    } else {
        String::new()
    };
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n{auth}",
        dir.join("storage").display()
    )
}

/// A loopback port free right now; Distribution cannot be asked to pick one itself.
/// Logs `sandbox` in to `registry` and returns a target whose runs use that login.
fn logged_in(sandbox: &Sandbox, registry: &Distribution) -> Target {
    let docker = sandbox.path().join("docker");
    let target = Target::new(&registry.url()).with_env("DOCKER_CONFIG", &docker);
    let login = target.wreg(sandbox, ["login", registry.host(), "--username", USER]);
    let output = login.arg("--password-stdin").run_with_input(PASSWORD.as_bytes());
    assert!(output.status.success(), "login failed\n{output}");
    target
}

/// The same scenario as `tests/main_job.rs`, against Distribution without and with
/// authentication. One test runs both, one after the other, because both build the same
/// fixture into the shared target dir.
#[test]
fn main_job_against_distribution() {
    let plain = Distribution::start(false);
    main_job_scenario(&Target::new(&plain.url()), &Sandbox::new());

    let basic = Distribution::start(true);
    let sandbox = Sandbox::new();
    let target = logged_in(&sandbox, &basic);
    main_job_scenario(&target, &sandbox);
}

#[test]
fn login_checks_and_stores_credentials_and_never_shows_them() {
    let registry = Distribution::start(true);
    let sandbox = Sandbox::new();
    let docker = sandbox.path().join("docker");
    let config = docker.join("config.json");
    fs::create_dir_all(&docker).expect("create the Docker config dir");
    fs::write(&config, r#"{"auths": {"other.example": {"auth": "eDp5"}}, "psFormat": "x"}"#)
        .expect("write a Docker config");
    let target = Target::new(&registry.url()).with_env("DOCKER_CONFIG", &docker);
    let login = || target.wreg(&sandbox, ["-v", "login", registry.host(), "-u", USER]);

    let wrong = login().arg("--password-stdin").run_with_input(b"wrong-password\n");
    assert!(!wrong.status.success(), "a wrong password logged in\n{wrong}");
    wrong.assert_stderr_contains("rejected the credentials of `wreg-test`");
    wrong.assert_stderr_contains("nothing was saved");
    assert!(!wrong.stderr.contains("cargo wreg login"), "it suggests itself\n{wrong}");
    assert!(!wrong.stderr.contains("wrong-password"), "the password was printed\n{wrong}");
    let untouched = fs::read_to_string(&config).expect("read the Docker config");
    assert!(!untouched.contains(registry.host()), "a failed login wrote {untouched}");

    let right = login().arg("--password-stdin").run_with_input(PASSWORD.as_bytes());
    assert!(right.status.success(), "login failed\n{right}");
    assert!(!right.stderr.contains(PASSWORD), "the password was printed\n{right}");
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).expect("read the Docker config"))
            .expect("the Docker config stays JSON");
    assert_eq!(saved["psFormat"], "x", "other keys are kept");
    assert_eq!(saved["auths"]["other.example"]["auth"], "eDp5");
    assert!(saved["auths"][registry.host()]["auth"].is_string(), "{saved}");

    let argv = target.wreg(&sandbox, ["login", registry.host(), "-u", USER]);
    argv.fails().assert_stderr_contains("--password-stdin");
}

#[test]
fn missing_and_wrong_credentials_are_clear_errors() {
    let registry = Distribution::start(true);
    let sandbox = Sandbox::new();
    let publish = |target: &Target| {
        target
            .wreg(&sandbox, ["-v", "publish", "--registry", &registry.url(), "--wit"])
            .arg(fixture_wit("acme-text-1.0.0"))
    };

    let anonymous = Target::new(&registry.url()).with_env("DOCKER_CONFIG", sandbox.path());
    publish(&anonymous)
        .fails()
        .assert_stderr_contains("requires authentication, which is not configured")
        .assert_stderr_contains("cargo wreg login");

    let wrong = anonymous
        .with_env("CARGO_WREG_REGISTRY_TOKEN", "expired-or-wrong-token")
        .with_env("CARGO_WREG_REGISTRY_USERNAME", USER);
    let output = publish(&wrong).fails();
    output.assert_stderr_contains(
        "rejected the credentials of `wreg-test` from `CARGO_WREG_REGISTRY_TOKEN`",
    );
    assert!(!output.stderr.contains("expired-or-wrong-token"), "the token was printed\n{output}");
}

/// Docker credential helpers answer `get` for pulls and receive `store` from `login`.
#[test]
fn credential_helpers_are_asked_and_told() {
    let registry = Distribution::start(true);
    let sandbox = Sandbox::new();
    let bin = sandbox.path().join("bin");
    let docker = sandbox.path().join("docker");
    fs::create_dir_all(&bin).expect("create the helper dir");
    fs::create_dir_all(&docker).expect("create the Docker config dir");
    let stored = sandbox.path().join("stored.json");
    let helper = format!(
        "#!/bin/sh\ncase \"$1\" in\n  get) read server; printf '{{\"ServerURL\":\"%s\",\
         \"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\" ;;\n  \
         store) cat > '{}' ;;\nesac\n",
        stored.display()
    );
    let script = bin.join("docker-credential-wreg-test");
    fs::write(&script, helper).expect("write the helper");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(&script, mode).expect("make the helper executable");
    fs::write(docker.join("config.json"), r#"{"credsStore": "wreg-test"}"#)
        .expect("write the Docker config");
    let path = std::env::join_paths(
        std::iter::once(bin)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("join PATH");
    let target =
        Target::new(&registry.url()).with_env("DOCKER_CONFIG", &docker).with_env("PATH", path);

    target
        .wreg(&sandbox, ["publish", "--registry", &registry.url(), "--wit"])
        .arg(fixture_wit("acme-text-1.0.0"))
        .ok();
    let login = target.wreg(&sandbox, ["login", registry.host(), "-u", USER, "--password-stdin"]);
    let output = login.run_with_input(PASSWORD.as_bytes());
    assert!(output.status.success(), "login failed\n{output}");
    output.assert_stderr_contains("docker-credential-wreg-test");
    let stored: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&stored).expect("the helper stored something"))
            .expect("the helper got JSON");
    assert_eq!(
        (stored["ServerURL"].as_str(), stored["Username"].as_str()),
        (Some(registry.host()), Some(USER))
    );
}

/// skopeo reads what `cargo wreg publish` pushed, byte for byte; an artifact laid out by hand
/// and pushed by skopeo is read by cargo-wreg, with credentials from the CI variables.
#[test]
fn skopeo_reads_what_we_push_and_we_read_what_skopeo_pushes() {
    let skopeo = skopeo();
    let plain = Distribution::start(false);
    let sandbox = Sandbox::new();
    let target = Target::new(&plain.url());
    target
        .wreg(&sandbox, ["publish", "--registry", &plain.url(), "--wit"])
        .arg(fixture_wit("acme-text-1.0.0"))
        .ok();
    let ours = sandbox.path().join("ours.wasm");
    target
        .wreg(&sandbox, ["pull", "acme:text@1.0.0", "--registry", &plain.url(), "-o"])
        .arg(&ours)
        .ok();
    let wasm = fs::read(&ours).expect("read the pulled WIT package");

    // skopeo sees a Wasm artifact and copies its layer unchanged.
    let reference = format!("docker://{}/acme/text:1.0.0", plain.host());
    let raw =
        run_ok(Command::new(&skopeo).args(["inspect", "--raw", "--tls-verify=false", &reference]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("skopeo prints JSON");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.version"], "1.0.0");
    let copied = sandbox.path().join("copied");
    let destination = format!("oci:{}:1.0.0", copied.display());
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--src-tls-verify=false",
        &reference,
        &destination,
    ]));
    let layer = manifest["layers"][0]["digest"].as_str().expect("a layer digest");
    let blob = copied.join("blobs/sha256").join(layer.trim_start_matches("sha256:"));
    assert_eq!(fs::read(blob).expect("read the copied layer"), wasm);

    // An artifact skopeo pushes to an authenticated registry is read back by cargo-wreg.
    let basic = Distribution::start(true);
    let layout = sandbox.path().join("layout");
    write_oci_layout(&layout, &wasm);
    let source = format!("oci:{}:1.0.0", layout.display());
    let pushed = format!("docker://{}/acme/text:1.0.0", basic.host());
    let creds = format!("{USER}:{PASSWORD}");
    run_ok(Command::new(&skopeo).args([
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &source,
        &pushed,
    ]));
    let ci = Target::new(&basic.url())
        .with_env("DOCKER_CONFIG", sandbox.path())
        .with_env("CARGO_WREG_REGISTRY_TOKEN", PASSWORD)
        .with_env("CARGO_WREG_REGISTRY_USERNAME", USER);
    let theirs = sandbox.path().join("theirs.wasm");
    ci.wreg(&sandbox, ["pull", "acme:text@1.0.0", "--registry", &basic.url(), "-o"])
        .arg(&theirs)
        .ok();
    assert_eq!(fs::read(&theirs).expect("read what skopeo pushed"), wasm);
    // Publishing a package that uses it resolves it from what skopeo pushed.
    ci.wreg(&sandbox, ["publish", "--registry", &basic.url(), "--wit"])
        .arg(fixture_wit("acme-greeting-1.0.0"))
        .ok();
}

/// Writes an OCI image layout holding `wasm` as a Wasm artifact tagged `1.0.0`, built here
/// from the CNCF layout description rather than by cargo-wreg.
fn write_oci_layout(dir: &Path, wasm: &[u8]) {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).expect("create the layout");
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).expect("write a blob");
        serde_json::json!({"digest": digest, "size": bytes.len()})
    };
    let layer = put(wasm);
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
        "layerDigests": [layer["digest"]],
        "component": {"exports": [], "imports": [], "target": null},
    });
    let config = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": config["digest"],
            "size": config["size"],
        },
        "layers": [{
            "mediaType": "application/wasm",
            "digest": layer["digest"],
            "size": layer["size"],
        }],
        "annotations": {"org.opencontainers.image.version": "1.0.0"},
    });
    let manifest = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest["digest"], "size": manifest["size"],
            "annotations": {"org.opencontainers.image.ref.name": "1.0.0"},
        }],
    });
    fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#)
        .expect("write oci-layout");
}

/// Distribution takes uploads in small `PATCH` chunks and mounts a blob that another of its
/// repositories holds instead of receiving it again.
#[tokio::test]
async fn distribution_takes_chunked_uploads_and_mounts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Distribution::start(false);
    let sandbox = Sandbox::new();
    let target = Target::new(&registry.url());
    let wasm_path = sandbox.path().join("text.wasm");
    target
        .wreg(&sandbox, ["publish", "--registry", &registry.url(), "--wit"])
        .arg(fixture_wit("acme-text-1.0.0"))
        .ok();
    target
        .wreg(&sandbox, ["pull", "acme:text@1.0.0", "--registry", &registry.url(), "-o"])
        .arg(&wasm_path)
        .ok();
    let wasm = fs::read(&wasm_path).expect("read the WIT package");

    let options = ClientOptions { chunk_size: 100, ..ClientOptions::default() };
    let client = Client::with_options(registry.host().parse().expect("a registry"), options)
        .expect("a client");
    let artifact =
        Artifact::new(&wasm, "text.wasm", Default::default(), None).expect("an artifact");
    let chunked = "acme:chunked".parse().expect("a package name");
    let version = "1.0.0".parse().expect("a version");
    client.push(&chunked, &version, &artifact).await.expect("a chunked push");
    let log = registry.log();
    let patches =
        log.lines().filter(|l| l.contains("\"PATCH /v2/acme/chunked/blobs/uploads/")).count();
    assert!(patches >= wasm.len() / 100, "expected chunks, found {patches} PATCH lines\n{log}");

    let mounted = "acme:mounted".parse().expect("a package name");
    client.push(&mounted, &version, &artifact).await.expect("a mounted push");
    let release = client.release(&mounted, &version).await.expect("the mounted release");
    let layer = client.fetch_layer(&mounted, &release.layer, None).await.expect("the layer");
    assert_eq!(layer.as_ref(), wasm.as_slice());
    let log = registry.log();
    let mounts = log
        .lines()
        .filter(|l| l.contains("/v2/acme/mounted/blobs/uploads/?mount=") && l.contains("\" 201 "))
        .count();
    assert_eq!(mounts, 2, "the layer and the config are mounted\n{log}");
}
