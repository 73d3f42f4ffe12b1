//! An async client for the OCI distribution API, limited to what Wasm packages need: listing
//! version tags, reading manifests and blobs, and pushing an artifact.
//!
//! A client stands for one registry as the user named it. Before its first request it finds
//! out where that registry keeps its packages (discovery) and answers authentication
//! challenges as they come; uploads are monolithic, or chunked for large blobs and registries
//! that refuse big bodies, and blobs the registry already holds in another repository are
//! mounted rather than sent again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use indicatif::ProgressBar;
use reqwest::header::{self, HeaderMap, HeaderName};
use reqwest::{Method, Response, StatusCode, Url};
use semver::Version;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::auth::{Credentials, Scope, Session};
use super::discovery;
use super::layout::{self, Artifact, Descriptor, ImageManifest};
use super::transport::{self, Request, header_str};
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
/// Blobs up to this size go in one `PUT`; larger ones in `PATCH` chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;
const CHUNK_MIN_LENGTH: HeaderName = HeaderName::from_static("oci-chunk-min-length");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// How to reach a registry, beyond its address.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where the registry keeps its packages, when the configuration says so; otherwise
    /// discovery finds out.
    pub location: Option<Registry>,
    /// `Some(true)` for plain HTTP, `Some(false)` for HTTPS (the `protocol` setting);
    /// otherwise the address decides.
    pub insecure: Option<bool>,
    /// Credentials from the configuration or the environment. Without them, Docker's config
    /// and credential helpers are asked when the registry first wants credentials.
    pub credentials: Option<Credentials>,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { location: None, insecure: None, credentials: None, chunk_size: DEFAULT_CHUNK_SIZE }
    }
}

/// A connection to one registry; cheap to clone, clones share discovery and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    options: ClientOptions,
    http: reqwest::Client,
    remote: OnceCell<Remote>,
    /// Blobs known to be in some repository of this registry, for cross-repository mounts.
    seen: Mutex<HashMap<Digest, String>>,
}

/// The registry as found: its OCI location and the authentication state with it.
struct Remote {
    location: Registry,
    base: Url,
    session: Session,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("registry", &self.inner.registry).finish_non_exhaustive()
    }
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

/// How an upload began.
enum Started {
    /// The registry mounted the blob from another repository; nothing to send.
    Mounted,
    /// Send the blob to `url`, in chunks of at least `min_chunk` bytes if chunked.
    Upload { url: Url, min_chunk: u64 },
}

impl Client {
    /// A client with the default options: discovery, and Docker's credentials on demand.
    pub fn new(registry: Registry) -> Result<Self> {
        Self::with_options(registry, ClientOptions::default())
    }

