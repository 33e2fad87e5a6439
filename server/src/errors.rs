//! Every error answer has one shape: `{ "error": "<code>", "message": "..." }`, plus `index`
//! and `key` when one change of a `/sync` batch is the problem, so that a client can set that
//! change aside and send the others.
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mfe_shared_cache_core::{CacheError, ErrorKind};
use serde::Serialize;

use crate::store::StoreError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The position of the offending change in the request's `changes`, when one is.
    pub index: Option<usize>,
    /// Its key, when it has a readable one.
    pub key: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
}

impl ApiError {
    /// An error with its status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), index: None, key: None }
    }

    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413 for a body over the limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 503 for a limit reached (`--max-streams`); the client should retry later.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
    }

    /// Prefixes the message with where in the request the problem is (`changes[3]`).
    pub fn at(mut self, location: &str) -> Self {
        self.message = format!("{location}: {}", self.message);
        self
    }

    /// Names the change at `index` of a `/sync` request (and its key, when readable) as the
    /// problem.
    pub fn at_change(mut self, index: usize, key: Option<String>) -> Self {
        self = self.at(&format!("changes[{index}]"));
        self.index = Some(index);
        self.key = key;
        self
    }

    /// The answer for an invalid write, by the core's error kind.
    pub fn from_cache_error(err: &CacheError) -> Self {
        let code = match err.kind() {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::InvalidTtl => "invalid_ttl",
            _ => "invalid_request",
        };
        Self::bad_request(code, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code, message: &self.message, index: self.index, key: self.key.as_deref() };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The details go to the log; the client only needs to know to retry later.
        tracing::error!(error = %err, "store failure");
        let status = match err {
            StoreError::Unavailable(_) | StoreError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, "storage_error", "the cache store failed; the request was not applied")
    }
}

/// The code for an error status produced outside the handlers (routing, layers).
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    }
}

/// Middleware for `/api`: any error answer that is not already JSON (axum's routing 405, the body
/// limit layer's 413, an extractor's plain-text rejection) is rewritten into the JSON shape,
/// keeping its status and headers (`Allow`, CORS).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let message = status.canonical_reason().unwrap_or("error").to_owned();
    let body = serde_json::to_vec(&ErrorBody { error: code_for(status), message: &message, index: None, key: None })
        .unwrap_or_default();
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
