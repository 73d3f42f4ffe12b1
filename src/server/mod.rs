//! The embedded OCI registry (`cargo wreg registry serve`): enough of the OCI distribution
//! spec v1.1 for cargo-wreg, `wkg` and `skopeo` to push and pull, with token access per
//! namespace, releases that cannot be overwritten, and storage that survives a crash.

mod auth;
mod endpoint;
mod error;
mod gc;
mod request_log;
mod routes;
mod storage;
mod tls;
mod upload;

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::middleware;
use axum::routing::{any, get};

pub use auth::{NewToken, Scope, TokenEntry, add_token, list_tokens, remove_token};
pub use gc::{GcOptions, GcReport, collect_garbage};
pub use request_log::TARGET as REQUEST_LOG_TARGET;

use auth::Auth;
use routes::App;
use storage::{Storage, StorageOptions};

/// How the registry server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub storage: PathBuf,
    /// Tokens required to push and pull; `None` runs an open server.
    pub auth_file: Option<PathBuf>,
    /// Lets anyone pull, even without a token.
    pub public_read: bool,
    /// Lets a release tag move to other content.
    pub allow_tag_overwrite: bool,
    pub max_manifest_size: u64,
    pub max_blob_size: u64,
    /// Upload sessions untouched for this long are removed.
    pub upload_expiry: Duration,
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerOptions {
    /// An open server over `storage` with the default limits.
    pub fn new(storage: PathBuf) -> Self {
        Self {
            storage,
            auth_file: None,
            public_read: false,
            allow_tag_overwrite: false,
            max_manifest_size: 4 << 20,
            max_blob_size: 2 << 30,
            upload_expiry: Duration::from_secs(3600),
            tls: None,
        }
    }
}

/// How request log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => bail!("invalid log format `{s}`: expected `text` or `json`"),
        }
    }
}

/// A registry server ready to serve: storage opened, tokens and certificate loaded.
pub struct Server {
    app: Arc<App>,
    tls: Option<Arc<rustls::ServerConfig>>,
    upload_expiry: Duration,
    /// Held while the server lives: two servers on one storage could each accept a
    /// different release under one tag.
    _storage_lock: std::fs::File,
}

/// Takes the storage's exclusive lock, or says which storage another server already serves.
fn lock_storage(storage: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let (file, locked) = crate::fsutil::try_lock_file(&storage.join(".serve.lock"))?;
    if !locked {
        anyhow::bail!(
            "another `cargo wreg registry serve` already serves `{}`; two servers on one storage \
             could give one release tag two contents",
            storage.display()
        );
    }
    Ok(file)
}

impl Server {
    /// Opens the storage and loads the auth file and TLS files, so that a mistake in any of
    /// them is reported before the server starts listening.
    pub async fn new(options: ServerOptions) -> anyhow::Result<Self> {
        let auth = match &options.auth_file {
            Some(file) => Some(Auth::load(file.clone(), options.public_read)?),
            None => None,
        };
        let tls = match &options.tls {
            Some(files) => Some(tls::load_config(&files.cert, &files.key)?),
            None => None,
        };
        let storage_options = StorageOptions {
            allow_tag_overwrite: options.allow_tag_overwrite,
            max_blob_size: options.max_blob_size,
        };
        let storage =
            Storage::open(options.storage.clone(), storage_options).await.with_context(|| {
                format!("failed to open registry storage `{}`", options.storage.display())
            })?;
        let storage_lock = lock_storage(&options.storage)?;
        let app = App {
            storage,
            auth,
            max_manifest_size: options.max_manifest_size,
            max_blob_size: options.max_blob_size,
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        Ok(Self {
            app: Arc::new(app),
            tls,
            upload_expiry: options.upload_expiry,
            _storage_lock: storage_lock,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.app.scheme
    }

    /// Whether anyone may push and pull, for lack of an auth file.
    pub fn is_open(&self) -> bool {
        self.app.auth.is_none()
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.app.clone(), self.upload_expiry));
        let router = router(self.app);
        // TODO: cap connections and time out slow request headers; axum::serve sets neither.
        let served = match self.tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)
                    .context("failed to read the listening address")?;
                axum::serve(listener, router).with_graceful_shutdown(shutdown).await
            }
            None => axum::serve(listener, router).with_graceful_shutdown(shutdown).await,
        };
        housekeeping.abort();
        served.context("registry server failed")
    }
}

