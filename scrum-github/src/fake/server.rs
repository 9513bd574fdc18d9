//! The fake's request pipeline: faults, authentication, the primary rate limit,
//! routing, ETags and the request log, in GitHub's order.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::answer::Answer;
use super::routes;
use super::state::{Fault, ServedRequest, State};

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Every request lands here; routing happens on the decoded path.
pub(crate) async fn handle(AxumState(shared): AxumState<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 << 20).await.unwrap_or_default();
    if parts.uri.path().starts_with("/git/") {
        return super::git::serve(&shared, &parts, &bytes).await;
    }
    if let Some(id) = parts.uri.path().strip_prefix("/_fake/logs/") {
        return serve_log(&shared, id, parts.uri.path());
    }
    let (fault, latency) = {
        let mut st = lock(&shared);
        (
            st.take_fault(parts.method.as_str(), parts.uri.path()),
            st.latency,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(Fault::Delay(d)) = fault {
        tokio::time::sleep(d).await;
    }
    let if_none_match = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());

    let mut st = lock(&shared);
    let issued = super::app::presented(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .and_then(|t| st.app.as_ref()?.tokens.get(&t).cloned());
    let (mut response, spent) = answer(&mut st, &parts, &bytes, fault, if_none_match.as_deref());
    if let Some(scopes) = st.scopes.as_deref() {
        // A classic token's answers name its scopes (not a refused token's).
        if response.status() != StatusCode::UNAUTHORIZED {
            add_headers(&mut response, &[("x-oauth-scopes", scopes)]);
        }
    }
    st.points_spent += spent.rest;
    st.graphql_points_spent += spent.graphql;
    st.log.push(ServedRequest {
        method: parts.method.to_string(),
        path: path_and_query,
        if_none_match,
        status: response.status().as_u16(),
        points: spent.rest,
        graphql_points: spent.graphql,
        installation: issued.as_ref().map(|t| t.installation),
        token_scope: issued.and_then(|t| t.repositories),
    });
    drop(st);
    super::deliver::flush(&shared);
    response
}

/// A job's log, where GitHub's redirect for it points: stored apart from the API,
/// so it costs no rate-limit point and asks for no token.
fn serve_log(shared: &Shared, id: &str, path: &str) -> Response {
    let mut st = lock(shared);
    let (status, text) = match super::check_routes::log_text(&st, id) {
        Some(text) => (StatusCode::OK, text),
        None => (
            StatusCode::NOT_FOUND,
            "The specified blob does not exist.".to_string(),
        ),
    };
    st.log.push(ServedRequest {
        method: "GET".into(),
        path: path.to_string(),
        if_none_match: None,
        status: status.as_u16(),
        points: 0,
        graphql_points: 0,
        installation: None,
        token_scope: None,
    });
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What one answer cost, in each of GitHub's budgets.
#[derive(Clone, Copy, Default)]
struct Spent {
    rest: u64,
    graphql: u64,
}

impl Spent {
    const NOTHING: Spent = Spent {
        rest: 0,
        graphql: 0,
    };
    const ONE: Spent = Spent {
        rest: 1,
        graphql: 0,
    };
}

fn answer(
    st: &mut State,
    parts: &http::request::Parts,
    body: &[u8],
    fault: Option<Fault>,
    if_none_match: Option<&str>,
) -> (Response, Spent) {
    let now = now_ms();
    let now_secs = u64::try_from(now / 1000).unwrap_or(0);
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                json_response(status, &super::json::error("Server Error"), &[]),
                Spent::NOTHING,
            );
        }
        Some(Fault::SecondaryRateLimit { retry_after_secs }) => {
            let body = super::json::error(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            let retry = retry_after_secs.to_string();
            return (
                json_response(StatusCode::FORBIDDEN, &body, &[("retry-after", &retry)]),
                Spent::NOTHING,
            );
        }
        _ => {}
    }

    let (path, query) = (parts.uri.path(), parts.uri.query());
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| routes::decode(s, false))
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let credential = super::app::presented(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    if let Err((status, message)) = super::app::authenticate(st, credential.as_deref(), &seg, now) {
        return (
            json_response(status, &super::json::error(message), &[]),
            Spent::NOTHING,
        );
    }

    if now_secs >= st.rate.reset {
        st.rate.remaining = st.rate.limit;
        st.rate.reset = now_secs + st.rate.window.as_secs();
    }
    let rate_headers = |st: &State| {
        vec![
            ("x-ratelimit-limit", st.rate.limit.to_string()),
            ("x-ratelimit-remaining", st.rate.remaining.to_string()),
            (
                "x-ratelimit-used",
                (st.rate.limit - st.rate.remaining).to_string(),
            ),
            ("x-ratelimit-reset", st.rate.reset.to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ]
    };
    if st.rate.remaining == 0 && parts.uri.path() != "/graphql" {
        let h = rate_headers(st);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = super::json::error("API rate limit exceeded for user ID 1.");
        return (
            json_response(StatusCode::FORBIDDEN, &body, &h),
            Spent::NOTHING,
        );
    }

    let query = routes::parse_query(query);
    if parts.method != Method::GET {
        if let ["repos", o, r, ..] = segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            if st.repo(&format!("{o}/{r}")).is_some_and(|r| r.read_only) {
                // What GitHub answers a token that may read a repository but not write.
                let body = super::json::error("Resource not accessible by personal access token");
                return (
                    json_response(
                        StatusCode::FORBIDDEN,
                        &body,
                        &rate_headers(st)
                            .iter()
                            .map(|(k, v)| (*k, v.as_str()))
                            .collect::<Vec<_>>(),
                    ),
                    Spent::ONE,
                );
            }
        }
    }
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                let body = super::json::error("Problems parsing JSON");
                return (
                    json_response(StatusCode::BAD_REQUEST, &body, &[]),
                    Spent::ONE,
                );
            }
        }
    };
    let Answer {
        status,
        body,
        link,
        graphql_points,
        location,
    } = match super::app::route(st, &parts.method, &seg, &json_body, now) {
        Some(answer) => answer,
        None => routes::route(
            st,
            &parts.method,
            &segments,
            &query,
            &json_body,
            scrum_core::Timestamp(now),
        ),
    };

    if matches!(fault, Some(Fault::LostAnswer)) {
        // The write happened; the client never hears of it.
        st.rate.remaining -= 1;
        let body = super::json::error("Server Error");
        return (
            json_response(StatusCode::BAD_GATEWAY, &body, &[]),
            Spent::ONE,
        );
    }
    if let Some(cost) = graphql_points {
        // GraphQL has a budget of its own, and its answers no ETag.
        let spent = st.graphql_points_spent + cost;
        let h = [
            ("x-ratelimit-limit", "5000".to_string()),
            (
                "x-ratelimit-remaining",
                5000u64.saturating_sub(spent).to_string(),
            ),
            ("x-ratelimit-used", spent.to_string()),
            ("x-ratelimit-reset", st.rate.reset.to_string()),
            ("x-ratelimit-resource", "graphql".to_string()),
        ];
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let spent = Spent {
            rest: 0,
            graphql: cost,
        };
        return (json_response(status, &body, &h), spent);
    }
    let text = body.to_string();
    let etag = format!("W/\"{}\"", hex(&Sha256::digest(text.as_bytes())[..16]));
    let is_get = parts.method == Method::GET && status == StatusCode::OK;
    if is_get && if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        // GitHub does not count a 304 against the rate limit.
        let mut h = rate_headers(st);
        h.push(("etag", etag));
        if let Some(l) = link {
            h.push(("link", l));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return (empty_response(StatusCode::NOT_MODIFIED, &h), Spent::NOTHING);
    }
    st.rate.remaining -= 1;
    let mut h = rate_headers(st);
    if is_get {
        h.push(("etag", etag));
    }
    if let Some(l) = link {
        h.push(("link", l));
    }
    if let Some(l) = location {
        h.push(("location", l));
    }
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut text = text;
    if matches!(fault, Some(Fault::TruncatedJson)) {
        text.truncate(text.len() / 2);
    }
    (text_response(status, text, &h), Spent::ONE)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_response(status: StatusCode, body: &Value, headers: &[(&str, &str)]) -> Response {
    text_response(status, body.to_string(), headers)
}

fn text_response(status: StatusCode, body: String, headers: &[(&str, &str)]) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    add_headers(&mut r, headers);
    r
}

fn empty_response(status: StatusCode, headers: &[(&str, &str)]) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    add_headers(&mut r, headers);
    r
}

fn add_headers(r: &mut Response, headers: &[(&str, &str)]) {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
}
