//! The HTTP side of the embedded registry: checks who may do what, runs each request
//! against the storage and answers as the OCI distribution spec says, errors included.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::json;
use tokio_util::io::ReaderStream;

use super::auth::{Action, Auth, Denial, Identity, Refusal};
use super::endpoint::{Endpoint, parse_digest};
use super::error::ApiError;
use super::storage::{Reference, Storage, StoreError};
use crate::digest::Digest;
use crate::oci::names::is_repository;

pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

/// Why a request gets a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// No credentials, or an anonymous session token, where an identity is needed.
    Required,
    /// Credentials that match no token.
    InvalidCredentials,
    /// A session token lacking a scope its owner could get: ask for a new token.
    InsufficientScope,
}
/// The `service` named in challenges and expected by the token endpoint.
const SERVICE: &str = "cargo-wreg";

/// Blobs are streamed in reads of this size: few system calls, little memory per download.
const READ_CHUNK: usize = 256 * 1024;

/// Everything a request handler needs: the storage, the access rules and the limits.
pub struct App {
    pub storage: Storage,
    /// `None` when the server runs open, without an auth file.
    pub auth: Option<Auth>,
    pub max_manifest_size: u64,
    pub max_blob_size: u64,
    /// `http` or `https`, for the token realm.
    pub scheme: &'static str,
}

impl App {
    /// Who sent a request; invalid credentials are refused.
    fn identify(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        let Some(auth) = &self.auth else {
            return Ok(Identity::Open);
        };
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        auth.authenticate(authorization)
            .map_err(|_| self.unauthorized(headers, None, Challenge::InvalidCredentials))
    }

    /// Checks that `identity` may do `action` on `repository`.
    fn require(
        &self,
        identity: &Identity,
        headers: &HeaderMap,
        repository: &str,
        action: Action,
    ) -> Result<(), ApiError> {
        let (actions, verb) = match action {
            Action::Pull => ("pull", "pull from"),
            Action::Push => ("pull,push", "push to"),
        };
        let scope = || Some(format!("repository:{repository}:{actions}"));
        match Auth::authorize(identity, repository, action) {
            Ok(()) => Ok(()),
            // Authorization is asked of valid identities only: this one is anonymous.
            Err(Denial::Unauthenticated) => {
                Err(self.unauthorized(headers, scope(), Challenge::Required))
            }
            Err(Denial::InsufficientScope) => {
                Err(self.unauthorized(headers, scope(), Challenge::InsufficientScope))
            }
            Err(Denial::Denied) => {
                let message = format!("the token may not {verb} `{repository}`");
                Err(ApiError::new(StatusCode::FORBIDDEN, "DENIED", message))
            }
        }
    }

