//! Who may call what, and the bookkeeping every response passes through.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::error::{ApiError, codes};

/// The webhook routes, which check a signature (GitHub's) or a secret token
/// (GitLab's) instead of the caller.
const WEBHOOKS: [&str; 2] = ["/webhooks/github", "/webhooks/gitlab"];

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
    let path = req.uri().path().to_string();
    let resp = match admit(&state, req.method(), &path, peer, req.headers()) {
        Ok(()) => {
            let resp = next.run(req).await;
            if crate::ui::is_ui(&path) && resp.status() != StatusCode::METHOD_NOT_ALLOWED {
                resp
            } else {
                as_json(resp).await
            }
        }
        Err(e) if crate::ui::is_ui(&path) => crate::ui::refusal(e, &path),
        Err(e) => e.into_response(),
    };
    if resp.status().is_client_error() || resp.status().is_server_error() {
        state.metrics().http_error(resp.status());
    }
    resp
}

/// Who may call a route when no API token is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Anyone, token or not: `/health` (no issue text) and the webhook (signed).
    Open,
    /// Loopback and `WORKER_IPS`: the work endpoints and every read of tasks or
    /// workers (and any path the API does not have).
    Fleet,
    /// Loopback only: the operator actions and worker hosts' logs (the dashboard's
    /// too).
    Loopback,
}

/// The one place a route is given its [`Rule`].
fn rule(method: &Method, path: &str) -> Rule {
    let read = method == Method::GET || method == Method::HEAD;
    let ui = crate::ui::is_ui(path);
    if path == "/health" || WEBHOOKS.contains(&path) || crate::ui::is_open(path) {
        Rule::Open
    } else if ((path.starts_with("/admin/") || path.starts_with("/pr-review/")) && !read)
        || ((path.starts_with("/workers/") || path.starts_with("/ui/workers/"))
            && path.ends_with("/logs"))
        || (ui && !read)
    {
        Rule::Loopback
    } else {
        Rule::Fleet
    }
}

fn admit(
    state: &ApiState,
    method: &Method,
    path: &str,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let rule = rule(method, path);
    if rule == Rule::Open {
        return Ok(());
    }
    let config = state.config();
    if let Some(token) = &config.token {
        // A dashboard page takes the login cookie as the token.
        if crate::ui::is_ui(path) && crate::ui::auth::has_session(headers, token) {
            return Ok(());
        }
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
    let allowed = match rule {
        Rule::Open => true,
        Rule::Fleet => peer.is_some_and(|p| config.is_worker_address(p)),
        Rule::Loopback => peer.is_some_and(|p| p.is_loopback()),
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(rule, method, path, peer))
    }
}

/// The 403 for a caller `rule` keeps out: what the rule is, and how to get in.
fn forbidden(rule: Rule, method: &Method, path: &str, peer: Option<IpAddr>) -> ApiError {
    let (who, address) = match peer {
        Some(p) => (p.to_string(), p.to_string()),
        None => (
            "an unknown address".to_string(),
            "the caller's address".to_string(),
        ),
    };
    let token = "set an API token on the orchestrator (ORCHESTRATOR_API_TOKEN) and send it as `Authorization: Bearer <token>`";
    let message = match rule {
        Rule::Loopback => format!(
            "{who} may not call {method} {path}: without an API token only loopback may call the operator endpoints; \
             to get in, {token}, or call from the orchestrator's own host"
        ),
        Rule::Open | Rule::Fleet => format!(
            "{who} may not call {method} {path}: without an API token only loopback and the WORKER_IPS addresses may; \
             to get in, {token}, or add {address} to WORKER_IPS"
        ),
    };
    ApiError::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
}

/// Headers a refusal keeps when its body is rewritten.
const KEPT: [header::HeaderName; 3] =
    [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE];

/// Every refusal leaves with the API's JSON error body: one axum made itself (its
/// 405 has an empty body, an extractor's rejection is plain text) is rewritten
/// with the same status, its text as the message, and its `Allow`,
/// `Retry-After` and `WWW-Authenticate` headers.
async fn as_json(resp: Response) -> Response {
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this endpoint does not take that method".to_string(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    let mut out = ApiError::new(status, codes::for_status(status), message).into_response();
    for name in KEPT {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The answer for paths the API does not have.
pub(super) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}", uri.path()))
}
