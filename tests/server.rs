//! The embedded registry as a team would run it: `cargo-wreg registry serve` started as a real
//! process on 127.0.0.1:0 with its own storage, driven over HTTP, killed and restarted.
//! Covers access control, immutable releases, crash safety, concurrent publishing, hostile
//! input, operations (logs, shutdown, gc, TLS) and interoperability with skopeo.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// How long the server may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `cargo-wreg registry serve` process; killed on drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    /// Starts a server on `storage` with extra `args`; its stderr is appended to a log file
    /// beside the storage.
    fn start(storage: &Path, args: &[&str]) -> Server {
        let log = storage.with_extension("log");
        let stderr = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-wreg"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--storage"])
            .arg(storage)
            .args(args)
            .env_remove("CARGO_WREG_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn `cargo-wreg registry serve`");
        let stdout = child.stdout.take().expect("stdout is piped");
        let url = common::first_line(stdout, START_TIMEOUT).trim().to_string();
        let server = Server { child, url, log };
        assert!(server.url.contains("://127.0.0.1:"), "no URL printed\n{}", server.log());
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn address(&self) -> &str {
        self.url.split("://").nth(1).unwrap_or_default()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process gets no chance to clean up.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a service manager stops the server.
    fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(status.unwrap().success(), "failed to send SIGTERM");
    }

    /// Waits for the process to exit by itself.
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server still running\n{}", self.log());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cargo-wreg` to completion.
fn wreg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-wreg"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo-wreg")
}

fn wreg_ok(args: &[&str]) -> String {
    let output = wreg(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo-wreg {args:?} failed\n{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Creates a token with `scopes` in `auth_file` and returns its secret.
fn add_token(auth_file: &Path, scopes: &[&str]) -> String {
    let file = auth_file.to_str().unwrap();
    let mut args = vec!["registry", "token", "add", "--auth-file", file];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    let stdout = wreg_ok(&args);
    stdout.lines().last().expect("the token is printed").to_string()
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

/// The digest of `bytes`, computed with ring, which stays fast in unoptimised test builds.
fn sha256(bytes: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Deterministic bytes that differ per `seed`.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn wasm_layer(digest: &str, size: usize) -> Value {
    json!({"mediaType": "application/wasm", "digest": digest, "size": size})
}

fn manifest(config: &str, layers: &[(&str, usize)]) -> String {
    let layers: Vec<Value> =
        layers.iter().map(|(digest, size)| wasm_layer(digest, *size)).collect();
    json!({
        "schemaVersion": 2,
        "mediaType": IMAGE,
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config, "size": 2},
        "layers": layers,
    })
    .to_string()
}

/// A request, with `token` as Bearer credentials when given.
fn request(client: &Client, method: Method, url: String, token: Option<&str>) -> RequestBuilder {
    let builder = client.request(method, url);
    match token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

async fn push_blob(
    client: &Client,
    server: &Server,
    repo: &str,
    blob: &[u8],
    token: Option<&str>,
) -> Response {
    let url = server.url(&format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(blob)));
    request(client, Method::POST, url, token).body(blob.to_vec()).send().await.unwrap()
}

async fn put_manifest(
    client: &Client,
    server: &Server,
    repo: &str,
    reference: &str,
    body: &str,
    token: Option<&str>,
) -> Response {
    let url = server.url(&format!("/v2/{repo}/manifests/{reference}"));
    let builder = request(client, Method::PUT, url, token).header("content-type", IMAGE);
    builder.body(body.to_string()).send().await.unwrap()
}

/// Pushes a config and a layer, then a manifest tagged `tag`; returns the manifest.
async fn publish(
    client: &Client,
    server: &Server,
    repo: &str,
    tag: &str,
    layer: &[u8],
    token: Option<&str>,
) -> (StatusCode, String) {
    for blob in [&b"{}"[..], layer] {
        let pushed = push_blob(client, server, repo, blob, token).await;
        assert_eq!(pushed.status(), StatusCode::CREATED, "{}", pushed.text().await.unwrap());
    }
    let body = manifest(&sha256(b"{}"), &[(&sha256(layer), layer.len())]);
    let response = put_manifest(client, server, repo, tag, &body, token).await;
    (response.status(), body)
}

async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.unwrap_or_default();
    body["errors"][0]["code"].as_str().unwrap_or_default().to_string()
}

fn header(response: &Response, name: &str) -> String {
    let value = response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    value.unwrap_or_default()
}

/// Sends a request as raw bytes, so that paths reach the server without normalisation.
async fn raw_status(server: &Server, request_line: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.address()).await.unwrap();
    let request = format!("{request_line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_string()
}

/// A request body fed chunk by chunk from the test.
fn channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, reqwest::Body) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), receiver))
    });
    (sender, reqwest::Body::wrap_stream(stream))
}

