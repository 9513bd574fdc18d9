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

/// The memory tracker, except that it refuses every write to one repository (as
/// GitHub does once a token loses write access there), counting them.
struct RefusingSource {
    inner: MemoryIssueSource,
    refused: &'static str,
    refusals: std::sync::atomic::AtomicUsize,
}

impl RefusingSource {
    fn check(&self, id: &TaskId) -> scrum_core::Result<()> {
        if id.repo() != self.refused {
            return Ok(());
        }
        self.refusals
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(Error::new(
            scrum_core::ErrorKind::Forbidden,
            "Resource not accessible by personal access token",
        ))
    }
}

#[async_trait::async_trait]
impl IssueSource for RefusingSource {
    async fn list_ready(&self) -> scrum_core::Result<Vec<scrum_core::ReadyIssue>> {
        self.inner.list_ready().await
    }
    async fn issue_state(&self, id: &TaskId) -> scrum_core::Result<scrum_core::IssueState> {
        self.inner.issue_state(id).await
    }
    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> scrum_core::Result<()> {
        self.check(id)?;
        self.inner.add_labels(id, labels).await
    }
    async fn remove_label(&self, id: &TaskId, label: &str) -> scrum_core::Result<()> {
        self.check(id)?;
        self.inner.remove_label(id, label).await
    }
    async fn comment(
        &self,
        id: &TaskId,
        marker: &str,
        body: &str,
    ) -> scrum_core::Result<scrum_core::Commented> {
        self.check(id)?;
        self.inner.comment(id, marker, body).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_repository_that_refuses_writes_is_probed_with_one_effect_a_round() {
    let github = Arc::new(RefusingSource {
        inner: MemoryIssueSource::new(Labels::default()),
        refused: "acme/refused",
        refusals: Default::default(),
    });
    let refused = |n| TaskId::new("acme/refused", n).unwrap();
    for n in 1..=30 {
        let issue = &format!("Refused {n}");
        github
            .inner
            .open_issue(refused(n), issue, &["ai-ready"], Timestamp(n as i64));
    }
    let open = TaskId::new("acme/open", 1).unwrap();
    let newest = Timestamp(1_000);
    github
        .inner
        .open_issue(open.clone(), "Open", &["ai-ready"], newest);
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue.clone(), github.clone() as Arc<dyn IssueSource>).build();
    o.poll_once().await.unwrap();

    // The open repository's effect lands in the first round, behind one refusal.
    let r = o.dispatch_once().await.unwrap();
    assert_eq!((r.applied, r.failed), (1, 1));
    assert_eq!(github.refusals.load(std::sync::atomic::Ordering::SeqCst), 1);
    let labels = github.inner.issue_state(&open).await.unwrap().labels;
    assert!(labels.contains(&"ai-in-progress".to_string()), "{labels:?}");

    // Each later round probes the refusing repository with one effect, not 30.
    for round in 2..=4 {
        o.dispatch_once().await.unwrap();
        let refusals = github.refusals.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(refusals, round, "round {round}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_backlog_is_admitted_in_batches_and_an_issue_elsewhere_at_once() {
    let github = Arc::new(MemoryIssueSource::new(Labels::default()));
    for n in 1..=150 {
        let id = TaskId::new("acme/backlog", n).unwrap();
        github.open_issue(id, "Backlog", &["ai-ready"], Timestamp(n as i64));
    }
    let late = TaskId::new("acme/other", 1).unwrap();
    github.open_issue(late.clone(), "Late", &["ai-ready"], Timestamp(10_000));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue.clone(), github.clone() as Arc<dyn IssueSource>).build();

    // The first poll admits the backlog's 100 oldest, and the other repository's
    // issue whatever waits in the backlog.
    let first = o.poll_once().await.unwrap();
    assert_eq!((first.listed, first.created), (151, 101));
    assert!(queue.get(&late).await.unwrap().is_some());
    let oldest = TaskId::new("acme/backlog", 100).unwrap();
    assert!(queue.get(&oldest).await.unwrap().is_some());
    let waiting = TaskId::new("acme/backlog", 101).unwrap();
    assert!(queue.get(&waiting).await.unwrap().is_none());
    // The next poll admits the rest.
    assert_eq!(o.poll_once().await.unwrap().created, 50);
    assert_eq!(queue.counts().await.unwrap().pending, 151);
}