    pub fn with_options(registry: Registry, options: ClientOptions) -> Result<Self> {
        Url::parse(&registry.base_url())
            .with_context(|| format!("invalid registry URL `{}`", registry.base_url()))?;
        let inner = Inner {
            registry,
            options,
            http: transport::http_client()?,
            remote: OnceCell::new(),
            seen: Mutex::new(HashMap::new()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The registry as the user named it.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Where the registry keeps its packages: itself, or what its metadata names.
    pub async fn location(&self) -> Result<Registry> {
        let remote = self.remote().await.with_context(|| {
            format!("failed to find where `{}` keeps its packages", self.registry())
        })?;
        Ok(remote.location.clone())
    }

    /// Checks that the registry accepts us, as `GET /v2/` with authentication does.
    pub async fn check_access(&self) -> Result<()> {
        let check = async {
            let remote = self.remote().await?;
            let url = remote.base.join("/v2/").context("invalid registry URL")?;
            let scope = Scope::default();
            let response = self.call(Request::new(Method::GET, url), &scope).await?;
            self.check(response, &scope).await.map(drop)
        };
        check.await.with_context(|| format!("failed to log in to `{}`", self.registry()))
    }

    /// Checks that the registry lets us push to the package's repository, before anything is
    /// built: opens an upload session, then cancels it.
    pub async fn check_push(&self, package: &PackageName) -> Result<()> {
        let check = async {
            let (start, scope) = self.endpoint(package, "blobs/uploads/", true).await?;
            let response = self.call(Request::new(Method::POST, start.clone()), &scope).await?;
            let response = self.check(response, &scope).await?;
            // A registry that cannot cancel an upload lets the unused session expire.
            if let Ok(url) = location(&start, response.headers()) {
                let cancelled = self.call(Request::new(Method::DELETE, url), &scope).await;
                tracing::debug!(ok = cancelled.is_ok(), "cancelled the trial upload");
            }
            anyhow::Ok(())
        };
        check
            .await
            .with_context(|| format!("`{}` does not let us push `{package}`", self.registry()))
    }

    /// All semver tags of the package's repository, sorted ascending; other tags are ignored.
    /// A repository the registry does not know gives an empty list.
    pub async fn versions(&self, package: &PackageName) -> Result<Vec<Version>> {
        self.list_versions(package).await.with_context(|| {
            format!("failed to list versions of `{package}` on `{}`", self.registry())
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
                self.registry()
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
            format!("failed to fetch manifest `{digest}` of `{package}` from `{}`", self.registry())
        })
    }

    /// Whether a manifest is tagged `version`.
    pub async fn exists(&self, package: &PackageName, version: &Version) -> Result<bool> {
        let check = async {
            if !version.build.is_empty() {
                bail!(
                    "OCI tags cannot hold build metadata (`+{}`); drop it from the version",
                    version.build
                );
            }
            let (url, scope) =
                self.endpoint(package, &format!("manifests/{version}"), false).await?;
            let request =
                Request::new(Method::HEAD, url).header(header::ACCEPT, MANIFEST_ACCEPT)?;
            let response = self.call(request, &scope).await?;
            match response.status() {
                StatusCode::NOT_FOUND => Ok(false),
                status if status.is_success() => Ok(true),
                status => Err(self.status_error(status, &[], &scope)),
            }
        };
        check.await.with_context(|| {
            format!("failed to check for `{package}@{version}` on `{}`", self.registry())
        })
    }

    /// Downloads the blob `layer` describes, advancing `progress` by the bytes received, and
    /// checks its size and digest before handing it out. Redirects to storage elsewhere (S3,
    /// GCS) are followed; credentials are not sent there.
    pub async fn fetch_layer(
        &self,
        package: &PackageName,
        layer: &Descriptor,
        progress: Option<&ProgressBar>,
    ) -> Result<Bytes> {
        let fetch = async {
            let (url, scope) =
                self.endpoint(package, &format!("blobs/{}", layer.digest), false).await?;
            let response = self.call(Request::new(Method::GET, url).streaming(), &scope).await?;
            let response = self.check(response, &scope).await?;
            if let Some(claimed) = content_digest(response.headers()).filter(|d| d != &layer.digest)
            {
                bail!("the registry says the blob is `{claimed}`, expected `{}`", layer.digest);
            }
            let body = transport::read_body(response, layer.size, progress).await?;
            if body.len() as u64 != layer.size {
                bail!("received {} bytes, the manifest says {}", body.len(), layer.size);
            }
            layer.digest.verify(&body)?;
            self.remember(&layer.digest, &scope);
            Ok(Bytes::from(body))
        };
        fetch.await.with_context(|| {
            format!(
                "failed to fetch blob `{}` of `{package}` from `{}`",
                layer.digest,
                self.registry()
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
        push.await.with_context(|| {
            format!("failed to push `{package}@{version}` to `{}`", self.registry())
        })
    }

    async fn list_versions(&self, package: &PackageName) -> Result<Vec<Version>> {
        let (first, scope) = self.endpoint(package, "tags/list", false).await?;
        let mut versions = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_TAG_PAGES {
                bail!("the tag list did not end after {MAX_TAG_PAGES} pages");
            }
            let response = self.call(Request::new(Method::GET, url.clone()), &scope).await?;
            if response.status() == StatusCode::NOT_FOUND && pages == 1 {
                // A web server that is not a registry answers 404 too; don't take that for
                // a missing package.
                self.read_json(response, ERROR_BODY_LIMIT, "an OCI tag list").await?;
                return Ok(Vec::new());
            }
            let response = self.check(response, &scope).await?;
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
        let (url, scope) = self.endpoint(package, &format!("manifests/{reference}"), false).await?;
        let request = Request::new(Method::GET, url).header(header::ACCEPT, MANIFEST_ACCEPT)?;
        let response = self.check(self.call(request, &scope).await?, &scope).await?;
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
        let (url, scope) = self.endpoint(package, &format!("blobs/{digest}"), true).await?;
        let response = self.call(Request::new(Method::HEAD, url), &scope).await?;
        match response.status() {
            status if status.is_success() => {
                tracing::debug!("blob {digest} is already on {}", self.registry());
                self.remember(digest, &scope);
                return Ok(());
            }
            StatusCode::NOT_FOUND => {}
            status => return Err(self.status_error(status, &[], &scope)),
        }

        let upload = async {
            let (url, min_chunk) = match self.start_upload(package, digest, true).await? {
                Started::Mounted => return Ok(()),
                Started::Upload { url, min_chunk } => (url, min_chunk),
            };
            if bytes.len() as u64 > self.inner.options.chunk_size {
                return self.upload_chunked(url, min_chunk, digest, bytes, &scope).await;
            }
            if self.upload_monolithic(url, digest, bytes, &scope).await? {
                return Ok(());
            }
            // The registry refused the body as too large: chunks it is, in a fresh session.
            tracing::debug!("monolithic upload of {digest} refused as too large; chunking");
            match self.start_upload(package, digest, false).await? {
                Started::Upload { url, min_chunk } => {
                    self.upload_chunked(url, min_chunk, digest, bytes, &scope).await
                }
                Started::Mounted => Ok(()),
            }
        };
        upload.await.with_context(|| format!("failed to upload blob `{digest}`"))?;
        self.remember(digest, &scope);
        Ok(())
    }

    /// Opens an upload session, asking for a mount when the blob is known to be in another
    /// repository of this registry.
    async fn start_upload(
        &self,
        package: &PackageName,
        digest: &Digest,
        mount: bool,
    ) -> Result<Started> {
        let (start, mut scope) = self.endpoint(package, "blobs/uploads/", true).await?;
        let mut url = start.clone();
        let from =
            self.known_repository(digest).filter(|from| Some(from) != scope.repository.as_ref());
        if let Some(from) = from.filter(|_| mount) {
            url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", &from);
            scope.mount_from = Some(from);
        }
        let response = self.call(Request::new(Method::POST, url), &scope).await?;
        if response.status() == StatusCode::CREATED && scope.mount_from.is_some() {
            tracing::debug!(
                "mounted blob {digest} from {}",
                scope.mount_from.as_deref().unwrap_or_default()
            );
            return Ok(Started::Mounted);
        }
        let response = self.check(response, &scope).await.context("failed to start the upload")?;
        let url = location(&start, response.headers())?;
        let min_chunk = header_str(response.headers(), CHUNK_MIN_LENGTH)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(Started::Upload { url, min_chunk })
    }

    /// Sends the blob in one `PUT`. Returns false when the registry refuses it as too large.
    async fn upload_monolithic(
        &self,
        url: Url,
        digest: &Digest,
        bytes: &Bytes,
        scope: &Scope,
    ) -> Result<bool> {
        let request = Request::new(Method::PUT, with_digest(url, digest))
            .header(header::CONTENT_TYPE, "application/octet-stream")?
            .body(bytes.clone())
            .streaming();
        let response = self.call(request, scope).await?;
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Ok(false);
        }
        let response = self.check(response, scope).await?;
        check_stored_digest(response.headers(), digest)?;
        Ok(true)
    }

    /// Sends the blob in `PATCH` chunks, each following the `Location` the last one returned,
    /// then closes the session with a `PUT`.
    async fn upload_chunked(
        &self,
        mut url: Url,
        min_chunk: u64,
        digest: &Digest,
        bytes: &Bytes,
        scope: &Scope,
    ) -> Result<()> {
        let size = self.inner.options.chunk_size.max(min_chunk).max(1) as usize;
        let mut offset = 0;
        while offset < bytes.len() {
            let end = (offset + size).min(bytes.len());
            let request = Request::new(Method::PATCH, url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")?
                .header(header::CONTENT_RANGE, &format!("{offset}-{}", end - 1))?
                .body(bytes.slice(offset..end))
                .streaming();
            let response = self.call(request, scope).await?;
            let response = self.check(response, scope).await.with_context(|| {
                format!("failed to upload bytes {offset}-{} of {}", end - 1, bytes.len())
            })?;
            url = location(&url, response.headers())?;
            offset = end;
        }
        let response =
            self.call(Request::new(Method::PUT, with_digest(url, digest)), scope).await?;
        let response = self.check(response, scope).await.context("failed to close the upload")?;
        check_stored_digest(response.headers(), digest)
    }

    async fn push_manifest(
        &self,
        package: &PackageName,
        version: &Version,
        artifact: &Artifact,
    ) -> Result<Digest> {
        let (url, scope) = self.endpoint(package, &format!("manifests/{version}"), true).await?;
        let request = Request::new(Method::PUT, url)
            .header(header::CONTENT_TYPE, layout::MANIFEST_MEDIA_TYPE)?
            .body(artifact.manifest().clone());
        let response = self.call(request, &scope).await?;
        let response =
            self.check(response, &scope).await.context("failed to upload the manifest")?;
        let ours = artifact.manifest_digest();
        if let Some(theirs) = content_digest(response.headers()).filter(|d| d != ours) {
            bail!("the registry stored the manifest as `{theirs}`, but it hashes to `{ours}`");
        }
        Ok(ours.clone())
    }

    /// Discovers the registry's location once.
    async fn remote(&self) -> Result<&Remote> {
        self.inner.remote.get_or_try_init(|| self.find_remote()).await
    }

    async fn find_remote(&self) -> Result<Remote> {
        let options = &self.inner.options;
        let location = match &options.location {
            Some(location) => location.clone(),
            None => {
                discovery::discover(&self.inner.http, self.registry(), options.insecure).await?
            }
        };
        let base = Url::parse(&location.base_url())
            .with_context(|| format!("invalid registry URL `{}`", location.base_url()))?;
        let session = Session::new(location.host(), options.credentials.clone());
        Ok(Remote { location, base, session })
    }

    /// The URL of `/v2/<repository>/<tail>` and the access it needs.
    async fn endpoint(
        &self,
        package: &PackageName,
        tail: &str,
        push: bool,
    ) -> Result<(Url, Scope)> {
        let remote = self.remote().await?;
        let repository = remote.location.repository(package);
        let path = format!("/v2/{repository}/{tail}");
        let url = remote
            .base
            .join(&path)
            .with_context(|| format!("invalid registry URL path `{path}`"))?;
        let scope = if push { Scope::push(&repository) } else { Scope::pull(&repository) };
        Ok((url, scope))
    }

    /// Sends `request`, answering one authentication challenge on the way.
    async fn call(&self, request: Request, scope: &Scope) -> Result<Response> {
        let remote = self.remote().await?;
        let mut answered = false;
        loop {
            let auth = remote.session.authorization(scope);
            let response = transport::send(&self.inner.http, &request, auth.as_ref()).await?;
            if response.status() != StatusCode::UNAUTHORIZED || answered {
                return Ok(response);
            }
            answered = true;
            if !remote.session.answer(&self.inner.http, response.headers(), scope).await? {
                return Ok(response);
            }
        }
    }

    /// Passes a successful response through and turns any other into an error with the status
    /// and the registry's own explanation.
    async fn check(&self, response: Response, scope: &Scope) -> Result<Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = transport::read_body(response, ERROR_BODY_LIMIT, None).await.unwrap_or_default();
        Err(self.status_error(status, &body, scope))
    }

    fn status_error(&self, status: StatusCode, body: &[u8], scope: &Scope) -> anyhow::Error {
        let mut message = format!("the registry answered {status}");
        if let Ok(oci) = serde_json::from_slice::<OciErrors>(body) {
            for error in oci.errors {
                message.push_str(&format!(": {} {}", error.code, error.message));
            }
        }
        let Some(remote) = self.inner.remote.get() else { return anyhow!(message) };
        let host = remote.location.host();
        let credentials = remote.session.known_credentials();
        match (status, credentials) {
            (StatusCode::UNAUTHORIZED, None) => remote.session.missing_credentials(&message),
            (StatusCode::UNAUTHORIZED, Some(credentials)) => Help::error(
                format!("{message}; `{host}` rejected {}", credentials.describe()),
                credentials.rejected_help(host),
            ),
            (StatusCode::FORBIDDEN, _) => forbidden(&message, host, credentials, scope),
            _ => anyhow!(message),
        }
    }

    /// Reads a body that should be JSON, turning an HTML page into an error saying so: that is
    /// what a web server that is not a registry answers.
    async fn read_json(&self, response: Response, limit: u64, expected: &str) -> Result<Vec<u8>> {
        let headers = response.headers().clone();
        let body = transport::read_body(response, limit, None).await?;
        if transport::is_html(&headers, &body) {
            let base = match self.inner.remote.get() {
                Some(remote) => remote.location.base_url(),
                None => self.registry().base_url(),
            };
            bail!("the registry answered with HTML, not {expected}; is `{base}` an OCI registry?");
        }
        Ok(body)
    }

    fn remember(&self, digest: &Digest, scope: &Scope) {
        if let (Ok(mut seen), Some(repository)) = (self.inner.seen.lock(), &scope.repository) {
            seen.insert(digest.clone(), repository.clone());
        }
    }

    fn known_repository(&self, digest: &Digest) -> Option<String> {
        self.inner.seen.lock().ok()?.get(digest).cloned()
    }
}

fn forbidden(
    message: &str,
    host: &str,
    credentials: Option<&Credentials>,
    scope: &Scope,
) -> anyhow::Error {
    let who = credentials.map_or("anonymous access".to_string(), Credentials::describe);
    let repository = scope.repository.as_deref().unwrap_or("the registry");
    let (what, help) = if scope.push {
        (
            "pushing to",
            format!(
                "the account needs write (push) access to `{repository}` on `{host}`; grant it, \
                 or log in as an account that has it with `cargo wreg login {host}`"
            ),
        )
    } else {
        ("reading", format!("check that the account may read `{repository}` on `{host}`"))
    };
    Help::error(
        format!("{message}; `{host}` does not allow {what} `{repository}` with {who}"),
        help,
    )
}

fn release(manifest: ImageManifest, digest: Digest, version: Option<Version>) -> Result<Release> {
    let layer = manifest.wasm_layer()?.clone();
    Ok(Release { version, manifest_digest: digest, layer, annotations: manifest.annotations })
}

/// The `Docker-Content-Digest` header, when it holds a sha256 digest we can compare.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    header_str(headers, CONTENT_DIGEST)?.parse().ok()
}

/// An upload that completed must be stored under the digest we sent.
fn check_stored_digest(headers: &HeaderMap, digest: &Digest) -> Result<()> {
    match content_digest(headers) {
        Some(stored) if &stored != digest => {
            bail!("the registry stored the blob as `{stored}`, but it hashes to `{digest}`")
        }
        _ => Ok(()),
    }
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

/// The `Location` of an upload session, relative or absolute.
fn location(current: &Url, headers: &HeaderMap) -> Result<Url> {
    let location = header_str(headers, header::LOCATION)
        .context("the registry did not say where to upload (no Location header)")?;
    current.join(&location).with_context(|| format!("invalid Location `{location}`"))
}

/// `url` with `digest` added to whatever query it already carries, to close an upload.
fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    url
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
        // Only the API answers garbage: a `.well-known` document that is not JSON is an error
        // of its own.
        let client = serve(Router::new().route("/v2/{*path}", get(async || "evil"))).await;
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
        let artifact = Artifact::new(&wasm, "text.wasm", notes, None).unwrap();

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

    mod against_real_behaviours {
        use super::super::super::auth::Secret;
        use super::super::super::fake::{Auth, Behaviour, Fake, PASSWORD, USER};
        use super::*;

        fn artifact() -> Artifact {
            let wasm = super::super::super::layout::tests::wit_package();
            let notes = BTreeMap::from([(layout::VERSION.to_string(), "1.0.0".to_string())]);
            Artifact::new(&wasm, "text.wasm", notes, None).unwrap()
        }

        fn client(address: &str, password: Option<&str>, chunk_size: u64) -> Client {
            let credentials = password.map(|p| Credentials::basic(USER, Secret::new(p), "`test`"));
            let options = ClientOptions { credentials, chunk_size, ..ClientOptions::default() };
            Client::with_options(address.parse().unwrap(), options).unwrap()
        }

        async fn start(behaviour: Behaviour) -> (Fake, String) {
            Fake::start(behaviour).await
        }

        #[tokio::test]
        async fn bearer_tokens_are_anonymous_for_pulls_and_authenticated_for_pushes() {
            let (fake, address) =
                start(Behaviour { auth: Auth::Bearer, ..Behaviour::default() }).await;
            let artifact = artifact();
            let anonymous = client(&address, None, DEFAULT_CHUNK_SIZE);
            let err =
                format!("{:#}", anonymous.push(&text(), &v("1.0.0"), &artifact).await.unwrap_err());
            assert!(err.contains("requires authentication, which is not configured"), "{err}");

            let pusher = client(&address, Some(PASSWORD), DEFAULT_CHUNK_SIZE);
            pusher.push(&text(), &v("1.0.0"), &artifact).await.unwrap();
            let tokens = fake.count("GET /token");
            let release = anonymous.release(&text(), &v("1.0.0")).await.unwrap();
            anonymous.fetch_layer(&text(), &release.layer, None).await.unwrap();
            assert_eq!(fake.count("GET /token"), tokens, "the anonymous token is reused");
            assert!(fake.log().iter().all(|line| !line.contains(PASSWORD)));
        }

        #[tokio::test]
        async fn expired_tokens_are_renewed() {
            let (fake, address) =
                start(Behaviour { auth: Auth::Bearer, ..Behaviour::default() }).await;
            let pusher = client(&address, Some(PASSWORD), DEFAULT_CHUNK_SIZE);
            pusher.push(&text(), &v("1.0.0"), &artifact()).await.unwrap();
            let tokens = fake.count("GET /token");
            fake.expire_tokens();
            assert!(pusher.exists(&text(), &v("1.0.0")).await.unwrap());
            assert_eq!(fake.count("GET /token"), tokens + 1);
        }

        #[tokio::test]
        async fn wrong_passwords_are_named_without_the_password() {
            let (_, address) = start(Behaviour { auth: Auth::Basic, ..Behaviour::default() }).await;
            client(&address, Some(PASSWORD), DEFAULT_CHUNK_SIZE)
                .push(&text(), &v("1.0.0"), &artifact())
                .await
                .unwrap();
            let wrong = client(&address, Some("wrong-password"), DEFAULT_CHUNK_SIZE);
            let err = format!("{:#}", wrong.versions(&text()).await.unwrap_err());
            assert!(err.contains("rejected the credentials of `user` from `test`"), "{err}");
            assert!(!err.contains("wrong-password"), "{err}");
            let (_, bearer) = start(Behaviour { auth: Auth::Bearer, ..Behaviour::default() }).await;
            let wrong = client(&bearer, Some("wrong-password"), DEFAULT_CHUNK_SIZE);
            let err =
                format!("{:#}", wrong.push(&text(), &v("1.0.0"), &artifact()).await.unwrap_err());
            assert!(
                err.contains(
                    "rejected the credentials of `user` from `test`: its token service answered 401"
                ),
                "{err}"
            );
            assert!(
                wrong.versions(&text()).await.unwrap().is_empty(),
                "pulls fall back to anonymous"
            );
        }

        #[tokio::test]
        async fn forbidden_pushes_say_what_is_missing() {
            let (_, address) = start(Behaviour { forbid_push: true, ..Behaviour::default() }).await;
            let err = client(&address, None, DEFAULT_CHUNK_SIZE)
                .push(&text(), &v("1.0.0"), &artifact())
                .await
                .unwrap_err();
            let help =
                err.chain().find_map(|e| e.downcast_ref::<Help>()).map(|h| h.help().to_string());
            let err = format!("{err:#}");
            assert!(err.contains("403 Forbidden: DENIED"), "{err}");
            assert!(
                err.contains("does not allow pushing to `acme/text` with anonymous access"),
                "{err}"
            );
            assert!(help.unwrap().contains("write (push) access"));
        }

        #[tokio::test]
        async fn large_blobs_go_in_chunks_of_at_least_the_minimum() {
            let behaviour = Behaviour { min_chunk: Some(300), ..Behaviour::default() };
            let (fake, address) = start(behaviour).await;
            let artifact = artifact();
            let pusher = client(&address, None, 100);
            pusher.push(&text(), &v("1.0.0"), &artifact).await.unwrap();
            let patches: Vec<usize> = fake
                .log()
                .iter()
                .filter(|line| line.starts_with("PATCH"))
                .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
                .collect();
            let total = artifact.wasm().len() + artifact.config().len();
            assert_eq!(patches.iter().sum::<usize>(), total);
            assert!(
                patches.iter().filter(|&&n| n < 300).count() <= 2,
                "only last chunks are short: {patches:?}"
            );
            let release = pusher.release(&text(), &v("1.0.0")).await.unwrap();
            pusher.fetch_layer(&text(), &release.layer, None).await.unwrap();
        }

        #[tokio::test]
        async fn bodies_refused_as_too_large_are_sent_in_chunks() {
            let (fake, address) =
                start(Behaviour { max_body: Some(64), ..Behaviour::default() }).await;
            client(&address, None, DEFAULT_CHUNK_SIZE)
                .push(&text(), &v("1.0.0"), &artifact())
                .await
                .unwrap();
            assert_eq!(fake.count("PATCH "), 2, "{:#?}", fake.log());
        }

        #[tokio::test]
        async fn blobs_known_elsewhere_are_mounted() {
            let (fake, address) = start(Behaviour::default()).await;
            let pusher = client(&address, None, DEFAULT_CHUNK_SIZE);
            let artifact = artifact();
            pusher.push(&text(), &v("1.0.0"), &artifact).await.unwrap();
            let copy: PackageName = "acme:copy".parse().unwrap();
            pusher.push(&copy, &v("1.0.0"), &artifact).await.unwrap();
            assert_eq!(fake.count("&from=acme%2Ftext"), 2, "{:#?}", fake.log());
            assert_eq!(fake.count("PUT /v2/acme/copy/blobs"), 0, "nothing uploaded again");
            assert!(pusher.release(&copy, &v("1.0.0")).await.is_ok());
        }

        #[tokio::test]
        async fn blob_redirects_are_followed_without_credentials() {
            let behaviour =
                Behaviour { auth: Auth::Basic, redirect_blobs: true, ..Behaviour::default() };
            let (fake, address) = start(behaviour).await;
            let pusher = client(&address, Some(PASSWORD), DEFAULT_CHUNK_SIZE);
            pusher.push(&text(), &v("1.0.0"), &artifact()).await.unwrap();
            let release = pusher.release(&text(), &v("1.0.0")).await.unwrap();
            pusher.fetch_layer(&text(), &release.layer, None).await.unwrap();
            let storage: Vec<String> =
                fake.log().into_iter().filter(|l| l.starts_with("GET /storage")).collect();
            assert_eq!(storage.len(), 1);
            assert!(storage[0].contains(" none "), "credentials went to another host: {storage:?}");
        }

        #[tokio::test]
        async fn blob_digest_headers_are_checked() {
            let (_, address) =
                start(Behaviour { lie_about_digests: true, ..Behaviour::default() }).await;
            let pusher = client(&address, None, DEFAULT_CHUNK_SIZE);
            pusher.push(&text(), &v("1.0.0"), &artifact()).await.unwrap();
            let release = pusher.release(&text(), &v("1.0.0")).await.unwrap();
            let err = format!(
                "{:#}",
                pusher.fetch_layer(&text(), &release.layer, None).await.unwrap_err()
            );
            assert!(err.contains("the registry says the blob is `sha256:"), "{err}");
        }
    }
}