fn blob_files(storage: &Path) -> Vec<String> {
    common::entry_names(&storage.join("blobs/sha256"))
}

fn upload_files(storage: &Path) -> usize {
    fs::read_dir(storage.join("uploads")).unwrap().count()
}

/// A storage dir and an auth file with one token per scope list, and a server on them.
struct Secured {
    dir: TempDir,
    tokens: Vec<String>,
    server: Server,
}

fn secured(token_scopes: &[&[&str]], args: &[&str]) -> Secured {
    let dir = TempDir::new().unwrap();
    let auth_file = dir.path().join("auth.toml");
    let tokens = token_scopes.iter().map(|scopes| add_token(&auth_file, scopes)).collect();
    let mut all = vec!["--auth-file", auth_file.to_str().unwrap()];
    all.extend(args);
    let server = Server::start(&dir.path().join("storage"), &all);
    Secured { dir, tokens, server }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_push_is_refused_with_a_bearer_challenge() {
    let secured = secured(&[&["push:acme"]], &[]);
    let (client, server, token) = (client(), &secured.server, &secured.tokens[0]);

    let refused = push_blob(&client, server, "acme/x", b"layer", None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&refused, "www-authenticate");
    let realm = format!("Bearer realm=\"{}/token\",service=\"cargo-wreg\"", server.url);
    assert_eq!(challenge, format!("{realm},scope=\"repository:acme/x:pull,push\""));
    assert_eq!(error_code(refused).await, "UNAUTHORIZED");
    let wrong = push_blob(&client, server, "acme/x", b"layer", Some("wreg_forged")).await;
    assert_eq!(error_code(wrong).await, "UNAUTHORIZED");
    let ping = client.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(ping.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&ping, "www-authenticate"), realm);
    let pull = client.get(server.url("/v2/acme/x/tags/list")).send().await.unwrap();
    assert_eq!(pull.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = publish(&client, server, "acme/x", "1.0.0", b"layer", Some(token)).await;
    assert_eq!(status, StatusCode::CREATED);
    let basic = client.get(server.url("/v2/acme/x/tags/list")).basic_auth("ci", Some(token));
    let tags: Value = basic.send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["tags"], json!(["1.0.0"]));
    assert!(!secured.server.log().contains(token.as_str()), "the log shows a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_token_cannot_push() {
    let secured = secured(&[&["push:acme"], &["pull:acme"], &["push:other"]], &[]);
    let (client, server) = (client(), &secured.server);
    let [writer, reader, outsider] = [0, 1, 2].map(|i| secured.tokens[i].as_str());
    publish(&client, server, "acme/x", "1.0.0", b"v1", Some(writer)).await;

    let refused = push_blob(&client, server, "acme/x", b"v2", Some(reader)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(refused).await, "DENIED");
    let manifest_url = server.url("/v2/acme/x/manifests/1.0.0");
    let pulled = request(&client, Method::GET, manifest_url.clone(), Some(reader)).send().await;
    assert_eq!(pulled.unwrap().status(), StatusCode::OK);

    let elsewhere = request(&client, Method::GET, manifest_url, Some(outsider)).send().await;
    assert_eq!(error_code(elsewhere.unwrap()).await, "DENIED");
    let blob_url = server.url(&format!("/v2/other/y/blobs/{}", sha256(b"v1")));
    let borrowed = request(&client, Method::GET, blob_url, Some(outsider)).send().await;
    assert_eq!(error_code(borrowed.unwrap()).await, "BLOB_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_follows_the_docker_flow() {
    let secured = secured(&[&["push:acme"]], &[]);
    let (client, server, token) = (client(), &secured.server, &secured.tokens[0]);
    let get_token = |scope: &str, credentials: Option<&str>| {
        let builder = client.get(server.url(&format!("/token?service=cargo-wreg&scope={scope}")));
        match credentials {
            Some(secret) => builder.basic_auth("anyone", Some(secret)),
            None => builder,
        }
        .send()
    };

    let anonymous = get_token("repository:acme/x:pull", None).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let issued = get_token("repository:acme/x:pull,push", Some(token)).await.unwrap();
    let issued: Value = issued.json().await.unwrap();
    let session = issued["token"].as_str().unwrap().to_string();
    assert_eq!(issued["access_token"], issued["token"]);
    assert!(issued["expires_in"].as_u64().unwrap() > 0);
    let (status, _) = publish(&client, server, "acme/x", "1.0.0", b"v1", Some(&session)).await;
    assert_eq!(status, StatusCode::CREATED);

    // A session for pull only asks the client to come back for push: 401, insufficient scope.
    let pull_only = get_token("repository:acme/x:pull", Some(token)).await.unwrap();
    let pull_only: Value = pull_only.json().await.unwrap();
    let pull_only = pull_only["token"].as_str().unwrap();
    let refused = push_blob(&client, server, "acme/x", b"v2", Some(pull_only)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&refused, "www-authenticate").contains("error=\"insufficient_scope\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_lets_anyone_pull_but_not_push() {
    let secured = secured(&[&["push:acme"]], &["--public-read"]);
    let (client, server, token) = (client(), &secured.server, &secured.tokens[0]);
    publish(&client, server, "acme/x", "1.0.0", b"v1", Some(token)).await;

    let pulled = client.get(server.url("/v2/acme/x/manifests/1.0.0")).send().await.unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    let catalog: Value =
        client.get(server.url("/v2/_catalog")).send().await.unwrap().json().await.unwrap();
    assert_eq!(catalog["repositories"], json!(["acme/x"]));
    let pushed = push_blob(&client, server, "acme/x", b"v2", None).await;
    assert_eq!(pushed.status(), StatusCode::UNAUTHORIZED);
    let anonymous = client.get(server.url("/token?scope=repository:acme/x:pull,push")).send();
    let anonymous: Value = anonymous.await.unwrap().json().await.unwrap();
    let session = anonymous["token"].as_str().unwrap();
    let refused = push_blob(&client, server, "acme/x", b"v2", Some(session)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The anonymous session token is valid, just not enough: no "invalid credentials".
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["message"], "authentication required", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_added_or_removed_while_serving_take_effect() {
    let secured = secured(&[&["pull:acme"]], &[]);
    let (client, server) = (client(), &secured.server);
    let auth_file = secured.dir.path().join("auth.toml");
    let late = add_token(&auth_file, &["push:acme"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pushed = push_blob(&client, server, "acme/x", b"late", Some(&late)).await;
        if pushed.status() == StatusCode::CREATED {
            break;
        }
        assert!(Instant::now() < deadline, "a new token was never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let listed =
        wreg_ok(&["registry", "token", "list", "--auth-file", auth_file.to_str().unwrap()]);
    let id = listed.lines().find(|line| line.contains("push:acme")).unwrap().split('\t').next();
    wreg_ok(&[
        "registry",
        "token",
        "remove",
        "--auth-file",
        auth_file.to_str().unwrap(),
        id.unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while push_blob(&client, server, "acme/x", b"late", Some(&late)).await.status()
        != StatusCode::UNAUTHORIZED
    {
        assert!(Instant::now() < deadline, "a removed token is still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn token_add_prints_the_secret_last_and_keeps_only_its_hash() {
    let dir = TempDir::new().unwrap();
    let auth_file = dir.path().join("auth.toml");
    let file = auth_file.to_str().unwrap();
    let output = wreg(&["registry", "token", "add", "--auth-file", file, "--scope", "push:acme"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let secret = stdout.lines().last().unwrap();
    assert!(secret.starts_with("wreg_") && secret.len() > 40, "{stdout}");
    let text = fs::read_to_string(&auth_file).unwrap();
    assert!(!text.contains(secret) && text.contains(&sha256(secret.as_bytes())[7..]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let bad = wreg(&["registry", "token", "add", "--auth-file", file, "--scope", "write:acme"]);
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_tags_cannot_be_overwritten_unless_allowed() {
    let dir = TempDir::new().unwrap();
    let server = Server::start(&dir.path().join("storage"), &[]);
    let client = client();
    let (status, first) = publish(&client, &server, "acme/x", "1.0.0", b"v1", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = publish(&client, &server, "acme/x", "1.0.0", b"v1", None).await;
    assert_eq!(status, StatusCode::CREATED, "pushing the same release again is idempotent");

    let body = manifest(&sha256(b"{}"), &[]);
    let refused = put_manifest(&client, &server, "acme/x", "1.0.0", &body, None).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "DENIED");
    assert!(error["errors"][0]["message"].as_str().unwrap().contains("already exists"));
    let got = client.get(server.url("/v2/acme/x/manifests/1.0.0")).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), first);

    drop(server);
    let server = Server::start(&dir.path().join("storage"), &["--allow-tag-overwrite"]);
    let moved = put_manifest(&client, &server, "acme/x", "1.0.0", &body, None).await;
    assert_eq!(moved.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_large_upload_leaves_nothing_visible_and_retry_succeeds() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let mut server = Server::start(&storage, &[]);
    let client = client();
    let (status, committed) = publish(&client, &server, "acme/x", "1.0.0", b"kept", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let blobs_before = blob_files(&storage);

    // Stream half of a 64 MiB blob, make sure the server holds it, then SIGKILL the server.
    let large = content(7, 64 << 20);
    let digest = sha256(&large);
    let start = client.post(server.url("/v2/acme/x/blobs/uploads/")).send().await.unwrap();
    let location = server.url(&header(&start, "location"));
    let (sender, body) = channel_body();
    let upload = tokio::spawn(client.patch(&location).body(body).send());
    for chunk in large[..32 << 20].chunks(1 << 20) {
        sender.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while uploaded_bytes(&storage) < 16 << 20 {
        assert!(Instant::now() < deadline, "the server never received the upload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    drop(sender);
    assert!(upload.await.unwrap().is_err(), "the upload survived the kill");

    let server = Server::start(&storage, &[]);
    assert_eq!(blob_files(&storage), blobs_before, "a partial blob became visible");
    let blob_url = server.url(&format!("/v2/acme/x/blobs/{digest}"));
    let missing = client.head(&blob_url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let kept = client.get(server.url("/v2/acme/x/manifests/1.0.0")).send().await.unwrap();
    assert_eq!(kept.text().await.unwrap(), committed);
    let tags: Value =
        client.get(server.url("/v2/acme/x/tags/list")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["tags"], json!(["1.0.0"]));

    // The abandoned upload is garbage; the retry goes through whole.
    let gc = wreg_ok(&["registry", "gc", "--grace", "0s", "--storage", storage.to_str().unwrap()]);
    assert!(gc.is_empty(), "gc removed blobs: {gc}");
    assert_eq!(upload_files(&storage), 0);
    let retried = push_blob(&client, &server, "acme/x", &large, None).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    let served = client.get(&blob_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256(&served), digest);
}

fn uploaded_bytes(storage: &Path) -> u64 {
    let entries = fs::read_dir(storage.join("uploads")).unwrap();
    entries.map(|entry| entry.unwrap().metadata().map_or(0, |meta| meta.len())).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publish_of_one_version_has_one_winner() {
    let dir = TempDir::new().unwrap();
    let server = Arc::new(Server::start(&dir.path().join("storage"), &[]));
    let client = client();
    let racers = 8;
    let mut bodies = Vec::new();
    for racer in 0..racers {
        let layer = content(racer, 1024);
        push_blob(&client, &server, "acme/race", b"{}", None).await;
        push_blob(&client, &server, "acme/race", &layer, None).await;
        bodies.push(manifest(&sha256(b"{}"), &[(&sha256(&layer), layer.len())]));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(racers as usize));
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, server, barrier) = (client.clone(), server.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let response = put_manifest(&client, &server, "acme/race", "1.0.0", &body, None);
                let response = response.await;
                (response.status(), response.text().await.unwrap(), body)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (status, text, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => winners.push(body),
            StatusCode::CONFLICT => assert!(text.contains("already exists"), "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one publish wins");
    let got = client.get(server.url("/v2/acme/race/manifests/1.0.0")).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), winners[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_attempts_are_rejected() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let server = Server::start(&storage, &[]);
    let client = client();
    let digest = sha256(b"x");
    for request_line in [
        "GET /v2/../../etc/tags/list".to_string(),
        "GET /v2/acme/%2e%2e/%2e%2e/x/tags/list".to_string(),
        "GET /v2/acme/..%2F..%2Fx/tags/list".to_string(),
        "GET /v2/acme/x/manifests/..%2F..%2Fpasswd".to_string(),
        "GET /v2/acme/x/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd".to_string(),
        "GET /v2//etc/tags/list".to_string(),
        format!("PUT /v2/%2Fescape/blobs/uploads/x?digest={digest}"),
        "GET /v2/acme/x/blobs/uploads/..%2F..%2Fblobs".to_string(),
    ] {
        let status = raw_status(&server, &request_line).await;
        assert!(status.starts_with("HTTP/1.1 4"), "{request_line}: {status}");
    }
    let escape = client.get(server.url("/v2/acme/%2E%2E%2Fetc/tags/list")).send().await.unwrap();
    assert_eq!(error_code(escape).await, "NAME_INVALID");
    let bad_digest = client.get(server.url("/v2/acme/x/blobs/sha256:abc")).send().await.unwrap();
    assert_eq!(error_code(bad_digest).await, "DIGEST_INVALID");

    // A mount from an invalid repository is an ordinary upload, never a read outside storage.
    publish(&client, &server, "acme/x", "1.0.0", b"x", None).await;
    let mount = format!("/v2/acme/y/blobs/uploads/?mount={digest}&from=../../acme/x");
    let started = client.post(server.url(&mount)).send().await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let outside: Vec<_> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside.len(), 2, "only the storage and its log: {outside:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_bodies_are_refused() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let limits = ["--max-manifest-size", "1KiB", "--max-blob-size", "64KiB"];
    let server = Server::start(&storage, &limits);
    let client = client();

    let declared = push_blob(&client, &server, "acme/x", &content(1, 65 << 10), None).await;
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header(&declared, "connection"), "close", "the unread body stays on the wire");
    assert_eq!(error_code(declared).await, "SIZE_INVALID");
    // A streamed body has no declared length; the limit applies as it arrives.
    let start = client.post(server.url("/v2/acme/x/blobs/uploads/")).send().await.unwrap();
    let location = server.url(&header(&start, "location"));
    let (sender, body) = channel_body();
    let patch = tokio::spawn(client.patch(&location).body(body).send());
    for chunk in content(2, 96 << 10).chunks(16 << 10) {
        if sender.send(Bytes::copy_from_slice(chunk)).await.is_err() {
            break;
        }
    }
    drop(sender);
    let streamed = patch.await.unwrap().unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upload_files(&storage), 0, "the oversized upload was not discarded");

    let big = json!({"schemaVersion": 2, "mediaType": IMAGE, "pad": "x".repeat(2048)}).to_string();
    let refused = put_manifest(&client, &server, "acme/x", "1.0.0", &big, None).await;
    assert_eq!(error_code(refused).await, "SIZE_INVALID");
    for (content_type, body) in [
        (IMAGE, "{not json".to_string()),
        ("text/plain", manifest(&sha256(b"{}"), &[])),
        (IMAGE, json!({"schemaVersion": 2, "mediaType": "text/html"}).to_string()),
    ] {
        let url = server.url("/v2/acme/x/manifests/1.0.0");
        let response = client.put(url).header("content-type", content_type).body(body).send();
        assert_eq!(error_code(response.await.unwrap()).await, "MANIFEST_INVALID");
    }
    let lacking = manifest(&sha256(b"{}"), &[]);
    let missing = put_manifest(&client, &server, "acme/x", "1.0.0", &lacking, None).await;
    assert_eq!(error_code(missing).await, "MANIFEST_BLOB_UNKNOWN");
    let unknown = client.get(server.url(&format!("/v2/acme/x/blobs/{}", sha256(b"no")))).send();
    assert_eq!(error_code(unknown.await.unwrap()).await, "BLOB_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_mismatch_on_upload_is_refused_and_leaves_nothing() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let server = Server::start(&storage, &[]);
    let client = client();
    let start = client.post(server.url("/v2/acme/x/blobs/uploads/")).send().await.unwrap();
    let location = server.url(&header(&start, "location"));
    let patched = client.patch(&location).body("actual content").send().await.unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let claimed = sha256(b"claimed content");
    let put = client.put(format!("{location}?digest={claimed}")).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(put).await, "DIGEST_INVALID");
    let blob = client.get(server.url(&format!("/v2/acme/x/blobs/{claimed}"))).send().await;
    assert_eq!(error_code(blob.unwrap()).await, "BLOB_UNKNOWN");
    assert!(blob_files(&storage).is_empty());
    assert_eq!(upload_files(&storage), 0);
    let invalid = client.put(format!("{location}?digest=sha256:nothex")).send().await.unwrap();
    assert_eq!(error_code(invalid).await, "DIGEST_INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upload_sessions_expire() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let server = Server::start(&storage, &["--upload-expiry", "1s"]);
    let client = client();
    let start = client.post(server.url("/v2/acme/x/blobs/uploads/")).send().await.unwrap();
    let location = server.url(&header(&start, "location"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while upload_files(&storage) > 0 {
        assert!(Instant::now() < deadline, "the idle upload was never removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let late = client.patch(&location).body("late").send().await.unwrap();
    assert_eq!(error_code(late).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pulls_while_pushing_serve_every_byte_right() {
    const PULLS: usize = 200;
    const PUSHES: usize = 20;
    let dir = TempDir::new().unwrap();
    let server = Arc::new(Server::start(&dir.path().join("storage"), &[]));
    let client = client();
    let mut digests = Vec::new();
    for seed in 0..8 {
        let blob = content(100 + seed, 256 << 10);
        let pushed = push_blob(&client, &server, "acme/load", &blob, None).await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        digests.push(sha256(&blob));
    }

    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PUSHES {
        let (client, server) = (client.clone(), server.clone());
        tasks.spawn(async move {
            let (status, _) = publish(
                &client,
                &server,
                &format!("team{i}/x"),
                "1.0.0",
                &content(i as u64, 64 << 10),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
        });
    }
    for i in 0..PULLS {
        let (client, server, limit) = (client.clone(), server.clone(), limit.clone());
        let digest = digests[i % digests.len()].clone();
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let url = server.url(&format!("/v2/acme/load/blobs/{digest}"));
            let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(sha256(&body), digest, "pull {i} got wrong bytes");
        });
    }
    let all = async {
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all).await.expect("load test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_is_json_without_tokens() {
    let secured = secured(&[&["push:acme"]], &["--log-format", "json"]);
    let (client, server, token) = (client(), &secured.server, &secured.tokens[0]);
    publish(&client, server, "acme/x", "1.0.0", b"logged", Some(token)).await;
    let pulled =
        request(&client, Method::GET, server.url("/v2/acme/x/manifests/1.0.0"), Some(token));
    let length = pulled.send().await.unwrap().bytes().await.unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = server.log();
        let found = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["method"] == "GET" && line["path"] == "/v2/acme/x/manifests/1.0.0");
        if let Some(line) = found {
            break line;
        }
        assert!(Instant::now() < deadline, "no JSON request line\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], length);
    assert!(line["duration_ms"].is_number(), "{line}");
    assert_eq!(line["level"], "INFO");
    let log = server.log();
    assert!(!log.contains(token.as_str()) && !log.to_lowercase().contains("authorization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_upload_in_flight() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let mut server = Server::start(&storage, &[]);
    let client = client();
    let blob = content(9, 8 << 20);
    let digest = sha256(&blob);
    let url = server.url(&format!("/v2/acme/x/blobs/uploads/?digest={digest}"));
    let (sender, body) = channel_body();
    let upload = tokio::spawn(client.post(url).body(body).send());
    let (first, rest) = blob.split_at(4 << 20);
    sender.send(Bytes::copy_from_slice(first)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while uploaded_bytes(&storage) == 0 {
        assert!(Instant::now() < deadline, "the server never received the upload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for chunk in rest.chunks(1 << 20) {
        sender.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    drop(sender);
    let response = upload.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(server.wait(Duration::from_secs(30)).success(), "{}", server.log());
    assert_eq!(blob_files(&storage), [digest[7..].to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_only_unreferenced_blobs() {
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let server = Server::start(&storage, &[]);
    let client = client();
    publish(&client, &server, "acme/x", "1.0.0", b"referenced", None).await;
    push_blob(&client, &server, "acme/x", b"orphan", None).await;
    let storage_arg = storage.to_str().unwrap();

    let kept = wreg_ok(&["registry", "gc", "--storage", storage_arg]);
    assert!(kept.is_empty(), "blobs within the grace period were collected: {kept}");
    let dry = wreg_ok(&["registry", "gc", "--dry-run", "--grace", "0s", "--storage", storage_arg]);
    assert_eq!(dry.trim(), sha256(b"orphan"));
    assert_eq!(blob_files(&storage).len(), 4, "a dry run removed something");
    let removed = wreg_ok(&["registry", "gc", "--grace", "0s", "--storage", storage_arg]);
    assert_eq!(removed.trim(), sha256(b"orphan"));

    let orphan = client.get(server.url(&format!("/v2/acme/x/blobs/{}", sha256(b"orphan")))).send();
    assert_eq!(orphan.await.unwrap().status(), StatusCode::NOT_FOUND);
    let layer =
        client.get(server.url(&format!("/v2/acme/x/blobs/{}", sha256(b"referenced")))).send();
    assert_eq!(&layer.await.unwrap().bytes().await.unwrap()[..], b"referenced");
    let (status, _) = publish(&client, &server, "acme/x", "1.0.1", b"orphan", None).await;
    assert_eq!(status, StatusCode::CREATED, "a collected blob can be pushed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_a_certificate() {
    let dir = TempDir::new().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let openssl = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !openssl.is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: no `openssl` to make a certificate with");
        return;
    }
    let args = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let server = Server::start(&dir.path().join("storage"), &args);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let ping = client.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    let (status, _) = publish(&client, &server, "acme/x", "1.0.0", b"tls", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let plain = reqwest::get(format!("http://{}/v2/", server.address())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_an_artifact_in_and_out_with_auth() {
    let skopeo_binary = common::skopeo();
    let secured = secured(&[&["push:acme"]], &[]);
    let (server, token) = (&secured.server, &secured.tokens[0]);
    let source = secured.dir.path().join("source");
    let wasm = b"\0asm\x01\0\0\0 skopeo fixture".to_vec();
    write_oci_layout(&source, &wasm, "1.0.0");
    let target = format!("docker://{}/acme/hello:1.0.0", server.address());
    let creds = format!("ci:{token}");
    let skopeo = |args: &[&str]| {
        Command::new(&skopeo_binary)
            .args(["--insecure-policy", "copy", "--retry-times", "0"])
            .args(args)
            .env("HOME", secured.dir.path())
            .output()
            .unwrap()
    };
    let source_ref = format!("oci:{}:1.0.0", source.display());

    let anonymous = skopeo(&["--dest-tls-verify=false", &source_ref, &target]);
    assert!(!anonymous.status.success(), "skopeo pushed without credentials");
    let pushed = skopeo(&["--dest-tls-verify=false", "--dest-creds", &creds, &source_ref, &target]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));

    let out = secured.dir.path().join("out");
    let out_ref = format!("oci:{}:1.0.0", out.display());
    let pulled = skopeo(&["--src-tls-verify=false", "--src-creds", &creds, &target, &out_ref]);
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    let layer = out.join("blobs/sha256").join(&sha256(&wasm)[7..]);
    assert_eq!(fs::read(layer).unwrap(), wasm);
}

/// Writes an OCI image layout holding one Wasm artifact tagged `tag`.
fn write_oci_layout(dir: &Path, wasm: &[u8], tag: &str) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let config = b"{}".to_vec();
    let body = manifest(&sha256(&config), &[(&sha256(wasm), wasm.len())]);
    for blob in [&config[..], wasm, body.as_bytes()] {
        fs::write(blobs.join(&sha256(blob)[7..]), blob).unwrap();
    }
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": IMAGE,
            "digest": sha256(body.as_bytes()),
            "size": body.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

#[test]
fn cargo_wreg_publishes_and_pulls_with_a_token() {
    let secured = secured(&[&["push:acme"], &["pull:acme"], &["push:other"]], &[]);
    let (writer, reader, elsewhere) = (&secured.tokens[0], &secured.tokens[1], &secured.tokens[2]);
    let sandbox = secured.dir.path();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wit/acme-text-1.0.0");
    let wit = wit.to_str().unwrap();
    let run = |token: Option<&str>, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-wreg"));
        command
            .args(args)
            .args(["--registry", &secured.server.url])
            .current_dir(sandbox)
            .env("CARGO_WREG_CACHE_DIR", sandbox.join("cache"))
            .env("XDG_CONFIG_HOME", sandbox.join("config"))
            .env("XDG_CACHE_HOME", sandbox.join("xdg-cache"))
            .env("DOCKER_CONFIG", sandbox.join("docker"))
            .env_remove("CARGO_WREG_REGISTRY")
            .env_remove("CARGO_WREG_REGISTRY_TOKEN");
        if let Some(token) = token {
            command.env("CARGO_WREG_REGISTRY_TOKEN", token);
        }
        command.stdin(Stdio::null()).output().expect("run cargo-wreg")
    };

    let anonymous = run(None, &["publish", "--wit", wit]);
    assert!(!anonymous.status.success(), "published without a token");
    let refused = run(Some(reader), &["publish", "--wit", wit]);
    assert!(!refused.status.success(), "published with a read-only token");
    // Found out up front, before the package is encoded, compared or uploaded.
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does not let us push `acme:text`"), "{stderr}");
    assert!(!stderr.contains("Publishing"), "{stderr}");
    // A token for another namespace hears about pushing too, not about reading.
    let refused = run(Some(elsewhere), &["publish", "--wit", wit]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does not let us push `acme:text`"), "{stderr}");
    let published = run(Some(writer), &["publish", "--wit", wit]);
    let stderr = String::from_utf8_lossy(&published.stderr);
    assert!(published.status.success(), "{stderr}");

    let out = sandbox.join("text.wasm");
    let pulled = run(Some(reader), &["pull", "acme:text@1.0.0", "-o", out.to_str().unwrap()]);
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    assert!(fs::read(&out).unwrap().starts_with(b"\0asm"));
}

#[test]
fn a_taken_port_leaves_no_storage_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new().unwrap();
    let storage = dir.path().join("storage");
    let output =
        wreg(&["registry", "serve", "--addr", &addr, "--storage", storage.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "served on a taken port");
    assert!(stderr.contains(&format!("failed to listen on `{addr}`")), "{stderr}");
    assert!(!storage.exists(), "the storage directory was created");
}
