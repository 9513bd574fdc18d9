//! The work endpoints through the router (`oneshot`): every success and every
//! refusal, and that a refusal changes nothing.

mod common;

use std::time::Duration;

use common::{Fixture, assert_error};
use scrum_core::{QueueCounts, TaskState, WorkQueue};
use serde_json::{Value, json};

async fn claim(f: &Fixture, worker: &str) -> Value {
    let (s, v) = f
        .get(&format!("/work/next?worker_id={worker}&lease=heartbeat"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["work_available"], true, "{v}");
    v
}

fn report(worker: &str, work: &Value) -> Value {
    json!({
        "worker_id": worker,
        "issue_number": work["issue_number"],
        "repository": work["repository"],
        "lease_token": work["lease_token"],
    })
}

fn with(mut base: Value, extra: Value) -> String {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base.to_string()
}

async fn counts(f: &Fixture) -> QueueCounts {
    f.queue.counts().await.unwrap()
}

#[tokio::test]
async fn next_without_work_says_so_at_once() {
    let f = Fixture::new();
    let (s, v) = f.get("/work/next?worker_id=worker-1").await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"work_available": false}));
}

#[tokio::test]
async fn next_hands_out_the_issue_with_a_lease() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let v = claim(&f, "worker-1").await;
    assert_eq!(v["issue_number"], 1);
    assert_eq!(v["repository"], "acme/widgets");
    assert_eq!(v["task_id"], "acme/widgets#1");
    assert_eq!(v["title"], "Issue 1");
    assert_eq!(v["branch_name"], "ai-feature/issue-1");
    assert_eq!(v["labels"], json!(["ai-ready", "enhancement"]));
    assert_eq!(v["attempt"], 1);
    assert_eq!(v["max_attempts"], 2);
    assert_eq!(v["heartbeat_interval_secs"], 20.0);
    let token = v["lease_token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    let task = f.task(&id).await;
    assert_eq!(task.state(), TaskState::InProgress);
    assert_eq!(task.lease().as_ref().unwrap().token.to_string(), token);
    // A heartbeat lease lasts one lease period (60 s).
    let lease = task.lease().unwrap();
    assert_eq!(lease.expires_at.0 - lease.claimed_at.0, 60_000);
    assert_eq!(v["lease_expires_at_ms"], lease.expires_at.0);
}

