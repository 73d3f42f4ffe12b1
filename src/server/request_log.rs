//! One log line per request: method, path, status, bytes sent and received, and duration.
//! The line is written when the response body is done, so the figures cover the transfer.
//! Headers are never logged: they may carry tokens.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::routes::API_VERSION;

/// The tracing target of request lines, which `registry serve` shows at info level.
pub const TARGET: &str = "cargo_wreg::request";

/// Logs each request and marks every response as a distribution API one.
pub async fn log_request(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let received = Arc::new(AtomicU64::new(0));
    let request = request.map(|body| Body::new(Metered::new(body, received.clone(), None)));

    let mut response = next.run(request).await;
    response.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    let status = response.status().as_u16();
    let line = Line { method, path, status, start, received, sent: Arc::default() };
    response.map(|body| Body::new(Metered::new(body, line.sent.clone(), Some(line))))
}

/// A request's figures, logged when dropped together with the response body.
struct Line {
    method: Method,
    path: String,
    status: u16,
    start: Instant,
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl Drop for Line {
    fn drop(&mut self) {
        let duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: TARGET,
            method = %self.method,
            path = %self.path,
            status = self.status,
            bytes = self.sent.load(Ordering::Relaxed),
            received = self.received.load(Ordering::Relaxed),
            duration_ms = (duration_ms * 1000.0).round() / 1000.0,
            "request"
        );
    }
}

/// A body that counts the bytes passing through it.
struct Metered {
    inner: Body,
    bytes: Arc<AtomicU64>,
    _line: Option<Line>,
}

impl Metered {
    fn new(inner: Body, bytes: Arc<AtomicU64>, line: Option<Line>) -> Self {
        Self { inner, bytes, _line: line }
    }
}

impl HttpBody for Metered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
