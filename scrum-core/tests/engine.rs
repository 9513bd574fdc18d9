//! The engine's duties and work API, on the in-memory backends and tokio's paused
//! clock.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{EngineConfig, Orchestrator, ReportRef, WorkerStatus};
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue, ScriptedProbe};
use scrum_core::source::MockIssueSource;
use scrum_core::state::Policy;
use scrum_core::{
    Completion, Error, HostHealth, IssueSource, Labels, LeaseKind, ProbeReport, TaskId, TaskState,
    Timestamp, WorkQueue, WorkerId,
};

fn id(n: u64) -> TaskId {
    TaskId::new("acme/widgets", n).unwrap()
}

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name).unwrap()
}

struct Fixture {
    github: Arc<Faulty<MemoryIssueSource>>,
    queue: Arc<MemoryQueue>,
    orchestrator: Orchestrator,
}

fn fixture(issues: u64) -> Fixture {
    let github = Arc::new(Faulty::new(
        MemoryIssueSource::new(Labels::default()),
        Faults::default(),
    ));
    for n in 1..=issues {
        github.inner().open_issue(
            id(n),
            &format!("Issue {n}"),
            &["ai-ready"],
            Timestamp(n as i64),
        );
    }
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), github.clone()).build();
    Fixture {
        github,
        queue,
        orchestrator,
    }
}

#[tokio::test(start_paused = true)]
async fn a_github_error_is_never_read_as_an_empty_backlog() {
    let f = fixture(2);
    f.orchestrator.poll_once().await.unwrap();
    f.github.faults().fail_next(1);
    assert!(f.orchestrator.poll_once().await.is_err());
    let status = f.orchestrator.reads().status();
    assert!(!status.github_connected);
    assert!(status.github_reason.unwrap().contains("injected fault"));
    // Nothing was cancelled for want of a listing.
    assert_eq!(f.queue.counts().await.unwrap().pending, 2);
    f.orchestrator.poll_once().await.unwrap();
    assert!(f.orchestrator.reads().status().github_connected);
}

