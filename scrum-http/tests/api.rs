//! Everything but the work endpoints through the router (`oneshot`): health, workers,
//! queue, operator actions, metrics, the OpenAPI document, auth and routing errors.

mod common;

use common::{Fixture, LOOPBACK, assert_error, call, call_raw};
use scrum_core::TaskState;
use scrum_http::{ApiConfig, ApiToken, server::ROUTES};
use serde_json::json;

const TOKEN: &str = "test-token-0123456789";

#[tokio::test]
async fn health_reports_counts_github_store_and_version() {
    let f = Fixture::new();
    f.queue_issue().await;
    f.queue_issue().await;
    f.get("/work/next?worker_id=worker-1").await;
    f.get("/work/next?worker_id=worker-2&wait=0").await;
    let (s, v) = f.get("/health").await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["workers"], json!({"total": 2, "available": 0, "busy": 2}));
    assert_eq!(v["queue"]["pending"], 0);
    assert_eq!(v["queue"]["in_progress"], 2);
    assert_eq!(v["queue"]["completed"], 0);
    assert_eq!(v["queue"]["failed"], 0);
    assert_eq!(v["github_connected"], true);
    assert_eq!(v["store"]["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn health_shows_each_forge_apart_with_fixed_phrases() {
    let f = Fixture::new();
    let lab = f.queue_issue_in("gitlab:group/sub/project", 12).await;
    let o = &f.orchestrator;
    o.report_forge(
        "github",
        scrum_core::engine::ForgeReport::Health {
            connected: true,
            reason: None,
        },
    );
    o.report_forge(
        "github",
        scrum_core::engine::ForgeReport::RateLimit {
            remaining: Some(4999),
            reset: None,
        },
    );
    o.report_forge(
        "gitlab",
        scrum_core::engine::ForgeReport::Health {
            connected: false,
            reason: Some("gitlab: 429 for Issue 12".into()),
        },
    );
    o.report_forge(
        "gitlab",
        scrum_core::engine::ForgeReport::RateLimit {
            remaining: Some(0),
            reset: Some(scrum_core::Timestamp(1_800_000_000_000)),
        },
    );
    let (s, v) = f.get("/health").await;
    assert_eq!(s, 200);
    let forges = v["forges"].as_array().unwrap();
    assert_eq!(forges.len(), 2);
    assert_eq!(forges[0]["forge"], "github");
    assert_eq!(forges[0]["connected"], true);
    assert_eq!(forges[0]["rate_limit"]["remaining"], 4999);
    assert_eq!(forges[1]["forge"], "gitlab");
    assert_eq!(forges[1]["connected"], false);
    assert_eq!(forges[1]["rate_limit"]["remaining"], 0);
    assert_eq!(forges[1]["rate_limit"]["reset"], "2027-01-15T08:00:00.000Z");
    assert_eq!(forges[1]["writes"]["status"], "ok");
    assert!(
        !v.to_string().contains("Issue 12"),
        "a forge's free error text stays in the log: {v}"
    );
    // The task of a nested project is served like any other.
    let (_, next) = f.get("/work/next?worker_id=w1").await;
    assert_eq!(next["repository"], lab.repo());
    assert_eq!(next["branch_name"], "ai-feature/issue-12");
    let (_, queue) = f.get("/queue").await;
    assert_eq!(
        queue["in_progress"][0]["repository"],
        "gitlab:group/sub/project"
    );
    let (_, _, metrics) = call_raw(&f.app, "GET", "/metrics", None, Some(LOOPBACK), &[]).await;
    let series = "scrum_tasks{repository=\"gitlab:group/sub/project\",state=\"in_progress\"} 1";
    assert!(metrics.contains(series), "{metrics}");
    // A worker's report names the task by its whole repository name.
    let done = r#"{"worker_id":"w1","issue_number":12,"repository":"gitlab:group/sub/project","pr_url":"https://gitlab.example/group/sub/project/-/merge_requests/3","success":true}"#;
    let (s, v) = f.post("/work/complete", done).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["task_id"], "gitlab:group/sub/project#12");
}

