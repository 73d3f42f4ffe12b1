//! HTTP plumbing shared by the registry client, discovery and the token flow: one configured
//! `reqwest` client, requests that can be sent again (retries, authentication), backoff on
//! 429, 5xx and broken connections for idempotent requests, and errors that say what failed.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use indicatif::ProgressBar;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

/// Connecting takes a few round trips at most; a registry that needs longer is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a response may stall between two reads, which bounds blob transfers of any size.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole exchange for small documents: manifests, tag lists, tokens, metadata.
pub const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_REDIRECTS: usize = 10;
/// Attempts for an idempotent request, the first included.
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A `Retry-After` longer than this is not worth waiting for inside one command.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The HTTP client every registry request goes through.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("cargo-wreg/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .context("failed to set up the HTTP client")
}

/// A request kept in parts, so that it can be sent again after a challenge or a failure.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// A limit on the whole exchange; blob transfers have none and rely on the read timeout.
    pub timeout: Option<Duration>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        let timeout = Some(DOCUMENT_TIMEOUT);
        Self { method, url, headers: HeaderMap::new(), body: None, timeout }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Result<Self> {
        let value = HeaderValue::from_str(value)
            .with_context(|| format!("invalid value for HTTP header `{name}`"))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    pub fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// For blob transfers, whose duration grows with their size.
    pub fn streaming(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// GET, HEAD and PUT may be repeated without changing the outcome; POST and PATCH may not
    /// (an upload session or a chunk would be consumed twice).
    fn idempotent(&self) -> bool {
        matches!(self.method, Method::GET | Method::HEAD | Method::PUT)
    }
}

/// Sends `request` with `auth` as its `Authorization` header, retrying idempotent requests
/// with exponential backoff when the registry is overloaded or the connection breaks.
pub async fn send(
    http: &reqwest::Client,
    request: &Request,
    auth: Option<&HeaderValue>,
) -> Result<Response> {
    let mut attempt = 1;
    loop {
        let retryable = request.idempotent() && attempt < MAX_ATTEMPTS;
        tracing::debug!("{} {}", request.method, request.url);
        match http.execute(build(http, request, auth)?).await {
            Ok(response) if retryable && should_retry(response.status()) => {
                let wait = retry_after(response.headers()).unwrap_or_else(|| backoff(attempt));
                tracing::debug!(
                    "{} answered {}; retrying in {wait:?}",
                    request.url,
                    response.status()
                );
                tokio::time::sleep(wait).await;
            }
            Ok(response) => return Ok(response),
            Err(err) if retryable && transient(&err) => {
                let wait = backoff(attempt);
                tracing::debug!(
                    "{} {} failed ({err}); retrying in {wait:?}",
                    request.method,
                    request.url
                );
                tokio::time::sleep(wait).await;
            }
            Err(err) => return Err(describe(err, request)),
        }
        attempt += 1;
    }
}

fn build(
    http: &reqwest::Client,
    request: &Request,
    auth: Option<&HeaderValue>,
) -> Result<reqwest::Request> {
    let mut builder = http.request(request.method.clone(), request.url.clone());
    builder = builder.headers(request.headers.clone());
    if let Some(auth) = auth {
        let mut auth = auth.clone();
        auth.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    } else if matches!(request.method, Method::POST | Method::PUT | Method::PATCH) {
        builder = builder.header(header::CONTENT_LENGTH, 0);
    }
    if let Some(timeout) = request.timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().context("failed to build the HTTP request")
}

fn should_retry(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Resets, timeouts and broken responses may pass; a refused connection or a redirect loop
/// will not, and retrying them only delays the error.
fn transient(err: &reqwest::Error) -> bool {
    if err.is_redirect() || err.is_builder() || refused(err) {
        return false;
    }
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
}

fn refused(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// 250 ms, 500 ms, 1 s, ... with up to a quarter added, so that clients that failed together
/// do not come back together.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF * 2u32.saturating_pow(attempt - 1);
    let nanos =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base + base / 4 * (nanos % 1000) / 1000
}

/// A `Retry-After` given in seconds.
// TODO: honour `Retry-After` as an HTTP date too; registries rarely send it, backoff applies.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = header_str(headers, header::RETRY_AFTER)?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// Turns a transport failure into an error that says what the user can check.
fn describe(err: reqwest::Error, request: &Request) -> anyhow::Error {
    let host = request.url.host_str().unwrap_or_default();
    let host = match request.url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let reason = if err.is_redirect() {
        format!(
            "`{host}` redirected more than {MAX_REDIRECTS} times (a redirect loop?) for {} {}",
            request.method, request.url
        )
    } else if err.is_connect() {
        format!("could not connect to `{host}`; is the registry running and reachable?")
    } else if err.is_timeout() {
        format!("`{host}` did not answer in time")
    } else {
        format!("{} {} failed", request.method, request.url)
    };
    anyhow::Error::new(err).context(reason)
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(
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

pub fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

/// Whether a response is a web page rather than the JSON an API would send.
pub fn is_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let html =
        header_str(headers, header::CONTENT_TYPE).is_some_and(|ct| ct.starts_with("text/html"));
    html || body.trim_ascii_start().starts_with(b"<")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{any, get};

    use super::*;

    async fn serve(router: Router) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn get_request(url: &str) -> Request {
        Request::new(Method::GET, url.parse().unwrap())
    }

    #[tokio::test]
    async fn overloaded_registries_are_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let flaky = move || async move {
            match counter.fetch_add(1, Ordering::SeqCst) {
                0 => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "0")]).into_response(),
                1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                _ => "ok".into_response(),
            }
        };
        let base = serve(Router::new().route("/x", any(flaky))).await;
        let http = http_client().unwrap();
        let response = send(&http, &get_request(&format!("{base}/x")), None).await.unwrap();
        assert_eq!((response.status(), calls.load(Ordering::SeqCst)), (StatusCode::OK, 3));

        let post = Request { method: Method::POST, ..get_request(&format!("{base}/x")) };
        calls.store(1, Ordering::SeqCst);
        let response = send(&http, &post, None).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "POST is not repeated");
    }

    #[tokio::test]
    async fn redirect_loops_are_named() {
        let base =
            serve(Router::new().route("/loop", get(|| async { Redirect::temporary("/loop") })))
                .await;
        let http = http_client().unwrap();
        let err = send(&http, &get_request(&format!("{base}/loop")), None).await.unwrap_err();
        assert!(format!("{err:#}").contains("redirect loop"), "{err:#}");
    }

    #[test]
    fn backoff_grows() {
        assert!(backoff(1) >= FIRST_BACKOFF && backoff(1) < FIRST_BACKOFF * 2);
        assert!(backoff(3) >= FIRST_BACKOFF * 4);
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }
}
