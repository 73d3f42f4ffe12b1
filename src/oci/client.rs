//! An async client for the OCI distribution API, limited to what Wasm packages need: listing
//! version tags, reading manifests and blobs, and pushing an artifact with monolithic uploads.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use indicatif::ProgressBar;
use reqwest::header::{self, HeaderMap};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use semver::Version;
use serde::Deserialize;

use super::layout::{self, Artifact, Descriptor, ImageManifest};
use crate::Help;
use crate::digest::Digest;
use crate::package::PackageName;
use crate::registry::Registry;

/// Index media types are accepted so that an index gets a clear error instead of a 404.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Registries need only accept manifests up to 4 MiB, so anything larger is not one.
const MANIFEST_LIMIT: u64 = 4 << 20;
const TAG_PAGE_LIMIT: u64 = 16 << 20;
const ERROR_BODY_LIMIT: u64 = 64 << 10;
/// Guards against a registry whose `Link` headers go round in circles.
const MAX_TAG_PAGES: usize = 1000;

/// A connection to one registry.
#[derive(Debug, Clone)]
pub struct Client {
    registry: Registry,
    base: Url,
    http: reqwest::Client,
}

/// A published version of a package, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The version tag it was fetched by; for a fetch by digest, the version annotation if it
    /// is semver.
    pub version: Option<Version>,
    pub manifest_digest: Digest,
    pub layer: Descriptor,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct OciErrors {
    errors: Vec<OciError>,
}

#[derive(Deserialize)]
struct OciError {
    code: String,
    #[serde(default)]
    message: String,
}

