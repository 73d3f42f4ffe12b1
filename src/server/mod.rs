//! The embedded OCI registry (`cargo wreg registry serve`): enough of the OCI distribution
//! spec v1.1 for cargo-wreg, `wkg` and `skopeo` to push and pull, with releases that cannot
//! be overwritten.

mod routes;
mod storage;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};

use storage::Storage;

/// Serves the registry on `listener` with content in `storage` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    storage: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let storage = Storage::open(storage.clone())
        .await
        .with_context(|| format!("failed to open registry storage `{}`", storage.display()))?;
    axum::serve(listener, router(Arc::new(storage)))
        .with_graceful_shutdown(shutdown)
        .await
        .context("registry server failed")
}

/// Default storage dir: `dirs::data_dir()/cargo-wreg/registry`.
pub fn default_storage() -> anyhow::Result<PathBuf> {
    let data = dirs::data_dir().context("failed to find the user's data directory")?;
    Ok(data.join("cargo-wreg").join("registry"))
}

fn router(storage: Arc<Storage>) -> Router {
    Router::new()
        .route("/v2", get(routes::api_version))
        .route("/v2/", get(routes::api_version))
        .route("/v2/{*path}", any(routes::dispatch))
        .with_state(storage)
        .layer(middleware::from_fn(log_request))
}

/// Logs each request at debug level and marks every response as a distribution API one.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let start = Instant::now();
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    tracing::debug!(%method, path, status, elapsed = ?start.elapsed(), "registry request");
    response.headers_mut().insert(routes::API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use reqwest::{Client, Method, StatusCode};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

    struct Server {
        base: String,
        client: Client,
        dir: tempfile::TempDir,
    }

    impl Server {
        async fn start() -> Self {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let dir = tempfile::tempdir().unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(serve(listener, dir.path().to_path_buf(), std::future::pending()));
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
        let server = Server::start().await;
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
}
