//! The API accepts exactly what its OpenAPI document allows, and every refusal is
//! the API's JSON error body: one test for each way the two parted (unknown query
//! parameters, a body that is not an object, a path number that does not parse,
//! blank clarification questions, an unbounded long poll), and for axum's own
//! refusals.

mod common;

use std::time::Duration;

use common::{Fixture, LOOPBACK, assert_error, call_raw};
use scrum_core::TaskState;
use scrum_core::engine::EngineConfig;
use scrum_core::state::Policy;
use scrum_http::ApiConfig;
use serde_json::{Value, json};

/// The OpenAPI document the server serves.
async fn document(f: &Fixture) -> Value {
    let (status, doc) = f.get("/openapi.json").await;
    assert_eq!(status, 200);
    doc
}

/// The schema of query parameter `name` of `GET path` in `doc`.
fn query_param<'d>(doc: &'d Value, path: &str, name: &str) -> &'d Value {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{path} documents no {name}"))
}

/// Claims the next task for `worker` and returns the report fields naming it.
async fn claim(f: &Fixture, worker: &str) -> Value {
    let (s, work) = f.get(&format!("/work/next?worker_id={worker}")).await;
    assert_eq!((s.as_u16(), &work["work_available"]), (200, &json!(true)));
    json!({
        "worker_id": worker,
        "issue_number": work["issue_number"],
        "repository": work["repository"],
        "lease_token": work["lease_token"],
    })
}

#[tokio::test]
async fn a_query_parameter_an_endpoint_does_not_take_is_refused() {
    let f = Fixture::new();
    let id = f.queue_issue().await;

    // A typo must not silently change what the worker gets (here: a run-time
    // lease instead of a heartbeat lease).
    let got = f.get("/work/next?worker_id=w&lese=heartbeat").await;
    assert_error(&got, 400, "invalid_query");
    let message = got.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("lese"), "{message}");
    assert_eq!(
        f.task(&id).await.state(),
        TaskState::Pending,
        "a refused claim claims nothing"
    );

    let got = f.get("/queue?limit=5&limt=5").await;
    assert_error(&got, 400, "invalid_query");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("limt"));
    assert_error(
        &f.get("/admin/effects?state=dead&all=1").await,
        400,
        "invalid_query",
    );
    assert_error(
        &f.get("/workers/w/logs?lines=5&follow=1").await,
        400,
        "invalid_query",
    );
    let (s, v) = call_json(&f, "POST", "/pr-review/approved/7?repo=acme/widgets", None).await;
    assert_error(&(s, v), 400, "invalid_query");

    // What they do take still works, and endpoints that take no parameters ignore
    // a query string (a monitor's cache buster).
    assert_eq!(f.get("/queue?limit=5&offset=0").await.0, 200);
    assert_eq!(f.get("/health?_=1712345678").await.0, 200);
    assert_eq!(f.get("/workers?_=1").await.0, 200);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let f = Fixture::new();
    for body in ["[null, null]", "[]", "null", "7", "\"all\""] {
        let got = f.post("/admin/effects/retry", body).await;
        assert_error(&got, 422, "invalid_request");
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object"),
            "{body}: {}",
            got.1
        );
    }
    assert_eq!(f.post("/admin/effects/retry", "{}").await.0, 200);
    // Its fields are absent or values (the document makes neither nullable), and
    // at most one of them; effect ids start at 1.
    for body in [
        r#"{"id": 1, "repository": null}"#,
        r#"{"id": null}"#,
        r#"{"id": 0}"#,
        r#"{"id": 3, "repository": "acme/widgets"}"#,
    ] {
        assert_error(
            &f.post("/admin/effects/retry", body).await,
            422,
            "invalid_request",
        );
    }
    let doc = document(&f).await;
    let retry = &doc["components"]["schemas"]["EffectsRetryRequest"];
    assert_eq!(retry["not"]["required"], json!(["repository", "id"]));
    assert_eq!(retry["properties"]["id"]["minimum"], 1);

    // A report as an array names the same fields serde would read from it: refused,
    // and the task keeps its lease.
    let id = f.queue_issue().await;
    let task = claim(&f, "w").await;
    let as_array = json!([
        task["worker_id"],
        task["issue_number"],
        task["repository"],
        task["lease_token"],
        null,
        true
    ]);
    let got = f.post("/work/complete", &as_array.to_string()).await;
    assert_error(&got, 422, "invalid_request");
    assert_eq!(f.task(&id).await.state(), TaskState::InProgress);
    assert_error(&f.post("/work/complete", "{").await, 400, "malformed_json");
}

