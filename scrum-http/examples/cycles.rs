//! Claim+complete cycles through the `Orchestrator`, the calls the HTTP handlers
//! make for `GET /work/next` and `POST /work/complete`, without HTTP: the store's
//! and the engine's share of a cycle, for profiling.
//!
//! ```sh
//! cargo build --release -p scrum-http --example cycles
//! target/release/examples/cycles --store sqlite:/tmp/cycles.sqlite3 --tasks 20000 --cycles 10000
//! ```
//!
//! Counting instructions per cycle with callgrind, steady on a noisy machine: run
//! twice with the same `--tasks` and different `--cycles`, and divide the difference
//! of the totals by the difference of the cycles (that takes the set-up out):
//!
//! ```sh
//! valgrind --tool=callgrind --callgrind-out-file=a.out target/release/examples/cycles \
//!     --store sqlite:/tmp/a.sqlite3 --tasks 12000 --cycles 2000
//! valgrind --tool=callgrind --callgrind-out-file=b.out target/release/examples/cycles \
//!     --store sqlite:/tmp/b.sqlite3 --tasks 12000 --cycles 12000
//! ```
//!
//! Flags: `--store memory|sqlite:PATH` (default memory; the file is replaced),
//! `--tasks N` (queued first, default 20,000), `--cycles N` (default: `--tasks`),
//! `--workers N` (concurrent workers, each looping claim then complete, default
//! 50 as the wrk script's connections: their writes share SQLite transactions as
//! under HTTP load). It prints the time per cycle, the cycles' wall-clock latency
//! (p50, p99, the slowest) and the queue's counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{
    Assignment, Completion, Labels, LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId,
};

struct Args {
    store: String,
    tasks: u64,
    cycles: Option<u64>,
    workers: u64,
}

fn args() -> Args {
    let mut a = Args {
        store: "memory".into(),
        tasks: 20_000,
        cycles: None,
        workers: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => a.store = value(),
            "--tasks" => a.tasks = value().parse().expect("--tasks takes a number"),
            "--cycles" => a.cycles = Some(value().parse().expect("--cycles takes a number")),
            "--workers" => a.workers = value().parse().expect("--workers takes a number"),
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    a
}

/// One claim and its completion, as a worker makes them.
async fn cycle(orchestrator: &Orchestrator, worker: &WorkerId) {
    let work: Assignment = orchestrator
        .next_work(worker, None, LeaseKind::RunTime, Duration::ZERO)
        .await
        .expect("claim")
        .expect("a task is waiting");
    let done = Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/1".into()),
        ..Completion::default()
    };
    orchestrator
        .complete(worker, &work.task, work.lease_token, done)
        .await
        .expect("complete");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let policy = Policy::default();
    let queue: Arc<dyn WorkQueue> = match a.store.strip_prefix("sqlite:") {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            scrum_store::open(&format!("sqlite://{path}"), policy)
                .await
                .expect("open the SQLite store")
        }
        None => Arc::new(MemoryQueue::new(policy)),
    };
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
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), source).build();
    let workers: Vec<WorkerId> = (1..=a.workers.max(1))
        .map(|n| WorkerId::new(&format!("w{n}")).unwrap())
        .collect();

    let cycles = a.cycles.unwrap_or(a.tasks).min(a.tasks);
    let left = Arc::new(AtomicU64::new(cycles));
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for worker in workers {
        let (orchestrator, left) = (orchestrator.clone(), left.clone());
        loops.spawn(async move {
            let mut took = Vec::new();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let start = Instant::now();
                cycle(&orchestrator, &worker).await;
                took.push(start.elapsed());
            }
            took
        });
    }
    let mut latency: Vec<Duration> = loops.join_all().await.concat();
    let took = started.elapsed();
    latency.sort_unstable();
    let at = |q: f64| {
        latency.get(((latency.len() as f64 * q) as usize).min(latency.len().saturating_sub(1)))
    };
    eprintln!(
        "{cycles} cycles on {} in {took:.2?}: {:.1} µs per cycle; latency p50 {:.2?} p99 {:.2?} max {:.2?}",
        a.store,
        took.as_secs_f64() * 1e6 / cycles.max(1) as f64,
        at(0.5).copied().unwrap_or_default(),
        at(0.99).copied().unwrap_or_default(),
        latency.last().copied().unwrap_or_default(),
    );
    let c = queue.counts().await.expect("counts");
    eprintln!(
        "pending {} in_progress {} completed {}",
        c.pending, c.in_progress, c.completed
    );
}
