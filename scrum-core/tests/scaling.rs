//! The scaling signal's figures (`Reads::scaling`, `GET /scaling`) on the
//! in-memory backends: ready, in progress and blocked tasks, idle and busy workers,
//! and `desired_workers = min(MAX_WORKERS, MIN_IDLE_WORKERS + ready + in_progress)`.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{EngineConfig, Orchestrator, Scaling, ScalingSettings};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Completion, Labels, LeaseKind, TaskId, Timestamp, WorkerId};

fn id(n: u64) -> TaskId {
    TaskId::new("acme/widgets", n).unwrap()
}

/// Ready, in progress, blocked, busy and idle workers.
fn figures(s: &Scaling) -> (u64, u64, u64, u64, u64) {
    (
        s.ready,
        s.in_progress,
        s.blocked,
        s.busy_workers,
        s.idle_workers,
    )
}

/// Ready issues #1, #2, … with these bodies, each as a maintainer wrote it.
fn ready_issues(bodies: &[&str]) -> Arc<MemoryIssueSource> {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    for (n, body) in (1..).zip(bodies) {
        let title = format!("Issue {n}");
        source.open_issue(id(n), &title, &["ai-ready"], Timestamp(n as i64));
        if !body.is_empty() {
            source.edit_as(&id(n), &title, body, "maintainer", true, Timestamp(9));
        }
    }
    source
}

#[tokio::test(start_paused = true)]
async fn the_figures_follow_the_queue_and_the_fleet() {
    let source = ready_issues(&["", "Depends on #1", "", ""]);
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let config = EngineConfig {
        scaling: ScalingSettings {
            max_workers: 4,
            min_idle_workers: 1,
        },
        ..EngineConfig::default()
    };
    let o = Orchestrator::builder(queue, source.clone())
        .config(config)
        .build();
    o.poll_once().await.unwrap();
    let w = |n: u32| WorkerId::new(&format!("w{n}")).unwrap();
    let claim = |n: u32| {
        let o = o.clone();
        async move {
            o.next_work(&w(n), None, LeaseKind::Heartbeat, Duration::ZERO)
                .await
                .unwrap()
        }
    };

    // Nothing running: 3 ready (#2 waits for #1), no workers.
    let s = o.reads().scaling().await.unwrap();
    assert_eq!(
        s,
        Scaling {
            ready: 3,
            in_progress: 0,
            blocked: 1,
            idle_workers: 0,
            busy_workers: 0,
            desired_workers: 4,
        }
    );

    // Two workers take #1 and #3; one is left ready.
    let first = claim(1).await.unwrap();
    assert_eq!(first.task, id(1));
    assert_eq!(claim(2).await.unwrap().task, id(3));
    let s = o.reads().scaling().await.unwrap();
    assert_eq!(figures(&s), (1, 2, 1, 2, 0));
    assert_eq!(s.desired_workers, 4, "min(4, 1 + 1 + 2)");

    // #1 done (its issue still open, so #2 still waits); worker 1 is idle.
    o.complete(&w(1), &id(1), first.lease_token, Completion::default())
        .await
        .unwrap();
    let s = o.reads().scaling().await.unwrap();
    assert_eq!(figures(&s), (1, 1, 1, 1, 1));
    assert_eq!(s.desired_workers, 3, "1 idle + 1 ready + 1 in progress");
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_for_a_file_lock_counts_as_blocked() {
    let source = ready_issues(&["Files: src/**", "Files: src/a.rs", ""]);
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue, source.clone()).build();
    o.poll_once().await.unwrap();
    let w = WorkerId::new("w1").unwrap();
    let first = o
        .next_work(&w, None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.task, id(1));
    let s = o.reads().scaling().await.unwrap();
    assert_eq!(
        (s.ready, s.in_progress, s.blocked),
        (1, 1, 1),
        "#2 waits for #1's lock"
    );
    assert_eq!(
        s.desired_workers, 2,
        "no worker for the task that must wait"
    );
}
