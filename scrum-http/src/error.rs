//! [`ApiError`]: every refusal the API sends, as `{"error":{"code","message"}}`.
//!
//! Engine errors are mapped here once, by [`ErrorKind`]; handlers never build status
//! codes themselves.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scrum_core::{Error, ErrorKind};

use crate::wire::{ErrorBody, ErrorDetail};

/// An HTTP error answer: a status, a stable machine-readable `code` and a message
/// for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code clients branch on (see [`codes`]).
    pub code: &'static str,
    /// What went wrong, for people. Never contains secrets.
    pub message: String,
    /// Sent as `Retry-After` with 429 and 503.
    pub retry_after: Option<Duration>,
}

/// The `code` values the API sends.
pub mod codes {
    /// The body is not JSON (400).
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// The query string does not parse, or names a parameter the endpoint does not
    /// take (400).
    pub const INVALID_QUERY: &str = "invalid_query";
    /// A path segment does not parse, such as a number that is not one (400).
    pub const INVALID_PATH: &str = "invalid_path";
    /// Any other request the server cannot read (400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// A field is missing, has the wrong type or an invalid value (422).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// No credentials, or wrong ones (401).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The caller's address may not call this endpoint (403).
    pub const FORBIDDEN: &str = "forbidden";
    /// No such task, issue, worker or route (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The route exists, the method does not (405).
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The caller does not hold the task's current lease (409).
    pub const LEASE_LOST: &str = "lease_lost";
    /// The task is not in a state the action applies to (409).
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    /// Another process holds what this call needs (409).
    pub const CONFLICT: &str = "conflict";
    /// The body is larger than the configured limit (413).
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// Slow down (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The store is unavailable or timed out; retry (503).
    pub const UNAVAILABLE: &str = "unavailable";
    /// A bug on the server (500).
    pub const INTERNAL: &str = "internal";

    /// The code of a refusal known only by its status (one axum made itself).
    pub fn for_status(status: super::StatusCode) -> &'static str {
        match status.as_u16() {
            401 => UNAUTHORIZED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            405 => METHOD_NOT_ALLOWED,
            409 => CONFLICT,
            413 => PAYLOAD_TOO_LARGE,
            422 => INVALID_REQUEST,
            429 => RATE_LIMITED,
            503 => UNAVAILABLE,
            s if s >= 500 => INTERNAL,
            _ => BAD_REQUEST,
        }
    }
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `422 invalid_request`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_REQUEST,
            message,
        )
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    /// `409 lease_lost`.
    pub fn lease_lost(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, codes::LEASE_LOST, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let (status, code) = match e.kind() {
            ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_REQUEST),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ErrorKind::LeaseLost => (StatusCode::CONFLICT, codes::LEASE_LOST),
            ErrorKind::InvalidTransition => (StatusCode::CONFLICT, codes::INVALID_TRANSITION),
            ErrorKind::Conflict => (StatusCode::CONFLICT, codes::CONFLICT),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
            ErrorKind::Unavailable | ErrorKind::Timeout => {
                (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail goes to the log, not to the caller.
            tracing::error!(error = %e, "internal error answering a request");
            "internal error; see the orchestrator's log".to_string()
        } else {
            e.message().to_string()
        };
        let retry_after = e.retry_after().or_else(|| {
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(Duration::from_secs(1))
        });
        ApiError {
            status,
            code,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scrum-orchestrator\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_client_statuses() {
        let cases = [
            (Error::invalid("x"), 422, codes::INVALID_REQUEST),
            (Error::not_found("x"), 404, codes::NOT_FOUND),
            (
                Error::new(ErrorKind::LeaseLost, "x"),
                409,
                codes::LEASE_LOST,
            ),
            (
                Error::new(ErrorKind::InvalidTransition, "x"),
                409,
                codes::INVALID_TRANSITION,
            ),
            (Error::unavailable("x"), 503, codes::UNAVAILABLE),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!((a.status.as_u16(), a.code), (status, code));
        }
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let a = ApiError::from(Error::new(ErrorKind::Corrupt, "row 7 of /var/lib/x.db"));
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!a.message.contains("/var/lib"));
    }
}