    /// A 401 with the challenge that leads a client to the token endpoint for `scope`.
    fn unauthorized(&self, headers: &HeaderMap, scope: Option<String>, why: Challenge) -> ApiError {
        let insufficient = why == Challenge::InsufficientScope;
        let message = match why {
            Challenge::InsufficientScope => "the token does not cover this request",
            Challenge::InvalidCredentials => "invalid credentials",
            Challenge::Required => "authentication required",
        };
        let mut challenge =
            format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", self.realm(headers));
        if let Some(scope) = scope {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        if insufficient {
            challenge.push_str(",error=\"insufficient_scope\"");
        }
        let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        err.challenge = Some(challenge);
        err
    }

    /// The token endpoint's URL, on the host the client used to reach this server.
    fn realm(&self, headers: &HeaderMap) -> String {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        // The host goes into a quoted header value: accept only what a host:port may hold.
        let valid = |h: &&str| {
            !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        };
        format!("{}://{}/token", self.scheme, host.filter(valid).unwrap_or("localhost"))
    }
}

/// Closes the connection after an error answered to a request with a body, which may still
/// be partly unread: a client must not send its next request on that connection.
pub async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || content_length(headers).is_some_and(|length| length > 0);
    let mut response = next.run(request).await;
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if has_body && failed {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `GET /v2/`: tells clients this is a registry, and whether they need a token for it.
/// Anonymous clients get a challenge even with `--public-read`: docker-style clients only
/// authenticate where this first request challenged them, and would otherwise never push.
pub async fn api_version(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match app.identify(&headers) {
        Ok(identity) if !identity.is_anonymous() => Json(json!({})).into_response(),
        Ok(_) => app.unauthorized(&headers, None, Challenge::Required).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `GET /healthz`: the server is up and answering.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /token`: exchanges a long-lived token (as Basic password or Bearer) for a session
/// token covering the requested `scope`s, as the docker token protocol describes.
// TODO: `POST /token` (OAuth2 refresh tokens), used by `docker login` with identity tokens.
pub async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let Some(auth) = &app.auth else {
        // An open server never sends a challenge; a client that asks anyway needs no token.
        return Json(json!({"token": "open", "access_token": "open"})).into_response();
    };
    let scopes: Vec<&str> = params
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' '))
        .collect();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let identity = auth.authenticate(authorization).map_err(|_| Refusal::Unauthenticated);
    match identity.and_then(|identity| auth.issue(identity, &scopes)) {
        Ok(issued) => Json(json!({
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
        }))
        .into_response(),
        Err(Refusal::Busy) => {
            let message = "too many active sessions; try again later";
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message).into_response()
        }
        Err(Refusal::Unauthenticated) => {
            let message = "invalid or missing credentials";
            let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
            err.challenge = Some(format!("Basic realm=\"{SERVICE}\""));
            err.into_response()
        }
    }
}

/// `GET /v2/_catalog`: the repositories the caller may pull, paginated.
pub async fn catalog(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    list_repositories(&app, &headers, &query).await.unwrap_or_else(IntoResponse::into_response)
}

async fn list_repositories(
    app: &App,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let identity = app.identify(headers)?;
    if matches!(identity, Identity::Anonymous { public_read: false }) {
        let scope = Some("registry:catalog:*".to_string());
        return Err(app.unauthorized(headers, scope, Challenge::Required));
    }
    let mut names = app.storage.repositories().await?;
    names.retain(|name| identity.may_list(name));
    let n = page_size(query)?;
    let (page, more) = paginate(names, n, query.get("last").map(String::as_str));
    let link = next_link("/v2/_catalog", more, n, page.last())?;
    Ok(with_link(Json(json!({ "repositories": page })).into_response(), link))
}

/// Every request under `/v2/<path>`.
pub async fn dispatch(
    State(app): State<Arc<App>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = Incoming { method, query, headers, body };
    run(&app, &path, request).await.unwrap_or_else(IntoResponse::into_response)
}

/// The parts of a request a registry endpoint looks at.
struct Incoming {
    method: Method,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
}

async fn run(app: &App, path: &str, request: Incoming) -> Result<Response, ApiError> {
    let endpoint = Endpoint::parse(path)?;
    let action = required_action(&request.method, &endpoint)?;
    let identity = app.identify(&request.headers)?;
    app.require(&identity, &request.headers, endpoint.name(), action)?;
    handle(app, &identity, endpoint, request).await
}

/// What a request needs to be allowed to do; methods an endpoint lacks are refused first.
fn required_action(method: &Method, endpoint: &Endpoint) -> Result<Action, ApiError> {
    use Endpoint as E;
    match (method, endpoint) {
        (&Method::GET | &Method::HEAD, E::Blob { .. } | E::Manifest { .. } | E::Tags { .. }) => {
            Ok(Action::Pull)
        }
        (&Method::POST, E::Uploads { .. })
        | (&Method::GET | &Method::PATCH | &Method::PUT | &Method::DELETE, E::Upload { .. })
        | (&Method::PUT, E::Manifest { .. }) => Ok(Action::Push),
        (method, _) => Err(unsupported(method)),
    }
}

async fn handle(
    app: &App,
    identity: &Identity,
    endpoint: Endpoint,
    request: Incoming,
) -> Result<Response, ApiError> {
    use Endpoint as E;
    let Incoming { method, query, headers, body } = request;
    let storage = &app.storage;
    // HEAD shares the GET handlers: axum drops the body and keeps the headers.
    match (method, endpoint) {
        (Method::GET | Method::HEAD, E::Blob { name, digest }) => {
            get_blob(storage, &name, &digest).await
        }
        (Method::POST, E::Uploads { name }) => {
            check_blob_length(app, &headers)?;
            start_upload(storage, identity, &name, &query, body).await
        }
        (Method::GET, E::Upload { name, id }) => upload_status(storage, &name, &id).await,
        (Method::PATCH, E::Upload { name, id }) => {
            check_blob_length(app, &headers)?;
            patch_upload(storage, &name, &id, &headers, body).await
        }
        (Method::PUT, E::Upload { name, id }) => {
            check_blob_length(app, &headers)?;
            put_upload(storage, &name, &id, &query, body).await
        }
        (Method::DELETE, E::Upload { id, .. }) => {
            storage.cancel_upload(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::GET | Method::HEAD, E::Manifest { name, reference }) => {
            get_manifest(storage, &name, &reference).await
        }
        (Method::PUT, E::Manifest { name, reference }) => {
            put_manifest(app, &name, &reference, &headers, body).await
        }
        (Method::GET, E::Tags { name }) => list_tags(storage, &name, &query).await,
        (method, _) => Err(unsupported(&method)),
    }
}

fn unsupported(method: &Method) -> ApiError {
    let message = format!("`{method}` is not supported on this endpoint");
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
}

/// Refuses a blob body whose declared length is over the limit before reading any of it.
fn check_blob_length(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match content_length(headers) {
        Some(length) if length > app.max_blob_size => {
            Err(ApiError::too_large("blob", app.max_blob_size))
        }
        _ => Ok(()),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

async fn get_blob(storage: &Storage, name: &str, digest: &Digest) -> Result<Response, ApiError> {
    let Some((file, size)) = storage.open_blob(name, digest).await? else {
        let message = format!("blob `{digest}` not found in `{name}`");
        return Err(ApiError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", message));
    };
    let headers = [
        (header::CONTENT_LENGTH, size.to_string()),
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (CONTENT_DIGEST, digest.to_string()),
    ];
    let stream = ReaderStream::with_capacity(file, READ_CHUNK);
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// `POST .../blobs/uploads/`: mounts a blob from another repository the caller may read,
/// takes a whole blob at once (`?digest=`), or starts an upload session.
async fn start_upload(
    storage: &Storage,
    identity: &Identity,
    name: &str,
    query: &HashMap<String, String>,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(digest) = query.get("mount").and_then(|d| d.parse::<Digest>().ok())
        && let Some(from) = query.get("from").filter(|from| is_repository(from))
        && identity.may(from, Action::Pull)
        && storage.mount_blob(name, from, &digest).await?
    {
        return Ok(blob_created(name, &digest));
    }
    let digest = query.get("digest").map(|d| parse_digest(d)).transpose()?;
    let id = storage.start_upload().await?;
    match digest {
        Some(digest) => {
            storage.finish_upload(name, &id, &digest, body.into_data_stream()).await?;
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
            ApiError::bad_request("BLOB_UPLOAD_INVALID", message)
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
        return Err(ApiError::bad_request("DIGEST_INVALID", message));
    };
    let digest = parse_digest(digest)?;
    storage.finish_upload(name, id, &digest, body.into_data_stream()).await?;
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
    app: &App,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = app.max_manifest_size;
    if content_length(headers).is_some_and(|length| length > limit) {
        return Err(ApiError::too_large("manifest", limit));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let content = read_limited(body, limit).await?;
    let digest = app.storage.put_manifest(name, reference, content_type, content).await?;
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
    let n = page_size(query)?;
    let (page, more) = paginate(tags, n, query.get("last").map(String::as_str));
    let link = next_link(&format!("/v2/{name}/tags/list"), more, n, page.last())?;
    Ok(with_link(Json(json!({ "name": name, "tags": page })).into_response(), link))
}

fn page_size(query: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    query.get("n").map(|n| n.parse::<usize>()).transpose().map_err(|_| {
        ApiError::bad_request("PAGINATION_NUMBER_INVALID", "`n` must be a non-negative number")
    })
}

/// The tags or names after `last`, at most `n` of them, and whether more follow.
fn paginate(items: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut page: Vec<String> =
        items.into_iter().filter(|item| last.is_none_or(|last| item.as_str() > last)).collect();
    let Some(n) = n else {
        return (page, false);
    };
    let more = page.len() > n;
    page.truncate(n);
    (page, more)
}

/// The `Link` header pointing at the next page, when there is one.
fn next_link(
    path: &str,
    more: bool,
    n: Option<usize>,
    last: Option<&String>,
) -> Result<Option<HeaderValue>, ApiError> {
    let (true, Some(n), Some(last)) = (more, n, last) else {
        return Ok(None);
    };
    let link = format!("<{path}?n={n}&last={last}>; rel=\"next\"");
    Ok(Some(HeaderValue::try_from(link).map_err(|err| StoreError::Io(err.into()))?))
}

fn with_link(mut response: Response, link: Option<HeaderValue>) -> Response {
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// The start of a `Content-Range` such as `0-1023` (some clients prefix `bytes `).
fn range_start(value: &str) -> Option<u64> {
    let range = value.trim().trim_start_matches("bytes ").trim_start_matches("bytes=");
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
    (start <= end).then_some(start)
}

/// Reads a manifest body, refusing it as soon as it passes `limit` bytes.
async fn read_limited(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut content = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::bad_request(
                "MANIFEST_INVALID",
                format!("failed to receive the manifest: {err}"),
            )
        })?;
        if (content.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::too_large("manifest", limit));
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
