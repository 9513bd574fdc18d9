//! A server with a queue of tasks already waiting, for load tests over real HTTP
//! (wrk with `scrum-http/scripts/cycle.lua`) and for schemathesis.
//!
//! ```sh
//! cargo run --release -p scrum-http --example serve_queue -- --tasks 100000
//! wrk -t50 -c50 -d15s -s scrum-http/scripts/cycle.lua http://127.0.0.1:8000
//! ```
//!
//! Flags: `--addr 127.0.0.1:8000`, `--tasks N` (queued before serving),
//! `--store memory|sqlite:PATH` (default memory), `--max-wait SECS` (long-poll cap,
//! default 30), `--token TOKEN` (require it), `--seconds N` (stop after N seconds;
//! default: at Ctrl-C). On exit it prints the queue's counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Labels, ReadyIssue, TaskId, Timestamp, WorkQueue};
use scrum_http::{ApiConfig, ApiState, ApiToken, serve};

struct Args {
    addr: String,
    tasks: u64,
    store: String,
    max_wait: u64,
    token: Option<String>,
    seconds: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8000".into(),
        tasks: 100_000,
        store: "memory".into(),
        max_wait: 30,
        token: None,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value(),
            "--tasks" => a.tasks = value().parse().expect("--tasks takes a number"),
            "--store" => a.store = value(),
            "--max-wait" => a.max_wait = value().parse().expect("--max-wait takes seconds"),
            "--token" => a.token = Some(value()),
            "--seconds" => a.seconds = Some(value().parse().expect("--seconds takes a number")),
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let policy = Policy::default();
    let queue: Arc<dyn WorkQueue> = match a.store.strip_prefix("sqlite:") {
        Some(path) => scrum_store::open(&format!("sqlite://{path}"), policy)
            .await
            .expect("open the SQLite store"),
        None => Arc::new(MemoryQueue::new(policy)),
    };
    let started = Instant::now();
    for n in 1..=a.tasks {
        let issue = ReadyIssue {
            id: TaskId::new("acme/widgets", n).unwrap(),
            title: format!("Load test issue {n}"),
            body: "Make the widget faster.".into(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(n as i64),
        };
        queue.enqueue(issue, Timestamp(0)).await.expect("enqueue");
    }
    eprintln!(
        "queued {} tasks in {:.1?} ({})",
        a.tasks,
        started.elapsed(),
        a.store
    );

    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), source)
        .config(EngineConfig {
            max_wait: Duration::from_secs(a.max_wait),
            ..EngineConfig::default()
        })
        .build();
    let config = ApiConfig {
        token: a
            .token
            .map(|t| ApiToken::new(t).expect("a valid API token")),
        ..ApiConfig::default()
    };
    eprintln!("{}", config.access_summary());
    let listener = tokio::net::TcpListener::bind(&a.addr).await.expect("bind");
    eprintln!("listening on http://{}", listener.local_addr().unwrap());
    let seconds = a.seconds;
    let shutdown = async move {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    serve(listener, ApiState::new(orchestrator, config), shutdown)
        .await
        .expect("serve");
    let c = queue.counts().await.expect("counts");
    eprintln!(
        "pending {} in_progress {} completed {} failed {}",
        c.pending, c.in_progress, c.completed, c.failed
    );
}
