//! Stopping the leader's duties does not wait for a slow round: a write-back round
//! of spaced writes to a slow GitHub could otherwise outlast a service manager's
//! stop timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scrum_core::engine::Orchestrator;
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Completion, LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_does_not_wait_for_a_round_in_githubs_hands() {
    let source = Arc::new(Faulty::new(MemoryIssueSource::default(), Faults::default()));
    let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::new(Policy::default()));
    let engine = Orchestrator::builder(queue.clone(), source.clone()).build();
    let id = TaskId::new("acme/widgets", 1).unwrap();
    engine
        .enqueue(ReadyIssue {
            id: id.clone(),
            title: "Slow write-back".into(),
            body: String::new(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(1),
        })
        .await
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    let a = engine
        .next_work(&worker, None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .expect("the task");
    engine
        .complete(&worker, &id, a.lease_token, Completion::default())
        .await
        .unwrap();

    // GitHub now answers after an hour.
    source.faults().delay(Duration::from_secs(3600));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let duties = engine.clone();
    let run = tokio::spawn(async move {
        duties
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    // Until the write-back is in GitHub's hands.
    let deadline = Instant::now() + Duration::from_secs(10);
    let writing = || {
        let calls = source.faults().calls();
        ["comment", "set_labels", "add_labels"]
            .iter()
            .any(|op| calls.contains_key(*op))
    };
    while !writing() {
        assert!(
            Instant::now() < deadline,
            "no write-back began: {:?}",
            source.faults().calls()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the duties stopped without waiting for the write")
        .unwrap();
    let pending = queue.pending_effects(10).await.unwrap();
    assert!(
        pending.iter().any(|e| e.effect.task == id),
        "the write left off stays in the outbox for the next leader: {pending:?}"
    );
}
