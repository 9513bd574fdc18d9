//! Extractors that turn every malformed request into an [`ApiError`] with the
//! API's error body, instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, codes};

/// A JSON body. Read whatever the `Content-Type` (clients written for the Python
/// orchestrator's API are not all careful with it): syntax errors are
/// `400 malformed_json`; a body that is not a JSON object (every request body the
/// API takes is one), missing fields and wrong types `422 invalid_request`; a body
/// over the limit `413 payload_too_large`. Fields the API does not know are
/// ignored.
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
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::MALFORMED_JSON,
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        if !value.is_object() {
            // serde reads a struct from an array too (`[null, null]`): refuse
            // what the OpenAPI document does not allow.
            return Err(ApiError::invalid(format!(
                "the request body must be a JSON object, not {}",
                json_kind(&value)
            )));
        }
        T::deserialize(value)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
    }
}

/// What a JSON value is, for messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A query string: anything that does not parse, and any parameter the route does
/// not take (its type says `deny_unknown_fields`), is `400 invalid_query`.
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

/// Path parameters: a segment that does not parse (a number that is not one) is
/// `400 invalid_path`.
pub(crate) struct PathArgs<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| PathArgs(p))
            .map_err(|r| {
                let code = if r.status().is_server_error() {
                    codes::INTERNAL
                } else {
                    codes::INVALID_PATH
                };
                ApiError::new(r.status(), code, r.body_text())
            })
    }
}
