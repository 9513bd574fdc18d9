//! Who may call what, and the bookkeeping every response passes through.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::error::{ApiError, codes};
use crate::metrics::Metrics;

/// The webhook route, which checks a signature instead of the caller.
const WEBHOOK: &str = "/webhooks/github";

/// The caller's address, as the guard saw it (`None` without `ConnectInfo`). Handlers
/// read it from the request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub Option<IpAddr>);

/// Checks the caller, runs the handler, and makes sure every error leaves as the
/// API's JSON error body.
pub(super) async fn guard(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    req.extensions_mut().insert(Peer(peer));
    let resp = match admit(&state, req.uri().path(), peer, req.headers()) {
        Ok(()) => {
            let resp = next.run(req).await;
            if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
                method_not_allowed(resp)
            } else {
                resp
            }
        }
        Err(e) => e.into_response(),
    };
    let metrics = state.metrics();
    if resp.status().is_client_error() {
        Metrics::inc(&metrics.client_errors);
    } else if resp.status().is_server_error() {
        Metrics::inc(&metrics.server_errors);
    }
    resp
}

fn admit(
    state: &ApiState,
    path: &str,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    // Open to all: /health says nothing private; webhook deliveries are signed.
    if path == "/health" || path == WEBHOOK {
        return Ok(());
    }
    let config = state.config();
    if let Some(token) = &config.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        return match given {
            Some(t) if token.matches(t.trim()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "the bearer token is not the API token",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "this endpoint needs `Authorization: Bearer <API token>`",
            )),
        };
    }
    let allowed = if path.starts_with("/work/") {
        peer.is_some_and(|p| config.is_worker_address(p))
    } else if is_operator_path(path) {
        peer.is_some_and(|p| p.is_loopback())
    } else {
        true
    };
    if allowed {
        Ok(())
    } else {
        let who = peer.map_or_else(|| "an unknown address".to_string(), |p| p.to_string());
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            format!(
                "{who} may not call {path}: without an API token only loopback{} may",
                if path.starts_with("/work/") {
                    " and WORKER_IPS"
                } else {
                    ""
                }
            ),
        ))
    }
}

/// axum's own 405 has an empty body; keep its `Allow` header, add ours.
fn method_not_allowed(resp: Response) -> Response {
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
    )
    .into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// The answer for paths the API does not have.
pub(super) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}", uri.path()))
}

/// Operator endpoints: the actions, and worker hosts' logs. Without an API token only
/// loopback may call them.
fn is_operator_path(path: &str) -> bool {
    path.starts_with("/admin/") || (path.starts_with("/workers/") && path.ends_with("/logs"))
}
