//! Extractors that turn every malformed request into an [`ApiError`] with the
//! API's error body, instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, codes};

/// A JSON body. Read whatever the `Content-Type` (clients written for the Python
/// orchestrator's API are not all careful with it): syntax errors are
/// `400 malformed_json`, missing fields and wrong types `422 invalid_request`, a body
/// over the limit `413 payload_too_large`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::PAYLOAD_TOO_LARGE,
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::MALFORMED_JSON,
                    format!("could not read the request body: {}", r.body_text()),
                )
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::invalid(format!("invalid request body: {e}")),
                Category::Io | Category::Syntax | Category::Eof => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::MALFORMED_JSON,
                    format!("the request body is not valid JSON: {e}"),
                ),
            }
        })
    }
}

/// A query string: anything that does not parse is `400 invalid_query`.
pub(crate) struct QueryArgs<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryArgs(q))
            .map_err(|r| {
                ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_QUERY, r.body_text())
            })
    }
}