#[tokio::test(start_paused = true)]
async fn closed_and_unlabelled_issues_are_cancelled() {
    let f = fixture(3);
    f.orchestrator.poll_once().await.unwrap();
    let held = f
        .orchestrator
        .next_work(&worker("w"), None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.task, id(1));
    f.github.inner().close(&id(1));
    f.github.inner().set_labels(&id(2), &["bug"]);
    let report = f.orchestrator.poll_once().await.unwrap();
    assert_eq!((report.listed, report.cancelled), (1, 2));
    assert_eq!(
        f.queue.get(&id(2)).await.unwrap().unwrap().state(),
        TaskState::Cancelled
    );
    // The holder of #1 learns on its next heartbeat and then hands it back.
    let w = worker("w");
    let reply = f
        .orchestrator
        .heartbeat(&w, &id(1), held.lease_token)
        .await
        .unwrap();
    assert!(reply.cancel);
    f.orchestrator
        .release(&w, &id(1), held.lease_token, "cancelled")
        .await
        .unwrap();
    assert_eq!(
        f.queue.get(&id(1)).await.unwrap().unwrap().state(),
        TaskState::Cancelled
    );
    f.orchestrator.dispatch_once().await.unwrap();
    let labels = f.github.inner().issue(&id(1)).unwrap().labels;
    assert_eq!(
        labels,
        vec!["ai-ready".to_string()],
        "in-progress removed, nothing else"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_gets_a_task_queued_while_it_waits() {
    let f = fixture(0);
    let o = f.orchestrator.clone();
    let waiting = tokio::spawn(async move {
        let asked = tokio::time::Instant::now();
        let got = o
            .next_work(
                &worker("w"),
                None,
                LeaseKind::Heartbeat,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        (got, asked.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    f.github
        .inner()
        .open_issue(id(9), "late", &["ai-ready"], Timestamp(0));
    f.orchestrator.poll_once().await.unwrap();
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.unwrap().task, id(9));
    assert_eq!(
        waited,
        Duration::from_secs(5),
        "woken at once, not at the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn an_issue_enqueued_directly_wakes_a_long_poll() {
    let f = fixture(0);
    let o = f.orchestrator.clone();
    let waiting = tokio::spawn(async move {
        let asked = tokio::time::Instant::now();
        let got = o
            .next_work(
                &worker("w"),
                None,
                LeaseKind::Heartbeat,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        (got, asked.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let issue = scrum_core::ReadyIssue {
        id: id(4),
        title: "from a webhook".into(),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(0),
    };
    let queued = f.orchestrator.enqueue(issue.clone()).await.unwrap();
    assert_eq!(queued, scrum_core::Enqueued::Created);
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.unwrap().task, id(4));
    assert_eq!(waited, Duration::from_secs(3));
    assert_eq!(
        f.orchestrator.enqueue(issue).await.unwrap(),
        scrum_core::Enqueued::Unchanged
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_long_poll_returns_at_its_deadline() {
    let f = fixture(0);
    let asked = tokio::time::Instant::now();
    let got = f
        .orchestrator
        .next_work(
            &worker("w"),
            None,
            LeaseKind::Heartbeat,
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert!(got.is_none());
    assert_eq!(
        asked.elapsed(),
        Duration::from_secs(30),
        "capped at max_wait"
    );
}

#[tokio::test(start_paused = true)]
async fn paused_dispatch_and_draining_workers_get_no_work() {
    let f = fixture(2);
    f.orchestrator.poll_once().await.unwrap();
    let ask = |name: &'static str| {
        let o = f.orchestrator.clone();
        async move {
            o.next_work(&worker(name), None, LeaseKind::Heartbeat, Duration::ZERO)
                .await
                .unwrap()
        }
    };
    f.orchestrator.operator().pause();
    assert!(ask("a").await.is_none());
    assert!(f.orchestrator.reads().status().paused);
    f.orchestrator.operator().resume();
    f.orchestrator
        .operator()
        .drain(&worker("b"), true)
        .await
        .unwrap();
    assert!(ask("b").await.is_none());
    let workers = f.orchestrator.reads().workers().await.unwrap();
    assert_eq!(
        workers.iter().find(|w| w.id == "b").unwrap().status,
        WorkerStatus::Draining
    );
    assert!(ask("a").await.is_some());
}

#[tokio::test(start_paused = true)]
async fn seed_clients_are_matched_by_worker_and_issue_number() {
    let f = fixture(1);
    f.orchestrator.poll_once().await.unwrap();
    let w = worker("legacy");
    let a = f
        .orchestrator
        .next_work(&w, None, LeaseKind::RunTime, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    // Two hours later, with no heartbeat, the task is still held.
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert!(f.orchestrator.reap_once().await.unwrap().is_empty());
    let legacy = |worker: &str, repo: Option<&str>| ReportRef::new(worker, 1, repo, None).unwrap();
    let (id, token) = f
        .orchestrator
        .resolve(&legacy("legacy", None))
        .await
        .unwrap();
    assert_eq!(token, a.lease_token);
    let other = f.orchestrator.resolve(&legacy("someone-else", None)).await;
    assert_eq!(other.unwrap_err().kind(), scrum_core::ErrorKind::LeaseLost);
    let unknown = f
        .orchestrator
        .resolve(&legacy("legacy", Some("acme/other")))
        .await;
    assert_eq!(unknown.unwrap_err().kind(), scrum_core::ErrorKind::NotFound);
    // With a token, the report must still name the worker holding the lease.
    let confused = ReportRef {
        token: Some(a.lease_token),
        ..legacy("someone-else", Some("acme/widgets"))
    };
    let refused = f.orchestrator.resolve(&confused).await;
    assert_eq!(
        refused.unwrap_err().kind(),
        scrum_core::ErrorKind::LeaseLost
    );
    f.orchestrator
        .complete(&w, &id, token, Completion::default())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_client_without_heartbeats_that_asks_again_lost_its_task() {
    async fn ask(o: &Orchestrator, w: &str, lease: LeaseKind) -> scrum_core::Assignment {
        o.next_work(&worker(w), None, lease, Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
    }
    let f = fixture(2);
    f.orchestrator.poll_once().await.unwrap();
    let first = ask(&f.orchestrator, "legacy", LeaseKind::RunTime).await;
    let second = ask(&f.orchestrator, "legacy", LeaseKind::RunTime).await;
    assert_ne!(first.task, second.task);
    let abandoned = f.queue.get(&first.task).await.unwrap().unwrap();
    assert_eq!(
        abandoned.state(),
        TaskState::Pending,
        "retried: attempts remain"
    );
    assert_eq!(abandoned.last_error(), Some(scrum_core::engine::ABANDONED));

    // A heartbeating worker may hold several tasks: asking again ends nothing.
    let f = fixture(2);
    f.orchestrator.poll_once().await.unwrap();
    let first = ask(&f.orchestrator, "modern", LeaseKind::Heartbeat).await;
    ask(&f.orchestrator, "modern", LeaseKind::Heartbeat).await;
    let held = f.queue.get(&first.task).await.unwrap().unwrap();
    assert_eq!(held.state(), TaskState::InProgress);
}

#[tokio::test(start_paused = true)]
async fn probed_hosts_show_their_health_on_the_worker_that_calls_from_them() {
    let probe = Arc::new(ScriptedProbe::new());
    probe.set(
        "127.0.0.2",
        ProbeReport {
            health: HostHealth::Degraded,
            rtt: Some(Duration::from_millis(3)),
            reason: Some("ai-scrum-worker is inactive".into()),
        },
        "",
    );
    let f = fixture(1);
    let o = Orchestrator::builder(f.queue.clone(), f.github.clone())
        .probe(probe)
        .config(EngineConfig {
            worker_hosts: vec!["127.0.0.2".into(), "127.0.0.3".into()],
            ..EngineConfig::default()
        })
        .build();
    o.next_work(
        &worker("worker-1"),
        Some("127.0.0.2".parse().unwrap()),
        LeaseKind::Heartbeat,
        Duration::ZERO,
    )
    .await
    .unwrap();
    o.probe_once().await;
    let workers = o.reads().workers().await.unwrap();
    let w1 = workers.iter().find(|w| w.id == "worker-1").unwrap();
    assert_eq!(
        (w1.health, w1.status),
        (HostHealth::Degraded, WorkerStatus::Idle)
    );
    let silent = workers.iter().find(|w| w.id == "127.0.0.3").unwrap();
    assert_eq!(
        (silent.health, silent.status),
        (HostHealth::Unreachable, WorkerStatus::Offline)
    );
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_retries_a_failing_label_call_until_github_accepts_it() {
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let mut github = MockIssueSource::new();
    let mut calls = mockall::Sequence::new();
    github
        .expect_set_labels()
        .times(2)
        .in_sequence(&mut calls)
        .returning(|_, _, _| Err(Error::unavailable("GitHub is down")));
    github
        .expect_set_labels()
        .times(1)
        .in_sequence(&mut calls)
        .withf(|id, add, remove| {
            id.number() == 1 && add == ["ai-in-progress".to_string()] && remove.is_empty()
        })
        .returning(|_, _, _| Ok(()));
    let issue = scrum_core::ReadyIssue {
        id: id(1),
        title: "t".into(),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(0),
    };
    queue.enqueue(issue, Timestamp(0)).await.unwrap();
    let github: Arc<dyn IssueSource> = Arc::new(github);
    let o = Orchestrator::builder(queue.clone(), github).build();
    for _ in 0..2 {
        let r = o.dispatch_once().await.unwrap();
        assert_eq!((r.applied, r.failed), (0, 1));
        // Backing off: the next round does not try it before its time.
        assert_eq!(o.dispatch_once().await.unwrap(), Default::default());
        tokio::time::advance(Duration::from_secs(600)).await;
    }
    let failing = &queue.pending_effects(10).await.unwrap()[0];
    assert_eq!((failing.failures, failing.dead), (2, false));
    assert_eq!(failing.last_error.as_deref(), Some("GitHub is down"));
    let r = o.dispatch_once().await.unwrap();
    assert_eq!((r.applied, r.failed), (1, 0));
    assert!(queue.pending_effects(10).await.unwrap().is_empty());
    // Nothing left: a fourth round makes no call (the mock would panic).
    assert_eq!(o.dispatch_once().await.unwrap().applied, 0);
}

#[tokio::test(start_paused = true)]
async fn a_dispatch_round_stops_when_another_orchestrator_takes_the_lead() {
    // Two effects waiting in a shared store; GitHub accepts the first, and meanwhile
    // another orchestrator took the leader lease.
    let effects: Vec<scrum_core::OutboxEntry> = (1..=2)
        .map(|n| {
            let issue = scrum_core::ReadyIssue {
                id: id(n),
                title: "t".into(),
                body: String::new(),
                labels: vec!["ai-ready".into()],
                created_at: Timestamp(0),
            };
            let step = scrum_core::state::new_task(issue, Timestamp(0), &Policy::default());
            scrum_core::OutboxEntry::new(n, step.effects[0].clone())
        })
        .collect();
    let mut queue = scrum_core::queue::MockWorkQueue::new();
    queue.expect_policy().return_const(Policy::default());
    queue
        .expect_due_effects()
        .times(1)
        .returning(move |_, _| Ok(effects.clone()));
    queue
        .expect_ack_effect()
        .times(1)
        .withf(|id, _| *id == 1)
        .returning(|_, _| Ok(()));
    queue.expect_lead().times(1).returning(|_, _, _| Ok(false));
    let mut github = MockIssueSource::new();
    github
        .expect_set_labels()
        .times(1)
        .withf(|id, _, _| id.number() == 1)
        .returning(|_, _, _| Ok(()));
    let o =
        Orchestrator::builder(Arc::new(queue), Arc::new(github) as Arc<dyn IssueSource>).build();
    let r = o.dispatch_once().await.unwrap();
    assert_eq!(
        (r.applied, r.failed),
        (1, 0),
        "issue 2 is left to the new leader"
    );
    assert!(!o.reads().status().leader);
}
