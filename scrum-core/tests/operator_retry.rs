//! An operator's retry of a task that failed for good: the failure's labels took
//! the ready label off the issue, and the new run must not read as unlabelled and
//! be cancelled by the next poll. On the in-memory backends.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Failure, Labels, LeaseKind, TaskId, TaskState, Timestamp, WorkQueue, WorkerId};

#[tokio::test(start_paused = true)]
async fn a_retried_run_is_labelled_ready_again_and_survives_the_poll() {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let id = TaskId::new("acme/widgets", 1).unwrap();
    source.open_issue(id.clone(), "Flaky", &["ai-ready"], Timestamp(1));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue.clone(), source.clone()).build();
    o.poll_once().await.unwrap();
    let w = WorkerId::new("worker-1").unwrap();
    let a = o
        .next_work(&w, None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let give_up = Failure {
        reason: "no".into(),
        retryable: false,
        ..Failure::default()
    };
    o.fail(&w, &a.task, a.lease_token, give_up).await.unwrap();
    o.dispatch_once().await.unwrap();
    let labels = source.issue(&id).unwrap().labels;
    assert!(!labels.iter().any(|l| l == "ai-ready"), "{labels:?}");

    o.operator().retry(&id).await.unwrap();
    // Polled before the new run's labels are written: still the operator's run.
    o.poll_once().await.unwrap();
    assert_eq!(
        queue.get(&id).await.unwrap().unwrap().state(),
        TaskState::Pending
    );
    // Its labels put the issue back to ready and in progress, without the outcome.
    o.dispatch_once().await.unwrap();
    let labels = source.issue(&id).unwrap().labels;
    for want in ["ai-ready", "ai-in-progress"] {
        assert!(
            labels.iter().any(|l| l == want),
            "{want} missing: {labels:?}"
        );
    }
    assert!(!labels.iter().any(|l| l == "ai-failed"), "{labels:?}");
    o.poll_once().await.unwrap();
    let task = queue.get(&id).await.unwrap().unwrap();
    assert_eq!((task.state(), task.run.number), (TaskState::Pending, 2));
    // A person who takes the ready label off still cancels it.
    source.set_labels(&id, &["ai-in-progress"]);
    o.poll_once().await.unwrap();
    assert_eq!(
        queue.get(&id).await.unwrap().unwrap().state(),
        TaskState::Cancelled
    );
}
