//! A client that speaks only the API of the Python orchestrator this project replaces
//! (no lease token, no heartbeats, none of the new fields) drives whole task lives
//! over a real socket, with raw JSON exactly as that API's reference writes it.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::Fixture;
use scrum_core::TaskState;
use scrum_core::state::{Backoff, Policy};
use serde_json::{Value, json};

struct Seed {
    http: reqwest::Client,
    base: String,
}

impl Seed {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn post(&self, path: &str, raw: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(raw.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

async fn start(f: &Fixture) -> Seed {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(scrum_http::serve(
        listener,
        f.state.clone(),
        std::future::pending(),
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    Seed {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_client_completes_a_task() {
    let f = Fixture::new();
    let id = f.queue_issue().await;
    let seed = start(&f).await;

    let (s, health) = seed.get("/health").await;
    assert_eq!(s, 200);
    for k in ["status", "workers", "queue", "github_connected"] {
        assert!(health.get(k).is_some(), "/health lacks {k}: {health}");
    }
    assert!(health["workers"]["total"].is_u64() && health["workers"]["available"].is_u64());
    for k in ["pending", "in_progress", "completed"] {
        assert!(health["queue"][k].is_u64(), "/health queue lacks {k}");
    }
    assert_eq!(health["queue"]["pending"], 1);

    let (s, work) = seed.get("/work/next?worker_id=worker-1").await;
    assert_eq!(s, 200);
    let seed_fields = [
        "work_available",
        "issue_number",
        "title",
        "body",
        "labels",
        "branch_name",
        "repository",
    ];
    assert!(
        seed_fields.iter().all(|k| keys(&work).contains(*k)),
        "{work}"
    );
    assert_eq!(work["work_available"], true);
    assert!(work["issue_number"].is_u64());
    assert!(
        work["title"].is_string() && work["body"].is_string() && work["branch_name"].is_string()
    );
    assert!(
        work["labels"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    assert_eq!(work["repository"], "acme/widgets");

    let (s, workers) = seed.get("/workers").await;
    assert_eq!(s, 200);
    let w = &workers["workers"][0];
    for k in ["id", "ip", "status", "current_task", "last_seen", "health"] {
        assert!(w.get(k).is_some(), "/workers entry lacks {k}: {w}");
    }
    assert_eq!(w["id"], "worker-1");
    assert_eq!(w["current_task"], 1);

    let (s, queue) = seed.get("/queue").await;
    assert_eq!(s, 200);
    for k in ["pending", "in_progress", "completed"] {
        assert!(queue[k].is_array(), "/queue lacks {k}");
    }
    assert_eq!(queue["in_progress"][0]["issue_number"], 1);

    let (s, ack) = seed
        .post(
            "/work/complete",
            // As the Python orchestrator's client sends it: `error` is null on success.
            r#"{"worker_id": "worker-1", "issue_number": 1, "pr_url": "https://github.com/acme/widgets/pull/2", "success": true, "error": null}"#,
        )
        .await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(ack["status"], "acknowledged");
    let task = f.task(&id).await;
    assert_eq!(task.state(), TaskState::Completed);
    assert_eq!(
        task.completion().unwrap().pr_url.as_deref(),
        Some("https://github.com/acme/widgets/pull/2")
    );

    let (_, none) = seed.get("/work/next?worker_id=worker-1").await;
    assert_eq!(none, json!({"work_available": false}));
    let (_, health) = seed.get("/health").await;
    assert_eq!(health["queue"]["completed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_client_fails_retries_and_fails_for_good() {
    // No backoff between attempts, so the retry is claimable at once.
    let policy = Policy {
        backoff: Backoff {
            initial: Duration::ZERO,
            cap: Duration::ZERO,
        },
        ..Policy::default()
    };
    let f = Fixture::with_policy(scrum_http::ApiConfig::default(), policy);
    let id = f.queue_issue().await;
    let seed = start(&f).await;

    let (_, work) = seed.get("/work/next?worker_id=worker-1").await;
    assert_eq!(work["issue_number"], 1);
    let (s, ack) = seed
        .post(
            "/work/failed",
            r#"{"worker_id": "worker-1", "issue_number": 1, "error": "Claude ran out of credits"}"#,
        )
        .await;
    assert_eq!((s, ack["status"].clone()), (200, json!("acknowledged")));
    let task = f.task(&id).await;
    assert_eq!((task.state(), task.attempts()), (TaskState::Pending, 1));

    let (_, work) = seed.get("/work/next?worker_id=worker-2").await;
    assert_eq!(work["work_available"], true, "{work}");
    // The Python API's complete with success=false is a failed attempt: the last one.
    let (s, _) = seed
        .post(
            "/work/complete",
            r#"{"worker_id": "worker-2", "issue_number": 1, "pr_url": "", "success": false, "error": "tests failed"}"#,
        )
        .await;
    assert_eq!(s, 200);
    let task = f.task(&id).await;
    assert_eq!((task.state(), task.attempts()), (TaskState::Failed, 2));

    // A repeat from a Python-API client that no longer holds the task is refused.
    let (s, err) = seed
        .post(
            "/work/failed",
            r#"{"worker_id": "worker-2", "issue_number": 1, "error": "again"}"#,
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(err["error"]["code"], "lease_lost");
}