#[tokio::test]
async fn health_says_degraded_when_the_store_is_down() {
    let f = Fixture::new();
    f.queue.faults().fail_next(1);
    let (s, v) = f.get("/health").await;
    assert_eq!(s, 503);
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["store"]["status"], "unavailable");
}

#[tokio::test]
async fn workers_lists_callers_with_their_task() {
    let f = Fixture::new();
    f.queue_issue().await;
    f.get("/work/next?worker_id=worker-1").await;
    f.get("/work/next?worker_id=worker-2").await;
    let (s, v) = f.get("/workers").await;
    assert_eq!(s, 200);
    let workers = v["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let w1 = &workers[0];
    assert_eq!(w1["id"], "worker-1");
    assert_eq!(w1["ip"], "127.0.0.1");
    assert_eq!(w1["status"], "busy");
    assert_eq!(w1["current_task"], 1);
    assert_eq!(w1["current_task_id"], "acme/widgets#1");
    assert_eq!(w1["health"], "unknown");
    assert!(w1["last_seen"].as_str().unwrap().ends_with('Z'));
    assert_eq!(workers[1]["status"], "available");
    assert_eq!(workers[1]["current_task"], json!(null));
}

/// A retry shows as scheduled with its time, and every attempt of the run is
/// listed with its worker, times, outcome, error and cost.
#[tokio::test]
async fn queue_entries_list_every_attempt_and_when_a_retry_runs() {
    let policy = scrum_core::state::Policy {
        backoff: scrum_core::state::Backoff {
            initial: std::time::Duration::from_secs(3600),
            cap: std::time::Duration::from_secs(3600),
        },
        ..scrum_core::state::Policy::default()
    };
    let f = Fixture::with_policy(ApiConfig::default(), policy.clone());
    f.retried_task(false).await;
    let (_, v) = f.get("/queue").await;
    let waiting = &v["pending"][0];
    assert_eq!(
        waiting["state"], "pending",
        "the Python orchestrator's group"
    );
    assert_eq!(waiting["status"], "scheduled");
    assert!(waiting["next_attempt_at"].as_str().is_some(), "{waiting}");
    let first = &waiting["attempt_history"][0];
    assert_eq!(
        (&first["number"], &first["worker_id"], &first["outcome"]),
        (&json!(1), &json!("worker-1"), &json!("failed"))
    );
    assert_eq!(first["error"], "tests failed");
    assert!(first["ended_at"].as_str().is_some(), "{first}");

    let f = Fixture::with_policy(ApiConfig::default(), policy);
    f.retried_task(true).await;
    let (_, v) = f.get("/queue").await;
    let done = &v["completed"][0];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["next_attempt_at"], json!(null));
    let history = done["attempt_history"].as_array().unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|a| {
            (
                a["number"].clone(),
                a["worker_id"].clone(),
                a["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!(1), json!("worker-1"), json!("failed")),
            (json!(2), json!("worker-2"), json!("completed"))
        ]
    );
    assert_eq!(history[1]["cost_usd"], 0.5);
}

#[tokio::test]
async fn queue_lists_each_state_a_page_at_a_time() {
    let f = Fixture::new();
    for _ in 0..3 {
        f.queue_issue().await;
    }
    f.get("/work/next?worker_id=worker-1").await;
    let (s, v) = f.get("/queue").await;
    assert_eq!(s, 200);
    assert_eq!(v["pending"].as_array().unwrap().len(), 2);
    let held = &v["in_progress"][0];
    assert_eq!(held["task_id"], "acme/widgets#1");
    assert_eq!(held["issue_number"], 1);
    assert_eq!(held["repository"], "acme/widgets");
    assert_eq!(held["worker_id"], "worker-1");
    assert_eq!(held["state"], "in_progress");
    assert_eq!(held["attempts"], 1);
    assert_eq!(v["completed"], json!([]));
    assert_eq!(v["failed"], json!([]));
    assert_eq!(v["counts"]["pending"], 2);

    let (_, page) = f.get("/queue?limit=1&offset=1").await;
    let pending = page["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["task_id"], "acme/widgets#3");
    assert_eq!(
        (page["limit"].clone(), page["offset"].clone()),
        (json!(1), json!(1))
    );

    assert_error(&f.get("/queue?limit=0").await, 422, "invalid_request");
    assert_error(&f.get("/queue?limit=5000").await, 422, "invalid_request");
    assert_error(&f.get("/queue?limit=ten").await, 400, "invalid_query");
}

#[tokio::test]
async fn pause_and_resume_stop_and_restart_dispatch() {
    let f = Fixture::new();
    f.queue_issue().await;
    let (s, v) = f.post("/admin/pause", "").await;
    assert_eq!(
        (s.as_u16(), v),
        (200, json!({"status": "ok", "paused": true}))
    );
    assert_eq!(
        f.get("/work/next?worker_id=w").await.1["work_available"],
        false
    );
    assert_eq!(f.get("/health").await.1["dispatch"]["paused"], true);
    let (s, _) = f.post("/admin/resume", "").await;
    assert_eq!(s, 200);
    assert_eq!(
        f.get("/work/next?worker_id=w").await.1["work_available"],
        true
    );
}

#[tokio::test]
async fn a_drained_worker_gets_no_new_work() {
    let f = Fixture::new();
    f.queue_issue().await;
    let (s, _) = f.post("/admin/drain", r#"{"worker_id":"w1"}"#).await;
    assert_eq!(s, 200);
    assert_eq!(
        f.get("/work/next?worker_id=w1").await.1["work_available"],
        false
    );
    let (_, workers) = f.get("/workers").await;
    assert_eq!(workers["workers"][0]["status"], "draining");
    f.post("/admin/drain", r#"{"worker_id":"w1","draining":false}"#)
        .await;
    assert_eq!(
        f.get("/work/next?worker_id=w1").await.1["work_available"],
        true
    );
    assert_error(
        &f.post("/admin/drain", r#"{"worker_id":"bad id"}"#).await,
        422,
        "invalid_request",
    );
    assert_error(&f.post("/admin/drain", "{}").await, 422, "invalid_request");
}

#[tokio::test]
async fn retry_starts_a_new_run_of_a_failed_task_only() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let body = r#"{"repository":"acme/widgets","issue_number":1}"#;
    assert_error(
        &f.post("/admin/retry", body).await,
        409,
        "invalid_transition",
    );
    f.get("/work/next?worker_id=w").await;
    let failed = r#"{"worker_id":"w","issue_number":1,"error":"bad","retryable":false}"#;
    assert_eq!(f.post("/work/failed", failed).await.0, 200);
    let (s, v) = f.post("/admin/retry", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["task"]["state"], "pending");
    assert_eq!(v["task"]["attempts"], 0);
    assert_eq!(f.task(&id).await.state(), TaskState::Pending);
    let unknown = r#"{"repository":"acme/widgets","issue_number":99}"#;
    assert_error(&f.post("/admin/retry", unknown).await, 404, "not_found");
    assert_error(
        &f.post("/admin/retry", r#"{"repository":"acme","issue_number":1}"#)
            .await,
        422,
        "invalid_request",
    );
}

#[tokio::test]
async fn cancel_ends_a_pending_task_and_refuses_finished_or_unknown_ones() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let body = r#"{"repository":"acme/widgets","issue_number":1}"#;
    let (s, v) = f.post("/admin/cancel", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["task"]["state"], "cancelled");
    assert_eq!(f.task(&id).await.state(), TaskState::Cancelled);
    assert_error(
        &f.post("/admin/cancel", body).await,
        409,
        "invalid_transition",
    );
    let unknown = r#"{"repository":"acme/widgets","issue_number":42}"#;
    assert_error(&f.post("/admin/cancel", unknown).await, 404, "not_found");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let f = Fixture::new();
    f.queue_issue().await;
    f.get("/work/next?worker_id=w").await;
    f.get("/work/next?worker_id=v").await;
    f.post("/work/complete", "{").await;
    let (s, headers, text) = call_raw(&f.app, "GET", "/metrics", None, Some(LOOPBACK), &[]).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    for line in [
        "scrum_claims_total 1",
        "scrum_empty_polls_total 1",
        "scrum_http_errors_total{class=\"4xx\"} 1",
        "scrum_queue_tasks{state=\"in_progress\"} 1",
        "scrum_tasks{repository=\"acme/widgets\",state=\"in_progress\"} 1",
        "scrum_workers{status=\"busy\"} 1",
        "scrum_workers{status=\"available\"} 1",
        "# TYPE scrum_runs_total counter",
        "# TYPE scrum_run_duration_seconds histogram",
        "scrum_queue_wait_seconds_count 1",
        "scrum_dispatch_latency_seconds_count{trigger=\"poll\"} 1",
        "scrum_store_up 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let f = Fixture::new();
    let (s, doc) = f.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut described = 0;
    for (path, item) in paths {
        described += item.as_object().unwrap().len();
        for method in item.as_object().unwrap().keys() {
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is not a route"
            );
        }
    }
    assert_eq!(described, ROUTES.len());
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"]["200"].is_object(),
            "{method} {path} not described"
        );
        // Every route exists in the router: it answers something else than "no endpoint".
        let body = (*method == "post").then_some("{}");
        let (status, v) = call(
            &f.app,
            &method.to_uppercase(),
            path,
            body,
            Some(LOOPBACK),
            &[],
        )
        .await;
        let no_route = status == 404
            && v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no endpoint"));
        assert!(!no_route, "{method} {path} is not routed");
        // Every status it answered is described.
        assert!(
            op["responses"][status.as_str()].is_object(),
            "{method} {path} answered undocumented {status}: {v}"
        );
    }
    // Every $ref points at a schema.
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let f = Fixture::new();
    assert_error(&f.get("/work/nothing").await, 404, "not_found");
    let (s, headers, body) =
        call_raw(&f.app, "DELETE", "/work/next", None, Some(LOOPBACK), &[]).await;
    assert_eq!(s, 405);
    assert_eq!(headers["allow"], "GET,HEAD");
    assert!(body.contains("method_not_allowed"));
}

#[tokio::test]
async fn with_a_token_every_call_but_health_needs_it() {
    let f = Fixture::with(ApiConfig {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        ..ApiConfig::default()
    });
    f.queue_issue().await;
    let remote = Some("203.0.113.9:5000");
    let bearer = format!("Bearer {TOKEN}");
    let (s, _) = call(&f.app, "GET", "/health", None, remote, &[]).await;
    assert_eq!(s, 200);
    // /health is open; webhook deliveries are checked by their signature instead.
    let guarded = |p: &&str| !["/health", "/webhooks/github", "/webhooks/gitlab"].contains(p);
    for (method, path) in ROUTES.iter().filter(|(_, p)| guarded(p)) {
        let body = (*method == "post").then_some("{}");
        let got = call(&f.app, &method.to_uppercase(), path, body, remote, &[]).await;
        assert_error(&got, 401, "unauthorized");
        let wrong = call(
            &f.app,
            &method.to_uppercase(),
            path,
            body,
            remote,
            &[("authorization", "Bearer nope-nope-nope-nope")],
        )
        .await;
        assert_error(&wrong, 401, "unauthorized");
    }
    let (_, headers, _) = call_raw(&f.app, "GET", "/workers", None, remote, &[]).await;
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // With the token, from anywhere.
    let (s, v) = call(
        &f.app,
        "GET",
        "/work/next?worker_id=w",
        None,
        remote,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["work_available"], true);
    // The scheme is case-insensitive (RFC 9110).
    let lower = format!("bearer {TOKEN}");
    let (s, _) = call(
        &f.app,
        "POST",
        "/admin/pause",
        None,
        remote,
        &[("authorization", &lower)],
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn without_a_token_only_loopback_and_worker_ips_may_work() {
    let f = Fixture::with(
        ApiConfig::default()
            .with_worker_hosts(&["10.0.0.5:22"])
            .unwrap(),
    );
    f.queue_issue().await;
    let stranger = Some("198.51.100.7:4000");
    let got = call(&f.app, "GET", "/work/next?worker_id=w", None, stranger, &[]).await;
    assert_error(&got, 403, "forbidden");
    let seed_complete = r#"{"worker_id":"w","issue_number":1,"pr_url":"x","success":true}"#;
    assert_error(
        &call(
            &f.app,
            "POST",
            "/work/complete",
            Some(seed_complete),
            stranger,
            &[],
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &call(&f.app, "GET", "/work/next?worker_id=w", None, None, &[]).await,
        403,
        "forbidden",
    );
    // Operator actions: loopback only, even from a worker's address.
    assert_error(
        &call(
            &f.app,
            "POST",
            "/admin/pause",
            None,
            Some("10.0.0.5:999"),
            &[],
        )
        .await,
        403,
        "forbidden",
    );
    // Nothing was claimed by the refused calls.
    let (_, v) = call(
        &f.app,
        "GET",
        "/work/next?worker_id=w",
        None,
        Some("10.0.0.5:999"),
        &[],
    )
    .await;
    assert_eq!(v["work_available"], true);
    let (_, v) = call(
        &f.app,
        "GET",
        "/work/next?worker_id=w2",
        None,
        Some("[::ffff:10.0.0.5]:1"),
        &[],
    )
    .await;
    assert_eq!(v, json!({"work_available": false}));
}

/// The reads that show tasks or workers, each with what it would show.
const READS: &[&str] = &["/queue", "/workers", "/metrics", "/openapi.json"];

#[tokio::test]
async fn without_a_token_strangers_get_403_on_everything_but_health_and_the_webhook() {
    let f = Fixture::with(
        ApiConfig::default()
            .with_worker_hosts(&["10.0.0.5"])
            .unwrap(),
    );
    f.queue_issue().await;
    let (_, doc) = f.get("/openapi.json").await;
    let stranger = Some("198.51.100.7:4000");
    let open = |p: &&str| ["/health", "/webhooks/github", "/webhooks/gitlab"].contains(p);
    for (method, path) in ROUTES.iter().filter(|(_, p)| !open(p)) {
        let body = (*method == "post").then_some("{}");
        let got = call(&f.app, &method.to_uppercase(), path, body, stranger, &[]).await;
        assert_error(&got, 403, "forbidden");
        assert!(
            !got.1.to_string().contains("Issue 1"),
            "{method} {path}: {}",
            got.1
        );
        assert!(
            doc["paths"][path][method]["responses"]["403"].is_object(),
            "{method} {path}: 403 is not documented"
        );
    }
    // The message says what the rule is and how to get in.
    let (_, v) = call(&f.app, "GET", "/queue", None, stranger, &[]).await;
    let message = v["error"]["message"].as_str().unwrap();
    for part in [
        "198.51.100.7",
        "only loopback and the WORKER_IPS addresses",
        "API token",
        "add 198.51.100.7 to WORKER_IPS",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message:?}");
    }
    // Reads under /admin follow the same rule; there are none yet, but a stranger
    // learns nothing even of that.
    assert_error(
        &call(&f.app, "GET", "/admin/status", None, stranger, &[]).await,
        403,
        "forbidden",
    );
    // /health stays open to all.
    let (s, _) = call(&f.app, "GET", "/health", None, stranger, &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn without_a_token_loopback_and_worker_ips_may_read() {
    let f = Fixture::with(
        ApiConfig::default()
            .with_worker_hosts(&["10.0.0.5"])
            .unwrap(),
    );
    f.queue_issue().await;
    for peer in [LOOPBACK, "10.0.0.5:4000", "[::ffff:10.0.0.5]:4000"] {
        for path in READS {
            let (s, v) = call(&f.app, "GET", path, None, Some(peer), &[]).await;
            assert_eq!(s, 200, "{peer} {path}: {v}");
        }
        let (_, queue) = call(&f.app, "GET", "/queue", None, Some(peer), &[]).await;
        assert_eq!(queue["pending"][0]["title"], "Issue 1", "{peer}");
        // A GET under /admin is a read: past the guard (no such read exists: 405).
        let got = call(&f.app, "GET", "/admin/pause", None, Some(peer), &[]).await;
        assert_error(&got, 405, "method_not_allowed");
    }
    // A worker's address may read, not act nor fetch hosts' logs.
    let worker = Some("10.0.0.5:4000");
    for (method, path) in [("POST", "/admin/pause"), ("GET", "/workers/w/logs")] {
        let got = call(&f.app, method, path, None, worker, &[]).await;
        assert_error(&got, 403, "forbidden");
        let message = got.1["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("only loopback may call the operator endpoints")
                && message.contains("API token"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn with_a_token_a_remote_caller_with_it_may_read() {
    let f = Fixture::with(ApiConfig {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        ..ApiConfig::default()
    });
    f.queue_issue().await;
    let bearer = format!("Bearer {TOKEN}");
    let remote = Some("203.0.113.9:5000");
    for path in READS {
        let (s, v) = call(
            &f.app,
            "GET",
            path,
            None,
            remote,
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let (_, queue) = call(
        &f.app,
        "GET",
        "/queue",
        None,
        remote,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(queue["pending"][0]["title"], "Issue 1");
}

#[tokio::test]
async fn health_carries_no_issue_text_even_when_degraded() {
    use scrum_core::{TaskId, Timestamp};

    const TITLE: &str = "Quarterly numbers for the Zanzibar acquisition";
    let f = Fixture::new();
    let id = TaskId::new("acme/secret", 7).unwrap();
    f.source.open_issue(id, TITLE, &["ai-ready"], Timestamp(1));
    f.orchestrator.poll_once().await.unwrap();
    let stranger = Some("198.51.100.7:4000");
    let (s, v) = call(&f.app, "GET", "/health", None, stranger, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["queue"]["pending"], 1);
    assert!(!v.to_string().contains("Zanzibar"), "{v}");

    // A source whose error quotes an issue (a tracker's parse error, say): /health
    // says GitHub is degraded, in words of its own.
    f.orchestrator
        .report_source_health(false, Some(format!("cannot parse issue {TITLE:?}")));
    let (_, v) = call(&f.app, "GET", "/health", None, stranger, &[]).await;
    assert_eq!(v["github"]["connected"], false);
    assert!(
        v["github"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    assert!(!v.to_string().contains("Zanzibar"), "{v}");

    // A store error: its kind in a fixed phrase, not the backend's text.
    f.queue.faults().fail_next(1);
    let (s, v) = call(&f.app, "GET", "/health", None, stranger, &[]).await;
    assert_eq!(s, 503);
    let error = v["store"]["error"].as_str().unwrap();
    assert!(!error.is_empty() && !error.contains("injected"), "{v}");
}

#[test]
fn the_startup_summary_says_who_may_call() {
    let open = ApiConfig::default().access_summary();
    for part in ["no API token", "/work/*", "/queue", "/workers", "/metrics"] {
        assert!(open.contains(part), "{part:?} missing from {open}");
    }
    assert!(open.contains("answer only loopback"), "{open}");
    let ips = ApiConfig::default()
        .with_worker_hosts(&["10.0.0.5"])
        .unwrap()
        .access_summary();
    assert!(
        ips.contains("/queue, /workers") && ips.contains("only loopback and WORKER_IPS (10.0.0.5)"),
        "{ips}"
    );
    let token = ApiConfig {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        ..ApiConfig::default()
    }
    .access_summary();
    assert!(
        token.contains("Bearer") && !token.contains(TOKEN),
        "{token}"
    );
}

#[tokio::test]
async fn worker_logs_come_from_the_host_the_worker_calls_from() {
    use std::sync::Arc;
    use std::time::Duration;

    use scrum_core::engine::{EngineConfig, Orchestrator};
    use scrum_core::memory::{MemoryIssueSource, MemoryQueue, ScriptedProbe};
    use scrum_core::state::Policy;
    use scrum_core::{HostHealth, Labels, LeaseKind, ProbeReport, WorkerId};
    use scrum_http::{ApiState, server::app};

    let probe = Arc::new(ScriptedProbe::new());
    let report = ProbeReport {
        health: HostHealth::Healthy,
        rtt: None,
        reason: None,
    };
    probe.set("127.0.0.1", report, "line 1\nline 2\nline 3");
    let build = |probe: Option<Arc<ScriptedProbe>>| {
        let queue = Arc::new(MemoryQueue::new(Policy::default()));
        let source = Arc::new(MemoryIssueSource::new(Labels::default()));
        let mut b = Orchestrator::builder(queue, source).config(EngineConfig {
            worker_hosts: vec!["127.0.0.1".into()],
            ..EngineConfig::default()
        });
        if let Some(p) = probe {
            b = b.probe(p);
        }
        b.build()
    };
    let orchestrator = build(Some(probe));
    // worker-7 has called from 127.0.0.1, a WORKER_IPS host.
    let w = WorkerId::new("worker-7").unwrap();
    orchestrator
        .next_work(
            &w,
            Some("127.0.0.1".parse().unwrap()),
            LeaseKind::Heartbeat,
            Duration::ZERO,
        )
        .await
        .unwrap();
    let app = app(ApiState::new(orchestrator, ApiConfig::default()));

    let (s, v) = call(
        &app,
        "GET",
        "/workers/worker-7/logs?lines=2",
        None,
        Some(LOOPBACK),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"worker_id": "worker-7", "host": "127.0.0.1", "lines": 2, "logs": "line 2\nline 3"})
    );
    let by_host = call(
        &app,
        "GET",
        "/workers/127.0.0.1/logs",
        None,
        Some(LOOPBACK),
        &[],
    )
    .await;
    assert_eq!(by_host.1["host"], "127.0.0.1");
    assert_error(
        &call(
            &app,
            "GET",
            "/workers/stranger/logs",
            None,
            Some(LOOPBACK),
            &[],
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &call(
            &app,
            "GET",
            "/workers/worker-7/logs?lines=0",
            None,
            Some(LOOPBACK),
            &[],
        )
        .await,
        422,
        "invalid_request",
    );
    // Logs are an operator's: without a token only loopback may read them.
    assert_error(
        &call(
            &app,
            "GET",
            "/workers/worker-7/logs",
            None,
            Some("10.1.2.3:5000"),
            &[],
        )
        .await,
        403,
        "forbidden",
    );
    // Without a probe there is nothing to fetch them with: a 404 that says why (a
    // server that is not set up for it is not failing).
    let bare = scrum_http::server::app(ApiState::new(build(None), ApiConfig::default()));
    let resp = call(
        &bare,
        "GET",
        "/workers/127.0.0.1/logs",
        None,
        Some(LOOPBACK),
        &[],
    )
    .await;
    assert!(
        resp.1.to_string().contains("no SSH probe is configured"),
        "{}",
        resp.1
    );
    assert_error(&resp, 404, "not_found");
}

#[tokio::test]
async fn metrics_speak_openmetrics_to_a_scraper_that_asks() {
    let f = Fixture::new();
    f.queue_issue().await;
    let accept = [("accept", "application/openmetrics-text; version=1.0.0")];
    let (s, headers, text) =
        call_raw(&f.app, "GET", "/metrics", None, Some(LOOPBACK), &accept).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{headers:?}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE scrum_claims counter\n"), "{text}");
    assert!(
        text.contains("# UNIT scrum_queue_wait_seconds seconds\n"),
        "{text}"
    );
}
