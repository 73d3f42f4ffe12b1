//! The HTTP side of the embedded registry: parses paths under `/v2/`, runs each request
//! against the storage and answers as the OCI distribution spec says, errors included.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::json;
use tokio_util::io::ReaderStream;

use super::storage::{Reference, Storage, StoreError};
use crate::digest::Digest;

pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

/// Manifests are small JSON documents; the cap keeps a bad client from filling memory.
const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// An OCI error response: a status and a body `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = json!({"code": self.code, "message": self.message, "detail": null});
        (self.status, Json(json!({ "errors": [error] }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        use StatusCode as S;
        let (status, code) = match &err {
            StoreError::UploadUnknown(_) => (S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            StoreError::UploadOutOfOrder { .. } => {
                (S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
            }
            StoreError::DigestMismatch { .. } => (S::BAD_REQUEST, "DIGEST_INVALID"),
            StoreError::ManifestUnknown { .. } => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
            StoreError::ManifestInvalid(_) => (S::BAD_REQUEST, "MANIFEST_INVALID"),
            StoreError::ManifestBlobUnknown(_) => (S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            StoreError::TagExists { .. } => (S::CONFLICT, "DENIED"),
            StoreError::Io(_) => {
                tracing::warn!("registry request failed: {err}");
                let message = "storage failure; see the server log";
                return Self::new(S::INTERNAL_SERVER_ERROR, "UNKNOWN", message);
            }
        };
        Self::new(status, code, err.to_string())
    }
}

/// What a path under `/v2/` addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    Blob { name: String, digest: Digest },
    Uploads { name: String },
    Upload { name: String, id: String },
    Manifest { name: String, reference: Reference },
    Tags { name: String },
}

/// The fixed part of a path after the repository name.
enum Suffix<'a> {
    Blob(&'a str),
    Uploads,
    Upload(&'a str),
    Manifest(&'a str),
    Tags,
}

impl Endpoint {
    /// Parses the part of a path after `/v2/`. The repository name is whatever precedes a
    /// known suffix, since names may have any number of `/`-separated components.
    pub fn parse(path: &str) -> Result<Self, ApiError> {
        let segments: Vec<&str> = path.split('/').collect();
        let (name, suffix) = match segments.as_slice() {
            [name @ .., "tags", "list"] => (name, Suffix::Tags),
            [name @ .., "blobs", "uploads", ""] | [name @ .., "blobs", "uploads"] => {
                (name, Suffix::Uploads)
            }
            [name @ .., "blobs", "uploads", id] => (name, Suffix::Upload(id)),
            [name @ .., "blobs", digest] => (name, Suffix::Blob(digest)),
            [name @ .., "manifests", reference] => (name, Suffix::Manifest(reference)),
            // TODO: the OCI 1.1 referrers API; until then clients fall back to referrer tags.
            _ => {
                let message = format!("no registry endpoint at `/v2/{path}`");
                return Err(ApiError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", message));
            }
        };
        let name = repository_name(name)?;
        Ok(match suffix {
            Suffix::Blob(digest) => Self::Blob { name, digest: parse_digest(digest)? },
            Suffix::Uploads => Self::Uploads { name },
            Suffix::Upload(id) => Self::Upload { name, id: id.to_string() },
            Suffix::Manifest(reference) => {
                Self::Manifest { name, reference: parse_reference(reference)? }
            }
            Suffix::Tags => Self::Tags { name },
        })
    }
}

/// Joins and checks the components of a repository name against the OCI grammar, which
/// also keeps names from escaping the storage directory.
fn repository_name(components: &[&str]) -> Result<String, ApiError> {
    let name = components.join("/");
    if components.is_empty() || name.len() > 255 || !components.iter().all(|c| is_component(c)) {
        let message = format!("invalid repository name `{name}`");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", message));
    }
    Ok(name)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    component.starts_with(alphanumeric)
        && component.ends_with(alphanumeric)
        && component.split(alphanumeric).all(|separator| {
            matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let first_ok = tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn parse_digest(digest: &str) -> Result<Digest, ApiError> {
    digest
        .parse()
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", format!("{err:#}")))
}

fn parse_reference(reference: &str) -> Result<Reference, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference).map(Reference::Digest);
    }
    if !is_tag(reference) {
        let message = format!("invalid tag `{reference}`");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message));
    }
    Ok(Reference::Tag(reference.to_string()))
}

/// `GET /v2/`: tells clients this is a registry that needs no authentication.
pub async fn api_version() -> Json<serde_json::Value> {
    Json(json!({}))
}

/// Every request under `/v2/<path>`.
pub async fn dispatch(
    State(storage): State<Arc<Storage>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match Endpoint::parse(&path) {
        Ok(endpoint) => handle(&storage, method, endpoint, &query, &headers, body).await,
        Err(err) => Err(err),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    storage: &Storage,
    method: Method,
    endpoint: Endpoint,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    use Endpoint as E;
    // HEAD shares the GET handlers: axum drops the body and keeps the headers.
    match (method, endpoint) {
        (Method::GET | Method::HEAD, E::Blob { digest, .. }) => get_blob(storage, &digest).await,
        (Method::POST, E::Uploads { name }) => start_upload(storage, &name, query, body).await,
        (Method::GET, E::Upload { name, id }) => upload_status(storage, &name, &id).await,
        (Method::PATCH, E::Upload { name, id }) => {
            patch_upload(storage, &name, &id, headers, body).await
        }
        (Method::PUT, E::Upload { name, id }) => put_upload(storage, &name, &id, query, body).await,
        (Method::DELETE, E::Upload { id, .. }) => {
            storage.cancel_upload(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET | Method::HEAD, E::Manifest { name, reference }) => {
            get_manifest(storage, &name, &reference).await
        }
        (Method::PUT, E::Manifest { name, reference }) => {
            put_manifest(storage, &name, &reference, headers, body).await
        }
        (Method::GET, E::Tags { name }) => list_tags(storage, &name, query).await,
        (method, _) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("`{method}` is not supported on this endpoint"),
        )),
    }
}

async fn get_blob(storage: &Storage, digest: &Digest) -> Result<Response, ApiError> {
    let Some((file, size)) = storage.open_blob(digest).await? else {
        let message = format!("blob `{digest}` not found");
        return Err(ApiError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", message));
    };
    let headers = [
        (header::CONTENT_LENGTH, size.to_string()),
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (CONTENT_DIGEST, digest.to_string()),
    ];
    Ok((headers, Body::from_stream(ReaderStream::new(file))).into_response())
}

/// `POST .../blobs/uploads/`: mounts an existing blob, takes a whole blob at once
/// (`?digest=`), or starts an upload session.
async fn start_upload(
    storage: &Storage,
    name: &str,
    query: &HashMap<String, String>,
    body: Body,
) -> Result<Response, ApiError> {
    // All repositories share one blob store, so a mount only needs the blob to exist.
    if let Some(digest) = query.get("mount").and_then(|d| d.parse::<Digest>().ok())
        && storage.blob_size(&digest).await?.is_some()
    {
        return Ok(blob_created(name, &digest));
    }
    let digest = query.get("digest").map(|d| parse_digest(d)).transpose()?;
    let id = storage.start_upload().await?;
    match digest {
        Some(digest) => {
            storage.finish_upload(&id, &digest, body.into_data_stream()).await?;
            Ok(blob_created(name, &digest))
        }
        None => Ok(upload_progress(StatusCode::ACCEPTED, name, &id, 0)),
    }
}

async fn upload_status(storage: &Storage, name: &str, id: &str) -> Result<Response, ApiError> {
    let size = storage.upload_size(id).await?;
    Ok(upload_progress(StatusCode::NO_CONTENT, name, id, size))
}

async fn patch_upload(
    storage: &Storage,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let offset = match headers.get(header::CONTENT_RANGE) {
        Some(value) => Some(value.to_str().ok().and_then(range_start).ok_or_else(|| {
            let message = format!("invalid `Content-Range` {value:?}: expected `<start>-<end>`");
            ApiError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
        })?),
        None => None,
    };
    let size = storage.append_upload(id, offset, body.into_data_stream()).await?;
    Ok(upload_progress(StatusCode::ACCEPTED, name, id, size))
}

async fn put_upload(
    storage: &Storage,
    name: &str,
    id: &str,
    query: &HashMap<String, String>,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(digest) = query.get("digest") else {
        let message = "finishing an upload needs a `digest` query parameter";
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message));
    };
    let digest = parse_digest(digest)?;
    storage.finish_upload(id, &digest, body.into_data_stream()).await?;
    Ok(blob_created(name, &digest))
}

async fn get_manifest(
    storage: &Storage,
    name: &str,
    reference: &Reference,
) -> Result<Response, ApiError> {
    let manifest = storage.manifest(name, reference).await?;
    let headers = [
        (header::CONTENT_TYPE, manifest.media_type),
        (CONTENT_DIGEST, manifest.digest.to_string()),
    ];
    Ok((headers, manifest.content).into_response())
}

async fn put_manifest(
    storage: &Storage,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let content = read_limited(body, MAX_MANIFEST_SIZE).await?;
    let digest = storage.put_manifest(name, reference, content_type, content).await?;
    let headers = [
        (header::LOCATION, format!("/v2/{name}/manifests/{digest}")),
        (CONTENT_DIGEST, digest.to_string()),
    ];
    Ok((StatusCode::CREATED, headers).into_response())
}

async fn list_tags(
    storage: &Storage,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let Some(tags) = storage.tags(name).await? else {
        let message = format!("repository `{name}` not found");
        return Err(ApiError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", message));
    };
    let n = query.get("n").map(|n| n.parse::<usize>()).transpose().map_err(|_| {
        let message = "`n` must be a non-negative number of tags";
        ApiError::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", message)
    })?;
    let (page, more) = paginate(tags, n, query.get("last").map(String::as_str));
    let link = match (more, n, page.last()) {
        (true, Some(n), Some(last)) => {
            let link = format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"");
            Some(HeaderValue::try_from(link).map_err(|err| StoreError::Io(err.into()))?)
        }
        _ => None,
    };
    let mut response = Json(json!({ "name": name, "tags": page })).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// The tags after `last`, at most `n` of them, and whether more follow.
fn paginate(tags: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut page: Vec<String> =
        tags.into_iter().filter(|tag| last.is_none_or(|last| tag.as_str() > last)).collect();
    let Some(n) = n else {
        return (page, false);
    };
    let more = page.len() > n;
    page.truncate(n);
    (page, more)
}

/// The start of a `Content-Range` such as `0-1023` (some clients prefix `bytes `).
fn range_start(value: &str) -> Option<u64> {
    let range = value.trim().trim_start_matches("bytes ").trim_start_matches("bytes=");
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
    (start <= end).then_some(start)
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut content = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            let message = format!("failed to receive the manifest: {err}");
            ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
        })?;
        if content.len() + chunk.len() > limit {
            let message = format!("manifest exceeds the limit of {limit} bytes");
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", message));
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content.freeze())
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    let headers = [
        (header::LOCATION, format!("/v2/{name}/blobs/{digest}")),
        (CONTENT_DIGEST, digest.to_string()),
    ];
    (StatusCode::CREATED, headers).into_response()
}

/// An upload session's state: where to send the next chunk and which bytes it holds.
fn upload_progress(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let headers = [
        (header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}")),
        // An empty upload reports `0-0` like other registries; clients expect that form.
        (header::RANGE, format!("0-{}", size.saturating_sub(1))),
        (UPLOAD_UUID, id.to_string()),
    ];
    (status, headers).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn parses_endpoints_after_multi_component_names() {
        let blob = Endpoint::parse(&format!("acme/wit/x/blobs/{}", digest())).unwrap();
        assert_eq!(
            blob,
            Endpoint::Blob { name: "acme/wit/x".into(), digest: digest().parse().unwrap() }
        );
        let uploads = Endpoint::Uploads { name: "a/b".into() };
        assert_eq!(Endpoint::parse("a/b/blobs/uploads/").unwrap(), uploads);
        assert_eq!(Endpoint::parse("a/b/blobs/uploads").unwrap(), uploads);
        let upload = Endpoint::parse("a/blobs/uploads/Xy12").unwrap();
        assert_eq!(upload, Endpoint::Upload { name: "a".into(), id: "Xy12".into() });
        let manifest = Endpoint::parse("a/manifests/1.0.0").unwrap();
        let reference = Reference::Tag("1.0.0".into());
        assert_eq!(manifest, Endpoint::Manifest { name: "a".into(), reference });
        let manifest = Endpoint::parse(&format!("a/manifests/{}", digest())).unwrap();
        let reference = Reference::Digest(digest().parse().unwrap());
        assert_eq!(manifest, Endpoint::Manifest { name: "a".into(), reference });
        assert_eq!(
            Endpoint::parse("a/tags/tags/list").unwrap(),
            Endpoint::Tags { name: "a/tags".into() }
        );
    }

    #[test]
    fn rejects_invalid_names_tags_and_digests() {
        let code = |path: &str| Endpoint::parse(path).map(|_| "").unwrap_or_else(|e| e.code);
        let names = "../x .. a/../../etc A a//b a- _a a%2F a..b a___b";
        for path in std::iter::once("tags/list".to_string())
            .chain(names.split(' ').map(|n| format!("{n}/tags/list")))
        {
            assert_eq!(code(&path), "NAME_INVALID", "{path}");
        }
        assert_eq!(code("a/blobs/sha256:00"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/md5:00"), "DIGEST_INVALID");
        assert_eq!(code("a/manifests/.hidden"), "MANIFEST_INVALID");
        assert_eq!(code(&format!("a/manifests/{}", "t".repeat(129))), "MANIFEST_INVALID");
        assert_eq!(code("a/b"), "UNSUPPORTED");
        assert_eq!(code("a__b/c--d/e.f_g/tags/list"), "");
    }

    #[test]
    fn paginates_after_last() {
        let tags: Vec<String> = ["1.0.0", "1.1.0", "2.0.0"].map(String::from).to_vec();
        assert_eq!(paginate(tags.clone(), None, None), (tags.clone(), false));
        assert_eq!(paginate(tags.clone(), Some(2), None), (tags[..2].to_vec(), true));
        assert_eq!(paginate(tags.clone(), Some(2), Some("1.1.0")), (tags[2..].to_vec(), false));
        assert_eq!(paginate(tags, Some(0), None), (Vec::new(), true));
    }

    #[test]
    fn reads_content_range_starts() {
        assert_eq!(range_start("0-1023"), Some(0));
        assert_eq!(range_start("bytes 1024-2047"), Some(1024));
        assert_eq!(range_start("5-1"), None);
        assert_eq!(range_start("x-1"), None);
    }
}
