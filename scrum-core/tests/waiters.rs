//! A queued task wakes one waiting worker, not all of them: with 200 workers
//! long-polling, the store calls made to hand out one task stay a handful.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scrum_core::engine::Orchestrator;
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId};

const WORKERS: usize = 200;
const TASKS: u64 = 40;

/// The store calls a worker's long poll makes: its claims and its seen times.
fn dispatch_calls(queue: &Faulty<MemoryQueue>) -> u64 {
    let calls = queue.faults().calls();
    ["claim", "worker_seen", "workers_seen"]
        .iter()
        .map(|op| calls.get(*op).copied().unwrap_or(0))
        .sum()
}

/// Waits until `done` holds, failing after ten seconds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn issue(n: u64) -> ReadyIssue {
    ReadyIssue {
        id: TaskId::new("acme/widgets", n).unwrap(),
        title: format!("Issue {n}"),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(n as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_costs_a_few_store_calls_however_many_workers_wait() {
    let queue = Arc::new(Faulty::new(
        MemoryQueue::new(Policy::default()),
        Faults::default(),
    ));
    let source = Arc::new(MemoryIssueSource::default());
    let engine = Orchestrator::builder(queue.clone() as Arc<dyn WorkQueue>, source.clone()).build();

    // Every worker long-polls until it gets one task, then stops.
    let (got, mut handed) = tokio::sync::mpsc::unbounded_channel();
    for w in 0..WORKERS {
        let (engine, got) = (engine.clone(), got.clone());
        tokio::spawn(async move {
            let me = WorkerId::new(&format!("w{w}")).unwrap();
            loop {
                let wait = Duration::from_secs(60);
                let next = engine.next_work(&me, None, LeaseKind::Heartbeat, wait);
                if let Some(a) = next.await.expect("next_work") {
                    let _ = got.send(a);
                    return;
                }
            }
        });
    }
    // All of them have looked once and wait.
    until("every worker's first look", || {
        queue.faults().calls().get("claim").copied().unwrap_or(0) >= WORKERS as u64
    })
    .await;
    let before = dispatch_calls(&queue);

    for n in 1..=TASKS {
        engine.enqueue(issue(n)).await.unwrap();
        let a = tokio::time::timeout(Duration::from_secs(10), handed.recv())
            .await
            .expect("a waiting worker gets the task at once")
            .expect("a worker");
        assert_eq!(a.task, TaskId::new("acme/widgets", n).unwrap());
    }
    let per_task = (dispatch_calls(&queue) - before) as f64 / TASKS as f64;
    println!(
        "{per_task:.2} store calls per dispatched task with {WORKERS} workers waiting: {:?}",
        queue.faults().calls()
    );
    assert!(
        per_task <= 3.0,
        "{per_task:.2} store calls per dispatched task with {WORKERS} workers waiting"
    );

    // A poll that finds several issues wakes one worker, and each worker that takes
    // one wakes the next: every one goes out.
    for n in TASKS + 1..=TASKS + 20 {
        let id = TaskId::new("acme/widgets", n).unwrap();
        source.open_issue(id, "Polled", &["ai-ready"], Timestamp(n as i64));
    }
    engine.poll_once().await.unwrap();
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(10), handed.recv())
            .await
            .expect("each polled task goes to a waiting worker")
            .expect("a worker");
    }
}