impl Client {
    pub fn new(registry: Registry) -> Result<Self> {
        let base = Url::parse(&registry.base_url())
            .with_context(|| format!("invalid registry URL `{}`", registry.base_url()))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("cargo-wreg/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .context("failed to set up the HTTP client")?;
        Ok(Self { registry, base, http })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// All semver tags of the package's repository, sorted ascending; other tags are ignored.
    /// A repository the registry does not know gives an empty list.
    pub async fn versions(&self, package: &PackageName) -> Result<Vec<Version>> {
        self.list_versions(package).await.with_context(|| {
            format!("failed to list versions of `{package}` on `{}`", self.registry)
        })
    }

    /// The release tagged `version`.
    pub async fn release(&self, package: &PackageName, version: &Version) -> Result<Release> {
        let fetch = async {
            let (manifest, digest) = self.fetch_manifest(package, &version.to_string()).await?;
            release(manifest, digest, Some(version.clone()))
        };
        fetch.await.with_context(|| {
            format!(
                "failed to fetch the manifest of `{package}@{version}` from `{}`",
                self.registry
            )
        })
    }

    /// The release whose manifest has `digest`.
    pub async fn release_by_digest(
        &self,
        package: &PackageName,
        digest: &Digest,
    ) -> Result<Release> {
        let fetch = async {
            let (manifest, actual) = self.fetch_manifest(package, digest.as_str()).await?;
            if &actual != digest {
                bail!("the manifest served for `{digest}` hashes to `{actual}`");
            }
            let version = manifest.annotations.get(layout::VERSION).and_then(|v| v.parse().ok());
            release(manifest, actual, version)
        };
        fetch.await.with_context(|| {
            format!("failed to fetch manifest `{digest}` of `{package}` from `{}`", self.registry)
        })
    }

    /// Whether a manifest is tagged `version`.
    pub async fn exists(&self, package: &PackageName, version: &Version) -> Result<bool> {
        let check = async {
            let url = self.url(package, &format!("manifests/{version}"))?;
            let response =
                self.send(self.http.head(url).header(header::ACCEPT, MANIFEST_ACCEPT)).await?;
            match response.status() {
                StatusCode::NOT_FOUND => Ok(false),
                status if status.is_success() => Ok(true),
                status => Err(status_error(status, &[])),
            }
        };
        check.await.with_context(|| {
            format!("failed to check for `{package}@{version}` on `{}`", self.registry)
        })
    }

    /// Downloads the blob `layer` describes, advancing `progress` by the bytes received, and
    /// checks its size and digest before handing it out.
    pub async fn fetch_layer(
        &self,
        package: &PackageName,
        layer: &Descriptor,
        progress: Option<&ProgressBar>,
    ) -> Result<Bytes> {
        let fetch = async {
            let url = self.url(package, &format!("blobs/{}", layer.digest))?;
            let response = check_status(self.send(self.http.get(url)).await?).await?;
            let body = read_body(response, layer.size, progress).await?;
            if body.len() as u64 != layer.size {
                bail!("received {} bytes, the manifest says {}", body.len(), layer.size);
            }
            layer.digest.verify(&body)?;
            Ok(Bytes::from(body))
        };
        fetch.await.with_context(|| {
            format!(
                "failed to fetch blob `{}` of `{package}` from `{}`",
                layer.digest, self.registry
            )
        })
    }

    /// Uploads the artifact's blobs that the registry lacks, then tags its manifest `version`.
    /// Returns the manifest digest.
    pub async fn push(
        &self,
        package: &PackageName,
        version: &Version,
        artifact: &Artifact,
    ) -> Result<Digest> {
        let push = async {
            if !version.build.is_empty() {
                bail!("OCI tags cannot hold build metadata (`+{}`)", version.build);
            }
            self.push_blob(package, artifact.layer(), artifact.wasm()).await?;
            self.push_blob(package, artifact.config_desc(), artifact.config()).await?;
            self.push_manifest(package, version, artifact).await
        };
        push.await
            .with_context(|| format!("failed to push `{package}@{version}` to `{}`", self.registry))
    }

    async fn list_versions(&self, package: &PackageName) -> Result<Vec<Version>> {
        let mut versions = Vec::new();
        let mut next = Some(self.url(package, "tags/list")?);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_TAG_PAGES {
                bail!("the tag list did not end after {MAX_TAG_PAGES} pages");
            }
            let response = self.send(self.http.get(url.clone())).await?;
            if response.status() == StatusCode::NOT_FOUND && pages == 1 {
                // A web server that is not a registry answers 404 too; don't take that for
                // a missing package.
                self.read_json(response, ERROR_BODY_LIMIT, "an OCI tag list").await?;
                return Ok(Vec::new());
            }
            let response = check_status(response).await?;
            next = next_page(&url, response.headers())?;
            let body = self.read_json(response, TAG_PAGE_LIMIT, "an OCI tag list").await?;
            let list: TagList = serde_json::from_slice(&body).context("invalid tag list")?;
            versions.extend(list.tags.into_iter().flatten().filter_map(|t| t.parse().ok()));
        }
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    async fn fetch_manifest(
        &self,
        package: &PackageName,
        reference: &str,
    ) -> Result<(ImageManifest, Digest)> {
        let url = self.url(package, &format!("manifests/{reference}"))?;
        let request = self.http.get(url).header(header::ACCEPT, MANIFEST_ACCEPT);
        let response = check_status(self.send(request).await?).await?;
        let claimed = content_digest(response.headers());
        let content_type = header_str(response.headers(), header::CONTENT_TYPE);
        let body = self.read_json(response, MANIFEST_LIMIT, "an OCI manifest").await?;
        let digest = Digest::of(&body);
        if let Some(claimed) = claimed.filter(|c| c != &digest) {
            bail!("the registry says the manifest is `{claimed}`, but it hashes to `{digest}`");
        }
        Ok((ImageManifest::parse(&body, content_type.as_deref())?, digest))
    }

    async fn push_blob(
        &self,
        package: &PackageName,
        blob: &Descriptor,
        bytes: &Bytes,
    ) -> Result<()> {
        let digest = &blob.digest;
        let url = self.url(package, &format!("blobs/{digest}"))?;
        let response = self.send(self.http.head(url)).await?;
        match response.status() {
            status if status.is_success() => {
                tracing::debug!("blob {digest} is already on {}", self.registry);
                return Ok(());
            }
            StatusCode::NOT_FOUND => {}
            status => return Err(status_error(status, &[])),
        }

        // TODO: chunked upload; registries that cap monolithic PUT size reject large layers.
        let start = self.url(package, "blobs/uploads/")?;
        let request = self.http.post(start.clone()).header(header::CONTENT_LENGTH, 0);
        let response = check_status(self.send(request).await?)
            .await
            .with_context(|| format!("failed to start the upload of blob `{digest}`"))?;
        let target = upload_url(&start, response.headers(), digest)?;

        let request = self
            .http
            .put(target)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.clone());
        check_status(self.send(request).await?)
            .await
            .with_context(|| format!("failed to upload blob `{digest}`"))?;
        Ok(())
    }

    async fn push_manifest(
        &self,
        package: &PackageName,
        version: &Version,
        artifact: &Artifact,
    ) -> Result<Digest> {
        let url = self.url(package, &format!("manifests/{version}"))?;
        let request = self
            .http
            .put(url)
            .header(header::CONTENT_TYPE, layout::MANIFEST_MEDIA_TYPE)
            .body(artifact.manifest().clone());
        let response = check_status(self.send(request).await?)
            .await
            .context("failed to upload the manifest")?;
        let ours = artifact.manifest_digest();
        if let Some(theirs) = content_digest(response.headers()).filter(|d| d != ours) {
            bail!("the registry stored the manifest as `{theirs}`, but it hashes to `{ours}`");
        }
        Ok(ours.clone())
    }

    fn url(&self, package: &PackageName, tail: &str) -> Result<Url> {
        let path = format!("/v2/{}/{tail}", self.registry.repository(package));
        self.base.join(&path).with_context(|| format!("invalid registry URL path `{path}`"))
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let (client, request) = request.build_split();
        let request = request.context("failed to build the HTTP request")?;
        let (method, url) = (request.method().clone(), request.url().clone());
        tracing::debug!("{method} {url}");
        client.execute(request).await.map_err(|err| {
            let host = self.registry.host();
            let reason = if err.is_connect() {
                format!("could not connect to `{host}`; is the registry running and reachable?")
            } else if err.is_timeout() {
                format!("`{host}` did not answer in time")
            } else {
                format!("{method} {url} failed")
            };
            anyhow::Error::new(err).context(reason)
        })
    }

    /// Reads a body that should be JSON, turning an HTML page into an error saying so: that is
    /// what a web server that is not a registry answers.
    async fn read_json(&self, response: Response, limit: u64, expected: &str) -> Result<Vec<u8>> {
        let html = header_str(response.headers(), header::CONTENT_TYPE)
            .is_some_and(|ct| ct.starts_with("text/html"));
        let body = read_body(response, limit, None).await?;
        if html || body.trim_ascii_start().starts_with(b"<") {
            bail!(
                "the registry answered with HTML, not {expected}; is `{}` an OCI registry?",
                self.base.as_str().trim_end_matches('/')
            );
        }
        Ok(body)
    }
}

fn release(manifest: ImageManifest, digest: Digest, version: Option<Version>) -> Result<Release> {
    let layer = manifest.wasm_layer()?.clone();
    Ok(Release { version, manifest_digest: digest, layer, annotations: manifest.annotations })
}

/// Passes a successful response through and turns any other into an error with the status
/// and the registry's own explanation.
async fn check_status(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = read_body(response, ERROR_BODY_LIMIT, None).await.unwrap_or_default();
    Err(status_error(status, &body))
}

fn status_error(status: StatusCode, body: &[u8]) -> anyhow::Error {
    let mut message = format!("the registry answered {status}");
    if let Ok(oci) = serde_json::from_slice::<OciErrors>(body) {
        for error in oci.errors {
            message.push_str(&format!(": {} {}", error.code, error.message));
        }
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        message.push_str("; the registry requires authentication, which is not configured");
        let help =
            "cargo-wreg cannot log in to registries yet; use one that allows anonymous access";
        return Help::error(message, help);
    }
    anyhow!(message)
}

/// Reads the whole body, refusing more than `limit` bytes.
async fn read_body(
    mut response: Response,
    limit: u64,
    progress: Option<&ProgressBar>,
) -> Result<Vec<u8>> {
    let too_long = || anyhow!("the response is longer than the expected {limit} bytes");
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("the connection broke mid-response")? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
        if let Some(progress) = progress {
            progress.inc(chunk.len() as u64);
        }
    }
    Ok(body)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

/// The `Docker-Content-Digest` header, when it holds a sha256 digest we can compare.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    header_str(headers, header::HeaderName::from_static("docker-content-digest"))?.parse().ok()
}

