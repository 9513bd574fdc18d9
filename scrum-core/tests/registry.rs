//! The worker registry through the engine: kept in the store, so a restarted
//! orchestrator, or a second one on the same store, shows the same workers, counts,
//! drains and host health. On the in-memory backends and tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{EngineConfig, Orchestrator, WorkerInfo, WorkerStatus};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue, ScriptedProbe};
use scrum_core::state::Policy;
use scrum_core::{
    Assignment, Completion, HostHealth, Labels, LeaseKind, ProbeReport, TaskId, Timestamp, WorkerId,
};

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name).unwrap()
}

/// One store and one issue source, which orchestrators are built on.
struct Store {
    queue: Arc<MemoryQueue>,
    github: Arc<MemoryIssueSource>,
}

impl Store {
    fn with_issues(n: u64) -> Store {
        let github = Arc::new(MemoryIssueSource::new(Labels::default()));
        for i in 1..=n {
            let id = TaskId::new("acme/widgets", i).unwrap();
            github.open_issue(
                id,
                &format!("Issue {i}"),
                &["ai-ready"],
                Timestamp(i as i64),
            );
        }
        Store {
            queue: Arc::new(MemoryQueue::new(Policy::default())),
            github,
        }
    }

    /// An orchestrator on this store.
    fn orchestrator(&self, config: EngineConfig) -> Orchestrator {
        Orchestrator::builder(self.queue.clone(), self.github.clone())
            .config(config)
            .build()
    }
}

async fn ask(o: &Orchestrator, name: &str) -> Option<Assignment> {
    o.next_work(&worker(name), None, LeaseKind::Heartbeat, Duration::ZERO)
        .await
        .unwrap()
}

async fn listed(o: &Orchestrator, name: &str) -> WorkerInfo {
    let workers = o.reads().workers().await.unwrap();
    workers
        .into_iter()
        .find(|w| w.id == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[tokio::test(start_paused = true)]
async fn another_orchestrator_on_the_store_lists_the_same_workers() {
    let store = Store::with_issues(2);
    let hosts = vec!["10.0.0.1".to_string()];
    let probe = Arc::new(ScriptedProbe::new());
    let inactive = ProbeReport {
        health: HostHealth::Degraded,
        rtt: None,
        reason: Some("ai-scrum-worker is inactive".into()),
    };
    probe.set("10.0.0.1", inactive, "");
    let config = EngineConfig {
        worker_hosts: hosts,
        ..EngineConfig::default()
    };
    let first = Orchestrator::builder(store.queue.clone(), store.github.clone())
        .probe(probe)
        .config(config.clone())
        .build();
    first.poll_once().await.unwrap();
    let done = first
        .next_work(
            &worker("finisher"),
            Some("10.0.0.1".parse().unwrap()),
            LeaseKind::Heartbeat,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    first
        .complete(
            &worker("finisher"),
            &done.task,
            done.lease_token,
            Completion::default(),
        )
        .await
        .unwrap();
    let held = ask(&first, "holder").await.unwrap();
    first.probe_once().await;

    // Another orchestrator (or this one restarted) on the same store, without a
    // probe of its own: it has seen none of these calls.
    tokio::time::advance(Duration::from_secs(10)).await;
    let second = store.orchestrator(config);
    let finisher = listed(&second, "finisher").await;
    assert_eq!(
        (finisher.status, finisher.completed, finisher.failed),
        (WorkerStatus::Idle, 1, 0),
        "not offline, and its completion counted"
    );
    assert!(finisher.last_seen.is_some());
    assert_eq!(finisher.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        (finisher.health, finisher.health_reason.as_deref()),
        (HostHealth::Degraded, Some("ai-scrum-worker is inactive")),
        "the leader's probe report, read from the store"
    );
    let holder = listed(&second, "holder").await;
    assert_eq!(holder.status, WorkerStatus::Busy);
    assert_eq!(holder.current_task, Some(held.task.clone()));
    assert_eq!(
        second.reads().workers().await.unwrap().len(),
        2,
        "the host is the finisher's"
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_on_one_orchestrator_holds_on_the_others_within_a_second() {
    let store = Store::with_issues(1);
    let a = store.orchestrator(EngineConfig::default());
    let b = store.orchestrator(EngineConfig::default());
    a.poll_once().await.unwrap();
    a.operator().drain(&worker("w"), true).await.unwrap();
    assert!(ask(&b, "w").await.is_none(), "drained through a, asking b");
    assert_eq!(listed(&b, "w").await.status, WorkerStatus::Draining);

    a.operator().drain(&worker("w"), false).await.unwrap();
    // b wrote w's call a moment ago and goes by what that write returned...
    assert!(ask(&b, "w").await.is_none());
    // ...until a second has passed: the next call is written, and reads the drain.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(ask(&b, "w").await.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_leader_forgets_idle_workers_unseen_for_worker_forget_after() {
    let store = Store::with_issues(1);
    let o = store.orchestrator(EngineConfig {
        worker_forget_after: Duration::from_secs(3600),
        ..EngineConfig::default()
    });
    o.poll_once().await.unwrap();
    // A client without heartbeats: its run-time lease (3 h) outlasts the hour.
    let held = o
        .next_work(&worker("slow"), None, LeaseKind::RunTime, Duration::ZERO)
        .await
        .unwrap();
    assert!(held.is_some());
    assert!(ask(&o, "idle").await.is_none());
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert!(ask(&o, "recent").await.is_none());

    tokio::time::advance(Duration::from_secs(1801)).await;
    assert!(o.reap_once().await.unwrap().is_empty(), "no lease lapsed");
    let ids: Vec<String> = o
        .reads()
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(
        ids,
        ["recent", "slow"],
        "idle, unseen for an hour, is forgotten"
    );

    // A forgotten worker that calls again is listed again, from scratch.
    assert!(ask(&o, "idle").await.is_none());
    let idle = listed(&o, "idle").await;
    assert_eq!((idle.status, idle.completed), (WorkerStatus::Idle, 0));
}
