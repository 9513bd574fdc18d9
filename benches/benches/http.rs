//! Benches of the HTTP API: one claim → complete cycle with lease tokens through the
//! router (`oneshot`, no socket), and the same cycle over a loopback socket with
//! `OrchestratorClient`, with 10,000 tasks waiting on the in-memory queue.
//!
//! `cargo bench -p scrum-benches --bench http`
//!
//! For whole-fleet figures (50 clients of the Python orchestrator's API under wrk,
//! 200 long-polling workers) see the load examples in `scrum-http` and its README.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Labels, ReadyIssue, TaskId, Timestamp, WorkQueue};
use scrum_http::wire::{CompleteRequest, LeaseMode, TaskRef};
use scrum_http::{ApiConfig, ApiState, OrchestratorClient, app, serve};
use tower::ServiceExt;

const WAITING: u64 = 10_000;

/// An orchestrator whose queue holds `n` tasks from `first` on.
/// An engine over a queue of `n` waiting tasks, and that queue (to refill it).
async fn orchestrator(first: u64, n: u64) -> (Orchestrator, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    fill(&*queue, first, n).await;
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    (Orchestrator::builder(queue.clone(), source).build(), queue)
}

async fn fill(queue: &dyn WorkQueue, first: u64, n: u64) {
    for k in first..first + n {
        let issue = ReadyIssue {
            id: TaskId::new("acme/widgets", k).unwrap(),
            title: format!("Issue {k}"),
            body: "Implement the thing described here.".into(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(k as i64),
        };
        queue.enqueue(issue, Timestamp(0)).await.unwrap();
    }
}

fn complete_body(worker: &str, work: &serde_json::Value) -> String {
    serde_json::json!({
        "worker_id": worker,
        "issue_number": work["issue_number"],
        "repository": work["repository"],
        "lease_token": work["lease_token"],
        "pr_url": "https://github.com/acme/widgets/pull/1",
        "success": true,
    })
    .to_string()
}

async fn send(router: &axum::Router, req: Request<Body>) -> serde_json::Value {
    let mut req = req;
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = router.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn router_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1));
    g.bench_function("router cycle (claim + complete), 10k waiting", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let (o, _) = orchestrator(1, WAITING + iters).await;
                let router = app(ApiState::new(o, ApiConfig::default()));
                let start = Instant::now();
                for _ in 0..iters {
                    let next = Request::get("/work/next?worker_id=w&lease=heartbeat")
                        .body(Body::empty())
                        .unwrap();
                    let work = send(&router, next).await;
                    let done = Request::post("/work/complete")
                        .header("content-type", "application/json")
                        .body(Body::from(complete_body("w", &work)))
                        .unwrap();
                    send(&router, done).await;
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn socket_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (client, queue_handle) = rt.block_on(async {
        let (o, queue) = orchestrator(1, WAITING).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(
            listener,
            ApiState::new(o, ApiConfig::default()),
            std::future::pending(),
        ));
        (OrchestratorClient::new(&url).unwrap(), queue)
    });
    let mut next_issue = WAITING + 1;
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("socket cycle (claim + complete), 10k waiting", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                // Keep the queue at 10,000 waiting: add what this sample will take.
                fill(&*queue_handle, next_issue, iters).await;
                next_issue += iters;
                let start = Instant::now();
                for _ in 0..iters {
                    let work = client
                        .next_work("w", Duration::ZERO, LeaseMode::Heartbeat)
                        .await
                        .unwrap()
                        .expect("a task is waiting");
                    client
                        .complete(&CompleteRequest {
                            task: TaskRef {
                                worker_id: "w".into(),
                                issue_number: work.issue_number,
                                repository: Some(work.repository),
                                lease_token: Some(work.lease_token),
                            },
                            pr_url: Some("https://github.com/acme/widgets/pull/1".into()),
                            success: true,
                            error: None,
                            cost_usd: None,
                            tokens: None,
                            revisions: None,
                        })
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, router_cycle, socket_cycle);
criterion_main!(benches);
