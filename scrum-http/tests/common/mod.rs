//! What the HTTP tests share: an orchestrator on the in-memory backends, and a
//! `oneshot` helper that answers status and JSON.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Labels, TaskId, Timestamp};
use scrum_http::{ApiConfig, ApiState, app};
use serde_json::Value;
use tower::ServiceExt;

pub const LOOPBACK: &str = "127.0.0.1:40000";

pub struct Fixture {
    pub source: Arc<MemoryIssueSource>,
    pub queue: Arc<Faulty<MemoryQueue>>,
    pub orchestrator: Orchestrator,
    pub state: ApiState,
    pub app: Router,
    next_issue: std::sync::atomic::AtomicU64,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(ApiConfig::default())
    }

    pub fn with(config: ApiConfig) -> Fixture {
        Fixture::with_policy(config, Policy::default())
    }

    pub fn with_policy(config: ApiConfig, policy: Policy) -> Fixture {
        Fixture::with_engine(config, policy, EngineConfig::default())
    }

    pub fn with_engine(config: ApiConfig, policy: Policy, engine: EngineConfig) -> Fixture {
        let source = Arc::new(MemoryIssueSource::new(Labels::default()));
        let queue = Arc::new(Faulty::new(MemoryQueue::new(policy), Faults::default()));
        let orchestrator = Orchestrator::builder(queue.clone(), source.clone())
            .config(engine)
            .build();
        let state = ApiState::new(orchestrator.clone(), config);
        Fixture {
            app: app(state.clone()),
            source,
            queue,
            orchestrator,
            state,
            next_issue: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Opens issue `acme/widgets#N` (N counting from 1) labelled ready and polls, so
    /// it is queued. Returns its id.
    pub async fn queue_issue(&self) -> TaskId {
        let n = self
            .next_issue
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.queue_issue_in("acme/widgets", n).await
    }

    pub async fn queue_issue_in(&self, repo: &str, n: u64) -> TaskId {
        let id = TaskId::new(repo, n).unwrap();
        self.source.open_issue(
            id.clone(),
            &format!("Issue {n}"),
            &["ai-ready", "enhancement"],
            Timestamp(n as i64),
        );
        self.orchestrator.poll_once().await.unwrap();
        id
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        call(&self.app, "GET", uri, None, Some(LOOPBACK), &[]).await
    }

    pub async fn post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        call(&self.app, "POST", uri, Some(body), Some(LOOPBACK), &[]).await
    }

    /// Waits until the engine lists worker `id` (it registers a worker before it
    /// looks for work, so a long poll from it is then waiting).
    pub async fn until_listed(&self, id: &str) {
        while !self
            .orchestrator
            .reads()
            .workers()
            .await
            .unwrap()
            .iter()
            .any(|w| w.id == id)
        {
            tokio::task::yield_now().await;
        }
    }

    /// Queues an issue whose first attempt, by `worker-1`, fails ("tests failed")
    /// and waits an hour for its retry; with `finish`, `worker-2` then takes the
    /// retry two hours on and completes it. Returns its id.
    pub async fn retried_task(&self, finish: bool) -> TaskId {
        use scrum_core::{Completion, Failure, LeaseKind, WorkQueue, WorkerId};
        let id = self.queue_issue().await;
        let now = self.orchestrator.now();
        let first = WorkerId::new("worker-1").unwrap();
        let held = self.queue.claim(&first, LeaseKind::Heartbeat, now).await;
        let token = held.unwrap().unwrap().lease().unwrap().token;
        let failure = Failure {
            reason: "tests failed".into(),
            retryable: true,
            ..Failure::default()
        };
        self.queue.fail(&id, token, failure, now).await.unwrap();
        if finish {
            let later = now.plus(std::time::Duration::from_secs(2 * 3600));
            let second = WorkerId::new("worker-2").unwrap();
            let held = self.queue.claim(&second, LeaseKind::Heartbeat, later).await;
            let token = held.unwrap().unwrap().lease().unwrap().token;
            let done = Completion {
                cost_usd: Some(0.5),
                ..Completion::default()
            };
            self.queue.complete(&id, token, done, later).await.unwrap();
        }
        id
    }

    pub async fn task(&self, id: &TaskId) -> scrum_core::Task {
        use scrum_core::WorkQueue;
        self.queue.get(id).await.unwrap().unwrap()
    }
}

/// Sends one request through the router. `peer` becomes `ConnectInfo`, as `serve`
/// would set it. The answer's body is parsed as JSON (`Value::String` when it is
/// not JSON).
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, _, text) = call_raw(app, method, uri, body, peer, headers).await;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

pub async fn call_raw(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    // A body is JSON unless the caller names its type (a form, say).
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if body.is_some() && !typed {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    if let Some(p) = peer {
        let addr: SocketAddr = p.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Asserts an error answer: status, `{"error":{"code","message"}}` and the code.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body: {}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {}",
        got.1
    );
}
