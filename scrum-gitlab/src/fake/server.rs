//! The fake's request pipeline: git first, then faults, authentication, the rate
//! limit, routing, paging, ETags and the request log.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::routes::{self, Answer, Req};
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

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

/// GitLab's default page size, and its largest.
const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;

/// An answer being built: the fake's own, always whole.
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    /// GitLab's error body: `{"message": …}`.
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, &json!({ "message": message }))
    }

    fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }

    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        r
    }
}

/// Every request lands here.
pub(crate) async fn handle(AxumState(shared): AxumState<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let Some(api_path) = raw_path.strip_prefix("/api/v4/") else {
        if super::git::is_git(&raw_path) {
            return super::git::serve(&shared, &parts, &bytes).await;
        }
        return Reply::error(404, "404 Not Found").into_response();
    };
    let (fault, latency) = {
        let mut st = lock(&shared);
        (st.take_fault(parts.method.as_str(), &raw_path), st.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let if_none_match = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut st = lock(&shared);
    let reply = answer(
        &mut st,
        &parts,
        api_path,
        &bytes,
        fault,
        if_none_match.as_deref(),
    );
    st.log.push(ServedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or(raw_path, |p| p.as_str().to_string()),
        if_none_match,
        status: reply.status,
    });
    reply.into_response()
}

fn answer(
    st: &mut State,
    parts: &http::request::Parts,
    api_path: &str,
    body: &[u8],
    fault: Option<Fault>,
    if_none_match: Option<&str>,
) -> Reply {
    if !authenticated(st, &parts.headers) {
        return Reply::error(401, "401 Unauthorized");
    }
    // The rate limit's window: a minute, counted from its first request.
    let now = now_secs();
    if now >= st.rate.reset {
        st.rate.remaining = st.rate.limit;
        st.rate.reset = now + 60;
    }
    if st.rate.remaining == 0 {
        let wait = st.rate.reset.saturating_sub(now).max(1);
        let mut r = Reply::error(429, "Retry later");
        add_rate_headers(&mut r, st);
        r.set("retry-after", wait.to_string());
        return r;
    }
    st.rate.remaining -= 1;
    let mut reply = match fault {
        Some(Fault::Status(code)) => Reply::error(code, "An internal error happened (injected)"),
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut r = Reply::error(429, "Retry later");
            r.set("retry-after", retry_after_secs.to_string());
            r
        }
        other => {
            let mut r = routed(st, parts, api_path, body, if_none_match);
            match other {
                Some(Fault::LostAnswer) => Reply::error(502, "502 Bad Gateway"),
                Some(Fault::TruncatedJson) => {
                    r.body.truncate(r.body.len() / 2);
                    r
                }
                _ => r,
            }
        }
    };
    add_rate_headers(&mut reply, st);
    reply
}

/// `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`.
fn authenticated(st: &State, headers: &http::HeaderMap) -> bool {
    let private = headers.get("private-token").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    private.or(bearer).is_some_and(|t| t.trim() == st.token)
}

fn routed(
    st: &mut State,
    parts: &http::request::Parts,
    api_path: &str,
    body: &[u8],
    if_none_match: Option<&str>,
) -> Reply {
    let method = parts.method.as_str().to_string();
    if method != "GET" && !st.scopes.iter().any(|s| s == "api") {
        return Reply::json(
            403,
            &json!({
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            }),
        );
    }
    let req = Req {
        method,
        segs: api_path.split('/').map(decode).collect(),
        body: parse_body(body),
        query: parse_query(parts.uri.query().unwrap_or("")),
    };
    let mut reply = match routes::route(st, &req) {
        Err((status, message)) => Reply::error(status, &message),
        Ok(Answer::Json(status, v)) => Reply::json(status, &v),
        Ok(Answer::Text(text)) => Reply {
            status: 200,
            headers: vec![("content-type", "text/plain".into())],
            body: text.into_bytes(),
        },
        Ok(Answer::List(items)) => page(st, parts, &req, items),
    };
    if req.method == "GET" && reply.status == 200 {
        with_etag(&mut reply, if_none_match);
    }
    reply
}

/// One page of `items`, with GitLab's paging headers.
fn page(st: &State, parts: &http::request::Parts, req: &Req, items: Vec<Value>) -> Reply {
    let per_page = req
        .query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page: usize = req
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut r = Reply::json(200, &Value::Array(shown));
    let next = if page < pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    r.set("x-page", page.to_string());
    r.set("x-per-page", per_page.to_string());
    r.set("x-total", total.to_string());
    r.set("x-total-pages", pages.to_string());
    r.set("x-next-page", next);
    r.set("x-prev-page", prev);
    let link = |n: usize, rel: &str| {
        let mut q: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.sort();
        q.push(("page".into(), n.to_string()));
        let q: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::transport::encode(v)))
            .collect();
        format!(
            "<{}{}?{}>; rel=\"{rel}\"",
            st.base_url,
            parts.uri.path(),
            q.join("&")
        )
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(link(page + 1, "next"));
    }
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    links.push(link(1, "first"));
    links.push(link(pages, "last"));
    r.set("link", links.join(", "));
    r
}

/// A weak ETag of the body; a 304 (no body, the paging headers kept) when the
/// client sent it.
fn with_etag(reply: &mut Reply, if_none_match: Option<&str>) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    reply.body.hash(&mut h);
    let etag = format!("W/\"{:016x}\"", h.finish());
    if if_none_match == Some(etag.as_str()) {
        reply.status = 304;
        reply.body.clear();
        reply.headers.retain(|(n, _)| n.starts_with("x-"));
    }
    reply.set("etag", etag);
}

fn add_rate_headers(r: &mut Reply, st: &State) {
    let observed = st.rate.limit.saturating_sub(st.rate.remaining);
    r.set("ratelimit-limit", st.rate.limit.to_string());
    r.set("ratelimit-observed", observed.to_string());
    r.set("ratelimit-remaining", st.rate.remaining.to_string());
    r.set("ratelimit-reset", st.rate.reset.to_string());
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// A JSON body, or a form's fields as a JSON object.
fn parse_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if let Ok(v) = serde_json::from_slice(body) {
        return v;
    }
    let form = parse_query(&String::from_utf8_lossy(body));
    Value::Object(
        form.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// Percent-decoding.
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = (
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        );
        match (bytes[i], pair) {
            (b'%', (Some(a), Some(b))) => {
                out.push(u8::try_from(a * 16 + b).unwrap_or(b'?'));
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