#[tokio::test]
async fn seed_clients_hold_their_task_for_the_maximum_run_time() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let (_, v) = f.get("/work/next?worker_id=worker-1").await;
    assert_eq!(v["work_available"], true);
    let lease = f.task(&id).await.lease().cloned().unwrap();
    assert_eq!(lease.expires_at.0 - lease.claimed_at.0, 3 * 3600 * 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_worker_gets_a_newly_queued_task_at_once() {
    let f = Fixture::new();
    let app = f.app.clone();
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move {
        common::call(
            &app,
            "GET",
            "/work/next?worker_id=waiter&wait=30&lease=heartbeat",
            None,
            Some(common::LOOPBACK),
            &[],
        )
        .await
    });
    // The engine registers a worker before it looks for work: once it is listed,
    // it is waiting.
    f.until_listed("waiter").await;
    f.queue_issue().await;
    let (s, v) = waiting.await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(v["work_available"], true, "{v}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_with_nothing_to_hand_out_ends_at_the_cap() {
    let f = Fixture::with_engine(
        scrum_http::ApiConfig::default(),
        scrum_core::state::Policy::default(),
        scrum_core::engine::EngineConfig {
            max_wait: Duration::from_secs(2),
            ..Default::default()
        },
    );
    let before = tokio::time::Instant::now();
    let (s, v) = f.get("/work/next?worker_id=w&wait=2").await;
    assert_eq!((s.as_u16(), &v), (200, &json!({"work_available": false})));
    assert_eq!(before.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn next_refuses_bad_queries() {
    let f = Fixture::new();
    f.queue_issue().await;
    assert_error(&f.get("/work/next").await, 400, "invalid_query");
    assert_error(
        &f.get("/work/next?worker_id=w&wait=soon").await,
        400,
        "invalid_query",
    );
    assert_error(
        &f.get("/work/next?worker_id=w&wait=-1").await,
        400,
        "invalid_query",
    );
    assert_error(
        &f.get("/work/next?worker_id=w&lease=forever").await,
        400,
        "invalid_query",
    );
    assert_error(
        &f.get("/work/next?worker_id=a%20b").await,
        422,
        "invalid_request",
    );
    assert_error(
        &f.get("/work/next?worker_id=").await,
        422,
        "invalid_request",
    );
    assert_eq!(counts(&f).await.pending, 1, "a refused poll claimed a task");
}

#[tokio::test]
async fn complete_with_the_lease_token_completes_once() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let body = with(
        report("worker-1", &work),
        json!({"pr_url": "https://github.com/acme/widgets/pull/9", "success": true, "cost_usd": 1.5, "tokens": 1200}),
    );
    let (s, v) = f.post("/work/complete", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"status": "acknowledged", "task_id": "acme/widgets#1", "state": "completed"})
    );
    // The same completion again: accepted, applied once.
    let (s, _) = f.post("/work/complete", &body).await;
    assert_eq!(s, 200);
    let task = f.task(&id).await;
    assert_eq!(task.state(), TaskState::Completed);
    let c = task.completion().unwrap();
    assert_eq!(
        c.pr_url.as_deref(),
        Some("https://github.com/acme/widgets/pull/9")
    );
    assert_eq!((c.cost_usd, c.tokens), (Some(1.5), Some(1200)));
    // Counted once in /metrics: the run, its time, its cost and tokens.
    let (_, _, metrics) =
        common::call_raw(&f.app, "GET", "/metrics", None, Some(common::LOOPBACK), &[]).await;
    for line in [
        "scrum_runs_total{repository=\"acme/widgets\",outcome=\"completed\"} 1",
        "scrum_tasks_finished_total{repository=\"acme/widgets\",state=\"completed\"} 1",
        "scrum_run_duration_seconds_count{outcome=\"completed\"} 1",
        "scrum_cost_usd_total{repository=\"acme/widgets\"} 1.5",
        "scrum_tokens_total{repository=\"acme/widgets\"} 1200",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    let outbox = f.queue.pending_effects(100).await.unwrap();
    let completed = outbox
        .iter()
        .filter(|e| e.effect.kind.name() == "completed")
        .count();
    assert_eq!(completed, 1);
}

#[tokio::test]
async fn success_false_counts_as_a_failed_attempt() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let body = with(
        report("worker-1", &work),
        json!({"pr_url": null, "success": false, "error": "tests failed"}),
    );
    let (s, v) = f.post("/work/complete", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "pending");
    let task = f.task(&id).await;
    assert_eq!(task.attempts(), 1);
    assert_eq!(task.last_error(), Some("tests failed"));
}

#[tokio::test]
async fn a_stale_or_foreign_lease_is_refused_and_changes_nothing() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let stale = with(
        report("worker-1", &work),
        json!({"lease_token": "0123456789abcdef0123456789abcdef", "pr_url": "x", "success": true}),
    );
    assert_error(&f.post("/work/complete", &stale).await, 409, "lease_lost");
    let foreign = with(
        report("worker-2", &work),
        json!({"pr_url": "x", "success": true}),
    );
    assert_error(&f.post("/work/complete", &foreign).await, 409, "lease_lost");
    let stale_beat = with(
        report("worker-1", &work),
        json!({"lease_token": "0123456789abcdef0123456789abcdef"}),
    );
    assert_error(
        &f.post("/work/heartbeat", &stale_beat).await,
        409,
        "lease_lost",
    );
    let task = f.task(&id).await;
    assert_eq!(task.state(), TaskState::InProgress);
    assert_eq!(task.lease().unwrap().token.to_string(), work["lease_token"]);
}