/// Default storage dir: `dirs::data_dir()/cargo-wreg/registry`.
pub fn default_storage() -> anyhow::Result<PathBuf> {
    let data = dirs::data_dir().context("failed to find the user's data directory")?;
    Ok(data.join("cargo-wreg").join("registry"))
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/token", get(routes::token))
        .route("/v2", get(routes::api_version))
        .route("/v2/", get(routes::api_version))
        .route("/v2/_catalog", get(routes::catalog))
        .route("/v2/{*path}", any(routes::dispatch))
        .with_state(app)
        .layer(middleware::from_fn(routes::close_after_refused_body))
        .layer(middleware::from_fn(request_log::log_request))
}

/// Removes expired upload sessions and session tokens now and then.
async fn housekeeping(app: Arc<App>, upload_expiry: Duration) {
    let period = (upload_expiry / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        match app.storage.expire_uploads(upload_expiry).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!("removed {removed} expired upload sessions"),
            Err(err) => tracing::warn!("failed to remove expired uploads: {err}"),
        }
        if let Some(auth) = &app.auth {
            auth.purge_sessions();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use reqwest::{Client, Method, StatusCode};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

    struct Running {
        base: String,
        client: Client,
        dir: tempfile::TempDir,
    }

    impl Running {
        async fn start() -> Self {
            Self::start_with(|_| {}).await
        }

        async fn start_with(configure: impl FnOnce(&mut ServerOptions)) -> Self {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let dir = tempfile::tempdir().unwrap();
            let mut options = ServerOptions::new(dir.path().to_path_buf());
            configure(&mut options);
            let server = Server::new(options).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(server.serve(listener, std::future::pending()));
            Self { base, client: Client::new(), dir }
        }

        fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
            self.client.request(method, format!("{}{path}", self.base))
        }

        async fn push_blob(&self, repo: &str, content: &[u8]) -> Digest {
            let digest = Digest::of(content);
            let path = format!("/v2/{repo}/blobs/uploads/?digest={digest}");
            let response = self.request(Method::POST, &path).body(content.to_vec()).send().await;
            assert_eq!(response.unwrap().status(), StatusCode::CREATED);
            digest
        }

        async fn put_manifest(
            &self,
            repo: &str,
            reference: &str,
            manifest: &Value,
        ) -> reqwest::Response {
            self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("content-type", IMAGE)
                .body(manifest.to_string())
                .send()
                .await
                .unwrap()
        }

        /// Sends a request as raw bytes, so paths reach the server without normalisation.
        async fn raw_status(&self, path: &str) -> String {
            let mut stream =
                tokio::net::TcpStream::connect(&self.base["http://".len()..]).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response.lines().next().unwrap_or_default().to_string()
        }
    }

    fn manifest(config: &Digest, layers: &[&Digest]) -> Value {
        let descriptor =
            |d: &Digest| json!({"mediaType": "application/wasm", "digest": d, "size": 1});
        json!({
            "schemaVersion": 2,
            "mediaType": IMAGE,
            "config": descriptor(config),
            "layers": layers.iter().map(|d| descriptor(d)).collect::<Vec<_>>(),
        })
    }

    async fn error_code(response: reqwest::Response) -> String {
        let body: Value = response.json().await.unwrap();
        body["errors"][0]["code"].as_str().unwrap().to_string()
    }

    fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
        response.headers().get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn chunked_push_then_pull() {
        let server = Running::start().await;
        let version = server.request(Method::GET, "/v2/").send().await.unwrap();
        assert_eq!(version.status(), StatusCode::OK);
        assert_eq!(header(&version, "docker-distribution-api-version"), "registry/2.0");

        let start = server.request(Method::POST, "/v2/acme/x/blobs/uploads/").send().await.unwrap();
        assert_eq!(start.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&start, "range"), "0-0");
        let location = header(&start, "location").to_string();
        assert!(location.starts_with("/v2/acme/x/blobs/uploads/"), "{location}");
        let patch = |range: &'static str, chunk: &'static [u8]| {
            server.request(Method::PATCH, &location).header("content-range", range).body(chunk)
        };
        let first = patch("0-5", b"hello ").send().await.unwrap();
        assert_eq!((first.status(), header(&first, "range")), (StatusCode::ACCEPTED, "0-5"));
        let reordered = patch("0-4", b"world").send().await.unwrap();
        assert_eq!(reordered.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(patch("6-10", b"world").send().await.unwrap().status(), StatusCode::ACCEPTED);
        let status = server.request(Method::GET, &location).send().await.unwrap();
        assert_eq!((status.status(), header(&status, "range")), (StatusCode::NO_CONTENT, "0-10"));
        let layer = Digest::of(b"hello world!");
        let put = server.request(Method::PUT, &format!("{location}?digest={layer}")).body("!");
        let put = put.send().await.unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(header(&put, "docker-content-digest"), layer.as_str());

        let blob_path = format!("/v2/acme/x/blobs/{layer}");
        let head = server.request(Method::HEAD, &blob_path).send().await.unwrap();
        assert_eq!((head.status(), header(&head, "content-length")), (StatusCode::OK, "12"));
        let get = server.request(Method::GET, &blob_path).send().await.unwrap();
        assert_eq!(&get.bytes().await.unwrap()[..], b"hello world!");

        let config = server.push_blob("acme/x", b"{}").await;
        let manifest = manifest(&config, &[&layer]);
        let pushed = server.put_manifest("acme/x", "1.0.0", &manifest).await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        let digest = header(&pushed, "docker-content-digest").to_string();
        assert_eq!(digest, Digest::of(manifest.to_string().as_bytes()).as_str());
        for reference in ["1.0.0", &digest] {
            let path = format!("/v2/acme/x/manifests/{reference}");
            let head = server.request(Method::HEAD, &path).send().await.unwrap();
            assert_eq!(header(&head, "docker-content-digest"), digest);
            let got = server.request(Method::GET, &path).send().await.unwrap();
            assert_eq!(header(&got, "content-type"), IMAGE);
            assert_eq!(got.json::<Value>().await.unwrap(), manifest);
        }
        let unknown = server.request(Method::GET, "/v2/acme/y/manifests/1.0.0").send().await;
        assert_eq!(error_code(unknown.unwrap()).await, "MANIFEST_UNKNOWN");
    }

    #[tokio::test]
    async fn monolithic_upload_and_mount() {
        let server = Running::start().await;
        let digest = server.push_blob("acme/x", b"whole blob").await;
        let got = server.request(Method::GET, &format!("/v2/acme/x/blobs/{digest}")).send().await;
        assert_eq!(&got.unwrap().bytes().await.unwrap()[..], b"whole blob");

        let mount = format!("/v2/acme/y/blobs/uploads/?mount={digest}&from=acme/x");
        let mounted = server.request(Method::POST, &mount).send().await.unwrap();
        assert_eq!(mounted.status(), StatusCode::CREATED);
        let missing = Digest::of(b"missing");
        let mount = format!("/v2/acme/y/blobs/uploads/?mount={missing}&from=acme/x");
        let session = server.request(Method::POST, &mount).send().await.unwrap();
        assert_eq!(session.status(), StatusCode::ACCEPTED);
        let cancelled = server.request(Method::DELETE, header(&session, "location")).send().await;
        assert_eq!(cancelled.unwrap().status(), StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn digest_mismatch_leaves_nothing() {
        let server = Running::start().await;
        let claimed = Digest::of(b"expected");
        let path = format!("/v2/acme/x/blobs/uploads/?digest={claimed}");
        let response = server.request(Method::POST, &path).body("actual").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "DIGEST_INVALID");

        let blob = server.request(Method::GET, &format!("/v2/acme/x/blobs/{claimed}")).send().await;
        assert_eq!(error_code(blob.unwrap()).await, "BLOB_UNKNOWN");
        for dir in ["blobs/sha256", "uploads"] {
            let entries = std::fs::read_dir(server.dir.path().join(dir)).unwrap().count();
            assert_eq!(entries, 0, "{dir} should be empty");
        }
    }

    #[tokio::test]
    async fn tags_are_immutable_but_reputs_are_idempotent() {
        let server = Running::start().await;
        let config = server.push_blob("acme/x", b"{}").await;
        let layer = server.push_blob("acme/x", b"v1").await;
        let first = manifest(&config, &[&layer]);
        assert_eq!(
            server.put_manifest("acme/x", "1.0.0", &first).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            server.put_manifest("acme/x", "1.0.0", &first).await.status(),
            StatusCode::CREATED
        );

        let other = manifest(&config, &[]);
        let refused = server.put_manifest("acme/x", "1.0.0", &other).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "DENIED");
        let message = "tag 1.0.0 already exists in acme/x and releases are immutable";
        assert_eq!(body["errors"][0]["message"], message);

        let got = server.request(Method::GET, "/v2/acme/x/manifests/1.0.0").send().await.unwrap();
        assert_eq!(got.json::<Value>().await.unwrap(), first);
    }

    #[tokio::test]
    async fn manifest_referencing_missing_blob_is_refused() {
        let server = Running::start().await;
        let config = server.push_blob("acme/x", b"{}").await;
        let missing = Digest::of(b"never pushed");
        let response =
            server.put_manifest("acme/x", "1.0.0", &manifest(&config, &[&missing])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");
        let tags = server.request(Method::GET, "/v2/acme/x/tags/list").send().await.unwrap();
        assert_eq!(error_code(tags).await, "NAME_UNKNOWN");
    }

    #[tokio::test]
    async fn path_traversal_names_are_rejected() {
        let server = Running::start().await;
        for path in [
            "/v2/../../etc/tags/list",
            "/v2/acme/%2e%2e/%2e%2e/x/tags/list",
            "/v2/acme/..%2F..%2Fx/tags/list",
            "/v2/acme/x/manifests/..%2F..%2Fpasswd",
        ] {
            let status = server.raw_status(path).await;
            assert!(status.starts_with("HTTP/1.1 4"), "{path}: {status}");
        }
        let response = server.request(Method::GET, "/v2/acme/%2E%2E%2Fetc/tags/list").send().await;
        assert_eq!(error_code(response.unwrap()).await, "NAME_INVALID");
    }

    #[tokio::test]
    async fn tags_list_paginates() {
        let server = Running::start().await;
        let config = server.push_blob("acme/x", b"{}").await;
        let manifest = manifest(&config, &[]);
        for tag in ["2.0.0", "1.0.0", "1.1.0"] {
            assert_eq!(
                server.put_manifest("acme/x", tag, &manifest).await.status(),
                StatusCode::CREATED
            );
        }
        let all = server.request(Method::GET, "/v2/acme/x/tags/list").send().await.unwrap();
        let all: Value = all.json().await.unwrap();
        assert_eq!(all, json!({"name": "acme/x", "tags": ["1.0.0", "1.1.0", "2.0.0"]}));

        let first = server.request(Method::GET, "/v2/acme/x/tags/list?n=2").send().await.unwrap();
        let next = header(&first, "link").to_string();
        assert_eq!(next, "</v2/acme/x/tags/list?n=2&last=1.1.0>; rel=\"next\"");
        assert_eq!(first.json::<Value>().await.unwrap()["tags"], json!(["1.0.0", "1.1.0"]));
        let path = next.trim_start_matches('<').split('>').next().unwrap();
        let second = server.request(Method::GET, path).send().await.unwrap();
        assert!(second.headers().get("link").is_none());
        assert_eq!(second.json::<Value>().await.unwrap()["tags"], json!(["2.0.0"]));
    }

    #[tokio::test]
    async fn only_release_tags_are_immutable_unless_allowed() {
        let server = Running::start().await;
        let config = server.push_blob("acme/x", b"{}").await;
        let (first, second) = (manifest(&config, &[]), manifest(&config, &[&config]));
        for content in [&first, &second] {
            let status = server.put_manifest("acme/x", "latest", content).await.status();
            assert_eq!(status, StatusCode::CREATED);
        }

        let server = Running::start_with(|options| options.allow_tag_overwrite = true).await;
        let config = server.push_blob("acme/x", b"{}").await;
        for content in [manifest(&config, &[]), manifest(&config, &[&config])] {
            let status = server.put_manifest("acme/x", "1.0.0", &content).await.status();
            assert_eq!(status, StatusCode::CREATED);
        }
    }

    #[tokio::test]
    async fn blobs_are_served_only_where_they_were_pushed_or_mounted() {
        let server = Running::start().await;
        let digest = server.push_blob("acme/x", b"private").await;
        let other = server.request(Method::GET, &format!("/v2/other/y/blobs/{digest}")).send();
        assert_eq!(error_code(other.await.unwrap()).await, "BLOB_UNKNOWN");
        let manifest = manifest(&digest, &[]);
        let refused = server.put_manifest("other/y", "1.0.0", &manifest).await;
        assert_eq!(error_code(refused).await, "MANIFEST_BLOB_UNKNOWN");

        let mount = format!("/v2/other/y/blobs/uploads/?mount={digest}&from=acme/x");
        let mounted = server.request(Method::POST, &mount).send().await.unwrap();
        assert_eq!(mounted.status(), StatusCode::CREATED);
        let got = server.request(Method::GET, &format!("/v2/other/y/blobs/{digest}")).send();
        assert_eq!(&got.await.unwrap().bytes().await.unwrap()[..], b"private");
    }

    #[tokio::test]
    async fn index_needs_its_manifests_in_the_repository() {
        let server = Running::start().await;
        let config = server.push_blob("acme/x", b"{}").await;
        let child = manifest(&config, &[]);
        let child_digest = Digest::of(child.to_string().as_bytes());
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": IMAGE, "digest": child_digest, "size": 1}],
        });
        let put_index = || {
            server
                .request(Method::PUT, "/v2/acme/x/manifests/1.0.0")
                .header("content-type", "application/vnd.oci.image.index.v1+json")
                .body(index.to_string())
                .send()
        };
        assert_eq!(error_code(put_index().await.unwrap()).await, "MANIFEST_BLOB_UNKNOWN");
        let pushed = server.put_manifest("acme/x", child_digest.as_str(), &child).await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        assert_eq!(put_index().await.unwrap().status(), StatusCode::CREATED);
    }

    #[tokio::test]
    async fn catalog_lists_repositories_in_pages() {
        let server = Running::start().await;
        for repo in ["b/z", "acme/x", "acme/x/nested"] {
            let config = server.push_blob(repo, b"{}").await;
            let pushed = server.put_manifest(repo, "1.0.0", &manifest(&config, &[])).await;
            assert_eq!(pushed.status(), StatusCode::CREATED);
        }
        let all = server.request(Method::GET, "/v2/_catalog").send().await.unwrap();
        let all: Value = all.json().await.unwrap();
        assert_eq!(all, json!({"repositories": ["acme/x", "acme/x/nested", "b/z"]}));
        let first = server.request(Method::GET, "/v2/_catalog?n=2").send().await.unwrap();
        let link = header(&first, "link").to_string();
        assert_eq!(link, "</v2/_catalog?n=2&last=acme/x/nested>; rel=\"next\"");
        let rest = server.request(Method::GET, "/v2/_catalog?n=2&last=acme/x/nested").send();
        let rest: Value = rest.await.unwrap().json().await.unwrap();
        assert_eq!(rest["repositories"], json!(["b/z"]));
        let health = server.request(Method::GET, "/healthz").send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
}
