//! What a route answers: [`Answer`], and the helpers every route builds one with
//! (success, GitHub's error shapes, one page with its `Link` header).

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::json;
use crate::wire::encode_segment;

/// What a route answers, before the server adds rate-limit headers and the ETag.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) link: Option<String>,
    /// Set on a GraphQL answer: what the query cost in GraphQL's budget.
    pub(crate) graphql_points: Option<u64>,
    /// Where a redirect points (`Location`).
    pub(crate) location: Option<String>,
}

/// `200 OK` with `body`.
pub(super) fn ok(body: Value) -> Answer {
    answer(StatusCode::OK, body)
}

/// `status` with `body`, no `Link` header.
pub(super) fn answer(status: StatusCode, body: Value) -> Answer {
    Answer {
        status,
        body,
        link: None,
        graphql_points: None,
        location: None,
    }
}

/// `status` with GitHub's error body carrying `message`.
pub(super) fn fail(status: StatusCode, message: &str) -> Answer {
    answer(status, json::error(message))
}

/// GitHub's `404 Not Found`.
pub(super) fn not_found() -> Answer {
    fail(StatusCode::NOT_FOUND, "Not Found")
}

/// GitHub's `422 Validation Failed`, explained by `message`.
pub(super) fn invalid(message: &str) -> Answer {
    answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "message": "Validation Failed", "errors": [{ "code": "custom", "message": message }],
                "documentation_url": "https://docs.github.com/rest", "status": "422" }),
    )
}

/// The `per_page` (30 unless asked, at most 100) and 1-based `page` asked for.
fn page_params(query: &BTreeMap<String, String>) -> (usize, usize) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// One page of `items`, and the `Link` header GitHub would send with it.
pub(super) fn paged<T>(
    base: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    items: Vec<T>,
    render: impl Fn(T) -> Value,
) -> Answer {
    let (per_page, page) = page_params(query);
    let last = items.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(render)
        .collect();
    let url = |p: usize| {
        let mut q = query.clone();
        q.insert("page".into(), p.to_string());
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v)))
            .collect();
        format!("{base}{path}?{}", qs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    Answer {
        status: StatusCode::OK,
        body: Value::Array(body),
        link: (!links.is_empty()).then(|| links.join(", ")),
        graphql_points: None,
        location: None,
    }
}
