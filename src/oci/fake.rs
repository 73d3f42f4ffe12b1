//! A registry for the client's tests, with the behaviours real ones have and the embedded
//! server lacks: Basic and Bearer authentication with a token service, tokens that expire,
//! refused pushes, upload size limits, a chunk minimum, cross-repository mounts and blob
//! redirects to storage on another host. Every request is logged for assertions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::digest::Digest;

#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Basic,
    /// Tokens from `/token`; anonymous ones allow pulls only.
    Bearer,
}

pub const USER: &str = "user";
pub const PASSWORD: &str = "s3cret-password";

/// How the fake behaves; set before serving.
#[derive(Clone, Default)]
pub struct Behaviour {
    pub auth: Auth,
    /// Answer 403 to every write.
    pub forbid_push: bool,
    /// Refuse upload bodies larger than this with 413.
    pub max_body: Option<usize>,
    /// Ask for chunks of at least this many bytes (`OCI-Chunk-Min-Length`).
    pub min_chunk: Option<usize>,
    /// Serve blobs through a 307 to `http://localhost:<port>/storage/...`.
    pub redirect_blobs: bool,
    /// Claim a wrong `Docker-Content-Digest` for blobs.
    pub lie_about_digests: bool,
}

#[derive(Default)]
struct Store {
    /// Blobs by repository, then digest.
    blobs: HashMap<String, HashMap<String, Bytes>>,
    manifests: HashMap<(String, String), Bytes>,
    uploads: HashMap<usize, (String, Vec<u8>)>,
    /// Valid tokens, and whether they allow pushes.
    tokens: HashMap<String, bool>,
}

#[derive(Clone)]
pub struct Fake {
    behaviour: Behaviour,
    store: Arc<Mutex<Store>>,
    log: Arc<Mutex<Vec<String>>>,
    counter: Arc<AtomicUsize>,
    port: u16,
}

impl Fake {
    /// Serves a fake registry on `127.0.0.1`; returns it and its address.
    pub async fn start(behaviour: Behaviour) -> (Fake, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = Fake {
            behaviour,
            store: Arc::default(),
            log: Arc::default(),
            counter: Arc::default(),
            port,
        };
        let router = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (fake, format!("127.0.0.1:{port}"))
    }

    /// The requests so far, as `METHOD /path?query auth body-length`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log().iter().filter(|line| line.contains(needle)).count()
    }

    /// Forgets every token, as if they had all expired.
    pub fn expire_tokens(&self) {
        self.store.lock().unwrap().tokens.clear();
    }
}