#[tokio::test]
async fn malformed_bodies_get_4xx_and_change_nothing() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let good = report("worker-1", &work);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "malformed_json"),
        ("".into(), 400, "malformed_json"),
        (r#"{"worker_id":"worker-1"}"#.into(), 422, "invalid_request"),
        (
            with(good.clone(), json!({"success": "yes"})),
            422,
            "invalid_request",
        ),
        (
            with(good.clone(), json!({"success": true, "issue_number": "1"})),
            422,
            "invalid_request",
        ),
        (
            with(good.clone(), json!({"success": true, "issue_number": -1})),
            422,
            "invalid_request",
        ),
        (
            with(good.clone(), json!({"success": true, "issue_number": 0})),
            422,
            "invalid_request",
        ),
        (
            with(
                good.clone(),
                json!({"success": true, "worker_id": "no spaces"}),
            ),
            422,
            "invalid_request",
        ),
        (
            with(
                good.clone(),
                json!({"success": true, "repository": "not-a-repo"}),
            ),
            422,
            "invalid_request",
        ),
        (
            with(good.clone(), json!({"success": true, "lease_token": "xyz"})),
            422,
            "invalid_request",
        ),
        (
            with(good.clone(), json!({"success": true, "tokens": -5})),
            422,
            "invalid_request",
        ),
        ("[1,2,3]".into(), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let got = f.post("/work/complete", &body).await;
        assert_eq!(got.0.as_u16(), status, "{body} -> {}", got.1);
        assert_eq!(got.1["error"]["code"], code, "{body} -> {}", got.1);
    }
    let huge = with(
        good.clone(),
        json!({"success": true, "pr_url": "x".repeat(100_000)}),
    );
    assert_error(
        &f.post("/work/complete", &huge).await,
        413,
        "payload_too_large",
    );
    assert_eq!(f.task(&id).await.state(), TaskState::InProgress);
}

#[tokio::test]
async fn unknown_workers_and_issues_are_refused() {
    let f = Fixture::new();
    f.queue_issue().await;
    claim(&f, "worker-1").await;
    // A worker that holds nothing, reporting the Python orchestrator's way.
    let seed = r#"{"worker_id":"stranger","issue_number":1,"pr_url":"x","success":true}"#;
    assert_error(&f.post("/work/complete", seed).await, 409, "lease_lost");
    // An issue with no task.
    let unknown =
        r#"{"worker_id":"worker-1","issue_number":77,"repository":"acme/widgets","error":"boom"}"#;
    assert_error(&f.post("/work/failed", unknown).await, 404, "not_found");
    let unknown_token = r#"{"worker_id":"worker-1","issue_number":77,"repository":"acme/widgets","lease_token":"0123456789abcdef0123456789abcdef"}"#;
    assert_error(
        &f.post("/work/heartbeat", unknown_token).await,
        404,
        "not_found",
    );
    assert_eq!(counts(&f).await.in_progress, 1);
}

#[tokio::test]
async fn failed_reports_retry_or_fail_for_good() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let body = with(report("worker-1", &work), json!({"error": "no credits"}));
    let (s, v) = f.post("/work/failed", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "pending");

    let id2 = f.queue_issue().await;
    // Issue 1 is backing off; issue 2 is next.
    let work = claim(&f, "worker-2").await;
    assert_eq!(work["issue_number"], 2);
    let body = with(
        report("worker-2", &work),
        json!({"error": "the issue asks for the impossible", "retryable": false}),
    );
    let (s, v) = f.post("/work/failed", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "failed");
    assert_eq!(f.task(&id2).await.state(), TaskState::Failed);
    assert_eq!(f.task(&id).await.attempts(), 1);
    assert_error(
        &f.post(
            "/work/failed",
            r#"{"worker_id":"worker-2","issue_number":2}"#,
        )
        .await,
        422,
        "invalid_request",
    );
}

#[tokio::test]
async fn heartbeats_renew_the_lease_and_carry_cancellation() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let body = report("worker-1", &work).to_string();
    let (s, v) = f.post("/work/heartbeat", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "acknowledged");
    assert_eq!(v["cancel"], false);
    let lease = f.task(&id).await.lease().cloned().unwrap();
    assert_eq!(v["lease_expires_at_ms"], lease.expires_at.0);
    assert!(v["lease_expires_at"].as_str().unwrap().ends_with('Z'));

    let (s, _) = f
        .post(
            "/admin/cancel",
            r#"{"repository":"acme/widgets","issue_number":1,"reason":"not wanted"}"#,
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = f.post("/work/heartbeat", &body).await;
    assert_eq!(v["cancel"], true);
}

