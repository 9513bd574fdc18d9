//! The engine's reads for the dashboard (`scrum_core::engine::reads`): tasks found
//! by repository and title, the outcomes of the last hour, one task's waiting
//! effects. On the in-memory backends and tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{Orchestrator, Outcomes, TaskSearch};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{
    Completion, Failure, Labels, LeaseKind, TaskId, TaskState, Timestamp, WorkQueue, WorkerId,
};

async fn engine(issues: &[(&str, u64, &str)]) -> (Arc<MemoryQueue>, Orchestrator) {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    for (repo, n, title) in issues {
        let id = TaskId::new(repo, *n).unwrap();
        source.open_issue(id, title, &["ai-ready"], Timestamp(*n as i64));
    }
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue.clone(), source).build();
    o.poll_once().await.unwrap();
    (queue, o)
}

fn search(repository: Option<&str>, text: Option<&str>, offset: usize, limit: usize) -> TaskSearch {
    TaskSearch {
        states: Vec::new(),
        repository: repository.map(str::to_string),
        text: text.map(str::to_string),
        offset,
        limit,
        blocked: false,
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_are_found_by_repository_and_title_a_page_at_a_time() {
    let (_, o) = engine(&[
        ("acme/widgets", 1, "Export widgets as CSV"),
        ("acme/widgets", 2, "Fix the importer"),
        ("acme/gadgets", 3, "Export gadgets"),
        ("acme/gadgets", 4, "Export GADGET logs"),
    ])
    .await;
    let ids = |page: scrum_core::engine::TaskPage| -> Vec<String> {
        page.tasks.iter().map(|t| t.id.to_string()).collect()
    };
    let all = o
        .reads()
        .find_tasks(&search(None, None, 0, 10))
        .await
        .unwrap();
    assert_eq!(all.tasks.len(), 4);
    assert_eq!(
        all.total, None,
        "an unnarrowed page leaves the total to the counts"
    );
    let export = o
        .reads()
        .find_tasks(&search(None, Some("export"), 0, 10))
        .await
        .unwrap();
    assert_eq!(export.total, Some(3));
    let gadgets = search(Some("acme/gadgets"), Some("gadget"), 0, 1);
    let first = o.reads().find_tasks(&gadgets).await.unwrap();
    assert_eq!(
        (ids(first.clone()), first.total),
        (vec!["acme/gadgets#3".to_string()], Some(2))
    );
    let second = o
        .reads()
        .find_tasks(&TaskSearch {
            offset: 1,
            ..gadgets
        })
        .await
        .unwrap();
    assert_eq!(ids(second), ["acme/gadgets#4"], "title search ignores case");
    let by_id = o
        .reads()
        .find_tasks(&search(None, Some("ACME/widgets#2"), 0, 10))
        .await
        .unwrap();
    assert_eq!(ids(by_id), ["acme/widgets#2"]);
    let completed = TaskSearch {
        states: vec![TaskState::Completed],
        ..search(None, Some("export"), 0, 10)
    };
    assert_eq!(
        o.reads().find_tasks(&completed).await.unwrap().total,
        Some(0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_hour_counts_what_finished_in_it() {
    let (_, o) = engine(&[
        ("acme/widgets", 1, "One"),
        ("acme/widgets", 2, "Two"),
        ("acme/widgets", 3, "Three"),
    ])
    .await;
    let w = WorkerId::new("worker-1").unwrap();
    let claim = || async {
        o.next_work(&w, None, LeaseKind::Heartbeat, Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
    };
    let a = claim().await;
    o.complete(&w, &a.task, a.lease_token, Completion::default())
        .await
        .unwrap();
    let b = claim().await;
    let give_up = Failure {
        reason: "no".into(),
        retryable: false,
        ..Failure::default()
    };
    o.fail(&w, &b.task, b.lease_token, give_up).await.unwrap();
    let hour = Duration::from_secs(3600);
    let expected = Outcomes {
        completed: 1,
        failed: 1,
    };
    assert_eq!(o.reads().outcomes_within(hour).await.unwrap(), expected);
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert_eq!(
        o.reads().outcomes_within(hour).await.unwrap(),
        Outcomes::default()
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_lists_its_own_waiting_effects_until_they_land() {
    let (queue, o) = engine(&[("acme/widgets", 1, "One"), ("acme/widgets", 2, "Two")]).await;
    let one = TaskId::new("acme/widgets", 1).unwrap();
    let waiting = o.reads().task_effects(&one).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert!(waiting.iter().all(|e| e.effect.task == one));
    queue.ack_effect(waiting[0].id, o.now()).await.unwrap();
    assert!(o.reads().task_effects(&one).await.unwrap().is_empty());
    let two = TaskId::new("acme/widgets", 2).unwrap();
    assert_eq!(o.reads().task_effects(&two).await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn blocked_tasks_are_found_apart() {
    let (queue, o) = engine(&[
        ("acme/widgets", 1, "Export widgets"),
        ("acme/widgets", 2, "Import widgets"),
    ])
    .await;
    let blocked = scrum_core::deps::Blocked {
        by: vec![TaskId::new("acme/widgets", 9).unwrap()],
        problem: None,
        since: o.now(),
    };
    queue
        .apply(
            &TaskId::new("acme/widgets", 2).unwrap(),
            scrum_core::state::Event::Block { blocked },
            o.now(),
        )
        .await
        .unwrap();
    let only_blocked = TaskSearch {
        states: vec![TaskState::Pending],
        blocked: true,
        ..search(None, None, 0, 10)
    };
    let found = o.reads().find_tasks(&only_blocked).await.unwrap();
    let ids: Vec<String> = found.tasks.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(
        (ids, found.total),
        (vec!["acme/widgets#2".to_string()], Some(1))
    );
}