async fn handle(State(fake): State<Fake>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        parts.uri.query().map(|q| url_pairs(q).into_iter().collect()).unwrap_or_default();
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let shown = auth.map_or("none", |a| a.split(' ').next().unwrap_or("?")).to_lowercase();
    let line = format!("{} {} {shown} {}", parts.method, parts.uri, body.len());
    fake.log.lock().unwrap().push(line);

    if let Some(rest) = path.strip_prefix("/storage/") {
        return fake.blob(rest.rsplit_once('/').unwrap_or(("", rest)), false);
    }
    if path == "/token" {
        return fake.token(&parts.headers, &query);
    }
    let Some(api) = path.strip_prefix("/v2/") else { return StatusCode::NOT_FOUND.into_response() };
    let write = !matches!(parts.method, Method::GET | Method::HEAD);
    let repository = repository_of(api);
    if let Some(denied) = fake.authorize(auth, &repository, write) {
        return denied;
    }
    if write && fake.behaviour.forbid_push {
        let body = r#"{"errors":[{"code":"DENIED","message":"access denied"}]}"#;
        return (StatusCode::FORBIDDEN, body).into_response();
    }
    fake.api(&parts.method, api, &repository, &query, &parts.headers, body)
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

/// The repository part of an API path: everything before `/blobs/`, `/manifests/`, `/tags/`.
fn repository_of(api: &str) -> String {
    for marker in ["/blobs/", "/manifests/", "/tags/"] {
        if let Some((repository, _)) = api.split_once(marker) {
            return repository.to_string();
        }
    }
    String::new()
}

impl Fake {
    fn authorize(&self, auth: Option<&str>, repository: &str, write: bool) -> Option<Response> {
        let challenge = match self.behaviour.auth {
            Auth::None => return None,
            Auth::Basic => {
                let expected =
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
                if auth == Some(&format!("Basic {expected}")) {
                    return None;
                }
                r#"Basic realm="fake""#.to_string()
            }
            Auth::Bearer => {
                let token = auth.and_then(|a| a.strip_prefix("Bearer "));
                let store = self.store.lock().unwrap();
                if let Some(push) = token.and_then(|t| store.tokens.get(t))
                    && (*push || !write)
                {
                    return None;
                }
                let actions = if write { "pull,push" } else { "pull" };
                let realm = format!("http://127.0.0.1:{}/token", self.port);
                let scope = format!("repository:{repository}:{actions}");
                format!(r#"Bearer realm="{realm}",service="fake",scope="{scope}""#)
            }
        };
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        Some(
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], body)
                .into_response(),
        )
    }

    fn token(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let valid = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let push = match auth {
            None => false,
            Some(a) if a == format!("Basic {valid}") => true,
            Some(_) => return StatusCode::UNAUTHORIZED.into_response(),
        };
        assert_eq!(query.get("service").map(String::as_str), Some("fake"));
        let token = format!("token-{}", self.counter.fetch_add(1, Ordering::SeqCst));
        self.store.lock().unwrap().tokens.insert(token.clone(), push);
        axum::Json(serde_json::json!({"token": token, "expires_in": 300})).into_response()
    }

    fn api(
        &self,
        method: &Method,
        api: &str,
        repository: &str,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let tail = api.strip_prefix(repository).unwrap_or(api).trim_start_matches('/');
        match (method.as_str(), tail.split_once('/')) {
            ("GET", None) if api.is_empty() => StatusCode::OK.into_response(),
            ("POST", Some(("blobs", "uploads/"))) => self.start_upload(repository, query),
            ("PATCH", Some(("blobs", rest))) => self.patch(repository, rest, headers, body),
            ("PUT", Some(("blobs", rest))) => self.finish(repository, rest, query, body),
            ("GET" | "HEAD", Some(("blobs", digest))) => {
                self.blob((repository, digest), self.behaviour.redirect_blobs)
            }
            ("PUT", Some(("manifests", reference))) => {
                self.put_manifest(repository, reference, body)
            }
            ("GET" | "HEAD", Some(("manifests", reference))) => {
                let store = self.store.lock().unwrap();
                match store.manifests.get(&(repository.to_string(), reference.to_string())) {
                    Some(body) => body.clone().into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    fn start_upload(&self, repository: &str, query: &HashMap<String, String>) -> Response {
        let mut store = self.store.lock().unwrap();
        if let (Some(digest), Some(from)) = (query.get("mount"), query.get("from"))
            && let Some(blob) = store.blobs.get(from).and_then(|b| b.get(digest)).cloned()
        {
            store.blobs.entry(repository.to_string()).or_default().insert(digest.clone(), blob);
            return (StatusCode::CREATED, [("docker-content-digest", digest.clone())])
                .into_response();
        }
        let id = self.counter.fetch_add(1, Ordering::SeqCst);
        store.uploads.insert(id, (repository.to_string(), Vec::new()));
        let location = format!("/v2/{repository}/blobs/uploads/{id}?state=x");
        let mut response = (StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response();
        if let Some(min) = self.behaviour.min_chunk {
            response.headers_mut().insert("oci-chunk-min-length", min.into());
        }
        response
    }

    fn patch(&self, repository: &str, rest: &str, headers: &HeaderMap, body: Bytes) -> Response {
        let mut store = self.store.lock().unwrap();
        let Some((_, data)) = upload_id(rest).and_then(|id| store.uploads.get_mut(&id)) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let range = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let start: Option<usize> = range.split('-').next().and_then(|s| s.parse().ok());
        if start != Some(data.len()) {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        }
        data.extend_from_slice(&body);
        let location = format!("/v2/{repository}/blobs/{rest}");
        (StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response()
    }

    fn finish(
        &self,
        repository: &str,
        rest: &str,
        query: &HashMap<String, String>,
        body: Bytes,
    ) -> Response {
        if self.behaviour.max_body.is_some_and(|max| body.len() > max) {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        let mut store = self.store.lock().unwrap();
        let Some((_, mut data)) = upload_id(rest).and_then(|id| store.uploads.remove(&id)) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        data.extend_from_slice(&body);
        let digest: Digest = query["digest"].parse().unwrap();
        if digest.verify(&data).is_err() {
            return StatusCode::BAD_REQUEST.into_response();
        }
        let blobs = store.blobs.entry(repository.to_string()).or_default();
        blobs.insert(digest.to_string(), Bytes::from(data));
        (StatusCode::CREATED, [("docker-content-digest", digest.to_string())]).into_response()
    }

    fn blob(&self, (repository, digest): (&str, &str), redirect: bool) -> Response {
        let store = self.store.lock().unwrap();
        let Some(blob) = store.blobs.get(repository).and_then(|b| b.get(digest)) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if redirect {
            let target = format!("http://localhost:{}/storage/{repository}/{digest}", self.port);
            return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response();
        }
        let claimed = if self.behaviour.lie_about_digests {
            Digest::of(b"something else").to_string()
        } else {
            digest.to_string()
        };
        ([("docker-content-digest", claimed)], blob.clone()).into_response()
    }

    fn put_manifest(&self, repository: &str, reference: &str, body: Bytes) -> Response {
        let digest = Digest::of(&body).to_string();
        let mut store = self.store.lock().unwrap();
        store.manifests.insert((repository.to_string(), reference.to_string()), body.clone());
        store.manifests.insert((repository.to_string(), digest.clone()), body);
        (StatusCode::CREATED, [("docker-content-digest", digest)]).into_response()
    }
}

fn upload_id(rest: &str) -> Option<usize> {
    rest.strip_prefix("uploads/")?.parse().ok()
}