#[tokio::test]
async fn release_hands_the_task_back_without_spending_an_attempt() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    let body = with(
        report("worker-1", &work),
        json!({"reason": "needs clarification"}),
    );
    let (s, v) = f.post("/work/release", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "pending");
    let again = claim(&f, "worker-2").await;
    assert_eq!(again["attempt"], 1);
    assert_ne!(again["lease_token"], work["lease_token"]);
    // The first worker's token is dead now.
    assert_error(&f.post("/work/release", &body).await, 409, "lease_lost");
    assert_eq!(f.task(&id).await.attempts(), 1);
}

#[tokio::test]
async fn a_store_outage_is_a_503_with_retry_after() {
    let f = Fixture::new();
    f.queue_issue().await;
    f.queue.faults().fail_next(1);
    let (status, headers, body) = common::call_raw(
        &f.app,
        "GET",
        "/work/next?worker_id=w",
        None,
        Some(common::LOOPBACK),
        &[],
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("\"unavailable\""));
    assert_eq!(
        f.get("/work/next?worker_id=w").await.1["work_available"],
        true
    );
}

#[tokio::test]
async fn a_seed_worker_asking_again_ends_the_task_it_abandoned() {
    let f = Fixture::new();
    let first = f.queue_issue().await;
    for _ in 0..3 {
        f.queue_issue().await;
    }
    let (_, v) = f.get("/work/next?worker_id=w").await;
    assert_eq!(v["issue_number"], 1);
    // The worker restarted (or lost our answer) and asks again: issue 1 is not held
    // for three hours; it is a failed attempt, retried later.
    let (_, v) = f.get("/work/next?worker_id=w").await;
    assert_eq!(v["issue_number"], 2);
    let t = f.task(&first).await;
    assert_eq!((t.state(), t.attempts()), (TaskState::Pending, 1));
    assert!(t.last_error().unwrap().contains("worker lost"));
    // A heartbeating worker may hold several tasks at once.
    let a = claim(&f, "h").await;
    let b = claim(&f, "h").await;
    assert_eq!(
        (a["issue_number"].clone(), b["issue_number"].clone()),
        (json!(3), json!(4))
    );
    assert_eq!(counts(&f).await.in_progress, 3);
}

#[tokio::test]
async fn a_rework_runs_assignment_carries_the_review() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let work = claim(&f, "worker-1").await;
    assert!(work.get("rework").is_none(), "{work}");
    let url = "https://github.com/acme/widgets/pull/9";
    let body = with(
        report("worker-1", &work),
        json!({"pr_url": url, "success": true}),
    );
    assert_eq!(f.post("/work/complete", &body).await.0, 200);
    let at = f.orchestrator.now();
    let follow_up = scrum_core::follow_up::FollowUp::new(
        scrum_core::follow_up::FollowUpCause::ChangesRequested,
        url,
        "77".into(),
        "alice",
        "please rename foo",
        0,
        at,
    );
    let event = scrum_core::state::Event::FollowUp { follow_up };
    f.queue.apply(&id, event, at).await.unwrap();
    let again = claim(&f, "worker-1").await;
    assert_eq!(again["task_id"], "acme/widgets#1");
    let queued = again["follow_up"]["history"][0]["at"].clone();
    assert!(
        queued.as_i64().is_some_and(|t| t > 0 && t <= at.0),
        "{again}"
    );
    assert_eq!(
        again["follow_up"],
        json!({"pr_url": url, "answers": "77", "author": "alice",
               "feedback": "please rename foo", "requested_at": at.0,
               "cause": "changes_requested", "round": 1,
               "history": [{"run": 1, "cause": null, "outcome": "completed", "answers": "",
                            "at": queued}]}),
        "{again}"
    );
    // The client reads it back into the assignment.
    let item: scrum_http::wire::WorkItem = serde_json::from_value(again.clone()).unwrap();
    assert_eq!(item.follow_up.unwrap().feedback, "please rename foo");
    // As an orchestrator before follow-ups sent it.
    let mut old = again;
    let f = old.as_object_mut().unwrap().remove("follow_up").unwrap();
    old["rework"] = json!({"pr_url": f["pr_url"], "review_id": "77", "reviewer": "alice",
                           "feedback": "please rename foo", "requested_at": at.0});
    let item: scrum_http::wire::WorkItem = serde_json::from_value(old).unwrap();
    let f = item.follow_up.unwrap();
    assert_eq!(
        (f.author.as_str(), f.answers.as_str(), f.round),
        ("alice", "77", 1)
    );
}