#[tokio::test]
async fn a_reported_cost_below_zero_is_refused() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let mut task = claim(&f, "w").await;
    task["error"] = json!("tests failed");
    task["cost_usd"] = json!(-0.5);
    let got = f.post("/work/failed", &task.to_string()).await;
    assert_error(&got, 422, "invalid_request");
    assert_eq!(f.task(&id).await.state(), TaskState::InProgress);
    let doc = document(&f).await;
    for schema in ["CompleteRequest", "FailedRequest", "ClarifyRequest"] {
        let cost = &doc["components"]["schemas"][schema]["properties"]["cost_usd"];
        assert_eq!(
            (&cost["minimum"], &cost["nullable"]),
            (&json!(0), &json!(true)),
            "{schema}"
        );
    }
    task["cost_usd"] = json!(0.5);
    let (s, v) = f.post("/work/failed", &task.to_string()).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_path_segment_that_does_not_parse_is_a_json_400() {
    let f = Fixture::new();
    for path in [
        "/pr-review/approved/seven",
        "/pr-review/merged/-1",
        "/pr-review/approved/99999999999999999999999",
    ] {
        let got = call_json(&f, "POST", path, None).await;
        assert_error(&got, 400, "invalid_path");
    }
    // Not UTF-8 once decoded.
    let got = call_json(&f, "GET", "/workers/%FF/logs", None).await;
    assert_error(&got, 400, "invalid_path");
    // The document bounds the number as the server reads it.
    let doc = document(&f).await;
    let number = doc["paths"]["/pr-review/{state}/{number}"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "number")
        .unwrap();
    assert_eq!(number["schema"]["maximum"], 9_007_199_254_740_991_u64);
}

#[tokio::test]
async fn axums_own_refusals_are_json() {
    let f = Fixture::new();
    for (method, path) in [
        ("GET", "/no/such/route"),
        ("DELETE", "/work/next"),
        ("PUT", "/work/complete"),
        ("POST", "/pr-review/approved/x"),
    ] {
        let (status, headers, body) =
            call_raw(&f.app, method, path, None, Some(LOOPBACK), &[]).await;
        assert!(status.is_client_error(), "{method} {path}: {status}");
        assert_eq!(
            headers["content-type"], "application/json",
            "{method} {path}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
    }
    let (status, headers, _) =
        call_raw(&f.app, "PUT", "/work/complete", None, Some(LOOPBACK), &[]).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test]
async fn every_clarification_question_must_say_something() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let task = claim(&f, "w").await;
    let with = |questions: Value| {
        let mut body = task.clone();
        body["questions"] = questions;
        body.to_string()
    };
    for questions in [
        json!([""]),
        json!(["  \n\t"]),
        json!(["Which page?", "\u{3000}"]),
        json!([]),
    ] {
        let got = f.post("/work/clarify", &with(questions.clone())).await;
        assert_error(&got, 422, "invalid_request");
        assert_eq!(
            f.task(&id).await.state(),
            TaskState::InProgress,
            "{questions} parked the task"
        );
    }
    let (s, v) = f.post("/work/clarify", &with(json!(["Which page?"]))).await;
    assert_eq!((s.as_u16(), &v["state"]), (200, &json!("parked")), "{v}");

    // The document says the same: at least one question, each with a character
    // that is not whitespace.
    let doc = document(&f).await;
    let questions = &doc["components"]["schemas"]["ClarifyRequest"]["properties"]["questions"];
    assert_eq!(questions["minItems"], 1);
    let pattern = questions["items"]["pattern"].as_str().unwrap();
    assert_eq!(excluded_chars(pattern), whitespace());
}

/// The characters a `[^…]` class with single characters and `a-b` ranges leaves
/// out.
fn excluded_chars(pattern: &str) -> Vec<char> {
    let inner = pattern
        .strip_prefix("[^")
        .and_then(|p| p.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a negated class: {pattern:?}"));
    let chars: Vec<char> = inner.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            out.extend(chars[i]..=chars[i + 2]);
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.sort_unstable();
    out
}

/// Every character Rust (and the server's check) calls whitespace.
fn whitespace() -> Vec<char> {
    (0..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
        .collect()
}

#[tokio::test]
async fn wait_is_bounded_by_the_servers_longest_poll() {
    let f = Fixture::new();
    f.queue_issue().await;
    let doc = document(&f).await;
    let wait = query_param(&doc, "/work/next", "wait");
    assert_eq!(wait["maximum"], 30, "the engine's default cap: {wait}");

    let engine = EngineConfig {
        max_wait: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let f = Fixture::with_engine(ApiConfig::default(), Policy::default(), engine);
    let id = f.queue_issue().await;
    let doc = document(&f).await;
    assert_eq!(query_param(&doc, "/work/next", "wait")["maximum"], 2);
    // A client asking for longer than the server will wait learns it at once,
    // instead of waiting past its own timeout for an answer cut short.
    for wait in ["3", "185"] {
        let got = f.get(&format!("/work/next?worker_id=w&wait={wait}")).await;
        assert_error(&got, 422, "invalid_request");
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 2"),
            "{}",
            got.1
        );
    }
    assert_eq!(f.task(&id).await.state(), TaskState::Pending);
    let (s, v) = f.get("/work/next?worker_id=w&wait=2").await;
    assert_eq!((s.as_u16(), &v["work_available"]), (200, &json!(true)));
}

/// One request through the router from loopback, its answer parsed as JSON.
async fn call_json(
    f: &Fixture,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (axum::http::StatusCode, Value) {
    common::call(&f.app, method, path, body, Some(LOOPBACK), &[]).await
}
