//! OCI error responses: a status and a body `{"errors":[{"code","message","detail"}]}`, with
//! the Bearer challenge on 401s that tells a client where to get a token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::storage::StoreError;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The `WWW-Authenticate` value of a 401.
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), challenge: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn too_large(what: &str, limit: u64) -> Self {
        let message = format!("{what} exceeds the limit of {limit} bytes");
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = json!({"code": self.code, "message": self.message, "detail": null});
        let mut response = (self.status, Json(json!({ "errors": [error] }))).into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::try_from(c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
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
            StoreError::BodyFailed(_) => (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            StoreError::BlobTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
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