/// The next page of a tag list, from a `Link: <url>; rel="next"` header.
fn next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>> {
    for value in headers.get_all(header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let (target, params) = link.split_once(';').unwrap_or((link, ""));
            let is_next =
                params.split(';').any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            if is_next {
                let target = target.trim().trim_start_matches('<').trim_end_matches('>');
                let url =
                    current.join(target).with_context(|| format!("invalid Link `{target}`"))?;
                return Ok(Some(url));
            }
        }
    }
    Ok(None)
}

/// Where to `PUT` a monolithic upload: the `Location` the registry gave, relative or absolute,
/// with `digest` added to whatever query it already carries.
fn upload_url(start: &Url, headers: &HeaderMap, digest: &Digest) -> Result<Url> {
    let location = header_str(headers, header::LOCATION)
        .context("the registry did not say where to upload (no Location header)")?;
    let mut url =
        start.join(&location).with_context(|| format!("invalid Location `{location}`"))?;
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{Html, IntoResponse, Response};
    use axum::routing::{get, post, put};

    use super::*;

    async fn serve(router: Router) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Client::new(format!("127.0.0.1:{port}").parse().unwrap()).unwrap()
    }

    fn text() -> PackageName {
        "acme:text".parse().unwrap()
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn versions_follow_link_pagination_and_skip_other_tags() {
        let tags = |Query(q): Query<HashMap<String, String>>| async move {
            if q.contains_key("last") {
                return axum::Json(serde_json::json!({"tags": ["0.9.0", "1.2.0"]})).into_response();
            }
            let link = r#"</v2/acme/text/tags/list?n=3&last=1.2.0>; rel="next""#;
            let body = serde_json::json!({"tags": ["1.10.0", "latest", "1.2.0"]});
            ([(header::LINK, link)], axum::Json(body)).into_response()
        };
        let client = serve(Router::new().route("/v2/acme/text/tags/list", get(tags))).await;
        assert_eq!(client.versions(&text()).await.unwrap(), [v("0.9.0"), v("1.2.0"), v("1.10.0")]);
    }

    #[tokio::test]
    async fn versions_of_an_unknown_package_are_empty() {
        let unknown =
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#;
        let client =
            serve(Router::new().fallback(async move || (StatusCode::NOT_FOUND, unknown))).await;
        assert!(client.versions(&text()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn html_answers_name_the_registry() {
        let client = serve(Router::new().fallback(async || Html("<html>welcome</html>"))).await;
        let err = format!("{:#}", client.release(&text(), &v("1.0.0")).await.unwrap_err());
        let url = client.registry().base_url();
        assert!(err.starts_with("failed to fetch the manifest of `acme:text@1.0.0` from `127.0"));
        assert!(err.contains(&format!("HTML, not an OCI manifest; is `{url}` an OCI registry?")));
        let err = format!("{:#}", client.versions(&text()).await.unwrap_err());
        assert!(err.contains("HTML, not an OCI tag list"), "{err}");
    }

    #[tokio::test]
    async fn layers_that_do_not_match_their_digest_are_rejected() {
        let client = serve(Router::new().fallback(async || "evil")).await;
        let layer = Descriptor::of(layout::LAYER_MEDIA_TYPE, b"good");
        let err = format!("{:#}", client.fetch_layer(&text(), &layer, None).await.unwrap_err());
        assert!(err.starts_with("failed to fetch blob `sha256:"), "{err}");
        assert!(err.contains("digest mismatch"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_registries_say_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
        let err = format!("{:#}", client.versions(&text()).await.unwrap_err());
        assert!(
            err.starts_with(&format!(
                "failed to list versions of `acme:text` on `127.0.0.1:{port}`"
            ))
        );
        assert!(err.contains("could not connect"), "{err}");
    }

    #[tokio::test]
    async fn auth_errors_say_authentication_is_not_configured() {
        let denied = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        let client =
            serve(Router::new().fallback(async move || (StatusCode::UNAUTHORIZED, denied))).await;
        let err = format!("{:#}", client.exists(&text(), &v("1.0.0")).await.unwrap_err());
        assert!(err.contains("401 Unauthorized"), "{err}");
        let err = format!("{:#}", client.versions(&text()).await.unwrap_err());
        assert!(err.contains("UNAUTHORIZED authentication required"), "{err}");
        assert!(err.contains("authentication, which is not configured"), "{err}");
    }

    /// Just enough of a registry to push to: blobs and manifests kept in memory, uploads
    /// handed out at relative and absolute Locations that already carry a query.
    #[derive(Clone, Default)]
    struct Fake {
        store: Arc<Mutex<HashMap<String, Bytes>>>,
        uploads: Arc<AtomicUsize>,
    }

    async fn get_blob(State(fake): State<Fake>, Path(key): Path<String>) -> Response {
        match fake.store.lock().unwrap().get(&key) {
            Some(body) => body.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    async fn start_upload(State(fake): State<Fake>, headers: HeaderMap) -> Response {
        let n = fake.uploads.fetch_add(1, Ordering::SeqCst);
        let host = headers[header::HOST].to_str().unwrap();
        let location = if n % 2 == 0 {
            format!("/upload/{n}?_state=x")
        } else {
            format!("http://{host}/upload/{n}?_state=x")
        };
        (StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response()
    }

    async fn finish_upload(
        State(fake): State<Fake>,
        Query(q): Query<HashMap<String, String>>,
        body: Bytes,
    ) -> StatusCode {
        assert_eq!(q["_state"], "x");
        q["digest"].parse::<Digest>().unwrap().verify(&body).unwrap();
        fake.store.lock().unwrap().insert(q["digest"].clone(), body);
        StatusCode::CREATED
    }

    async fn put_manifest(
        State(fake): State<Fake>,
        Path(tag): Path<String>,
        body: Bytes,
    ) -> Response {
        let digest = Digest::of(&body).to_string();
        let mut store = fake.store.lock().unwrap();
        store.insert(tag, body.clone());
        store.insert(digest.clone(), body);
        (StatusCode::CREATED, [("docker-content-digest", digest)]).into_response()
    }

    #[tokio::test]
    async fn pushed_artifacts_read_back() {
        let fake = Fake::default();
        let router = Router::new()
            .route("/v2/acme/text/blobs/{digest}", get(get_blob))
            .route("/v2/acme/text/manifests/{reference}", get(get_blob).put(put_manifest))
            .route("/v2/acme/text/blobs/uploads/", post(start_upload))
            .route("/upload/{n}", put(finish_upload))
            .with_state(fake.clone());
        let client = serve(router).await;
        let wasm = super::super::layout::tests::wit_package();
        let notes = BTreeMap::from([(layout::VERSION.to_string(), "1.0.0".to_string())]);
        let artifact = Artifact::new(&wasm, "text.wasm", notes).unwrap();

        assert!(!client.exists(&text(), &v("1.0.0")).await.unwrap());
        let err = client.push(&text(), &v("1.0.0+abc"), &artifact).await.unwrap_err();
        assert!(format!("{err:#}").contains("build metadata (`+abc`)"), "{err:#}");
        let digest = client.push(&text(), &v("1.0.0"), &artifact).await.unwrap();
        assert_eq!(&digest, artifact.manifest_digest());
        assert_eq!(fake.uploads.load(Ordering::SeqCst), 2);
        client.push(&text(), &v("1.0.0"), &artifact).await.unwrap();
        assert_eq!(fake.uploads.load(Ordering::SeqCst), 2, "present blobs are not uploaded again");

        assert!(client.exists(&text(), &v("1.0.0")).await.unwrap());
        let release = client.release(&text(), &v("1.0.0")).await.unwrap();
        assert_eq!((&release.layer, &release.manifest_digest), (artifact.layer(), &digest));
        let by_digest = client.release_by_digest(&text(), &digest).await.unwrap();
        assert_eq!(by_digest, release);
        let progress = ProgressBar::hidden();
        let layer = client.fetch_layer(&text(), &release.layer, Some(&progress)).await.unwrap();
        assert_eq!((layer.as_ref(), progress.position()), (wasm.as_slice(), wasm.len() as u64));
    }
}
