//! The suite every [`WorkerRegistry`](crate::WorkerRegistry) runs (every
//! [`WorkQueue`] is one): one plain async function per `# Behavior` bullet of the
//! trait, each taking a fresh, isolated store through a [`RegistryFixture`].
//!
//! A backend runs the whole suite with one macro call in a test file:
//!
//! ```text
//! // A fresh, isolated store, whose queues are made with `queue::policy()` and
//! // `queue::jitter()`, and which can be opened again.
//! async fn make() -> impl scrum_core::conformance::workers::RegistryFixture { /* … */ }
//! scrum_core::registry_conformance!(make);
//! ```
//!
//! The macro expands to one `#[tokio::test]` per function (so the calling crate needs
//! tokio with `macros` and `rt-multi-thread`); tests run in parallel, so each fixture
//! `make` returns must be isolated from the others.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{LeaseKind, ReadyIssue, TaskId, Timestamp, WorkerId};
use crate::probe::HostHealth;
use crate::queue::WorkQueue;
use crate::workers::{AgentSandbox, HostReport, Sighting, WorkerRecord};

/// This file's text: the macro's test checks that it runs every `pub async fn` here.
#[doc(hidden)]
pub const SOURCE: &str = include_str!("workers.rs");

/// A store under test, which can be opened again as the next orchestrator would.
#[async_trait]
pub trait RegistryFixture: Send + Sync {
    /// The queue on the store, made with [`super::queue::policy`] and
    /// [`super::queue::jitter`].
    fn queue(&self) -> Arc<dyn WorkQueue>;

    /// Opens the store again; [`RegistryFixture::queue`] then returns the new
    /// queue. A store one process owns is closed and opened again (SQLite: the same
    /// file), as after a restart; a shared store gets a second queue on the same
    /// schema or prefix, as another orchestrator would; the memory store, which
    /// keeps nothing across a restart, hands out the same queue again (what a
    /// second orchestrator in the process would share). Callers drop their clones
    /// of the old queue first.
    async fn reopen(&mut self);
}

/// The time the suite starts at.
const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

/// Worker ids with the punctuation ids may carry, so that every store keys them
/// faithfully.
fn worker(name: &str) -> WorkerId {
    WorkerId::new(&format!("{name}@host-1.example:7")).expect("valid worker id")
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().expect("an address"))
}

async fn listed(q: &dyn WorkQueue) -> Vec<WorkerRecord> {
    q.workers().await.expect("list workers")
}

async fn record(q: &dyn WorkQueue, w: &WorkerId) -> WorkerRecord {
    listed(q)
        .await
        .into_iter()
        .find(|r| &r.id == w)
        .unwrap_or_else(|| panic!("{w} is not listed"))
}

fn report(host: &str, health: HostHealth, reason: Option<&str>, secs: i64) -> HostReport {
    HostReport {
        host: host.to_string(),
        health,
        reason: reason.map(str::to_string),
        at: at(secs),
    }
}

/// A first call creates the record: first and last seen `now`, the address it
/// called from, nothing counted, not draining.
pub async fn first_call_creates_the_record(q: &dyn WorkQueue) {
    let w = worker("first");
    let stored = q.worker_seen(&w, ip("10.0.0.7"), at(3)).await.unwrap();
    let expected = WorkerRecord {
        id: w.clone(),
        address: ip("10.0.0.7"),
        first_seen: Some(at(3)),
        last_seen: Some(at(3)),
        completed: 0,
        failed: 0,
        draining: false,
        sandbox: None,
    };
    assert_eq!(stored, expected);
    assert_eq!(listed(q).await, vec![expected]);
}

/// A later call moves last seen to `now`, never backwards, and keeps first seen; a
/// new address replaces the old one, and a call without one keeps it.
pub async fn later_calls_move_last_seen_and_keep_the_address(q: &dyn WorkQueue) {
    let w = worker("later");
    q.worker_seen(&w, ip("10.0.0.7"), at(1)).await.unwrap();
    let r = q.worker_seen(&w, None, at(9)).await.unwrap();
    assert_eq!(
        (r.address, r.first_seen, r.last_seen),
        (ip("10.0.0.7"), Some(at(1)), Some(at(9))),
        "a call without an address keeps the one known"
    );
    let r = q.worker_seen(&w, ip("fd00::7"), at(5)).await.unwrap();
    assert_eq!(
        (r.address, r.last_seen),
        (ip("fd00::7"), Some(at(9))),
        "an older clock reading (another orchestrator's) does not move last seen back"
    );
    assert_eq!(record(q, &w).await, r);
}

/// A batch of calls records each as one call records it, and each comes back as
/// one record.
pub async fn a_batch_of_calls_records_each(q: &dyn WorkQueue) {
    let (known, new) = (worker("batch-known"), worker("batch-new"));
    q.worker_seen(&known, ip("10.0.0.1"), at(5)).await.unwrap();
    q.worker_finished(&known, true, at(6)).await.unwrap();
    q.set_draining(&known, true).await.unwrap();
    let seen = |worker: &WorkerId, address, secs| Sighting {
        worker: worker.clone(),
        address,
        at: at(secs),
    };
    let batch = [seen(&known, None, 9), seen(&new, ip("10.0.0.2"), 4)];
    let mut records = q.workers_seen(&batch).await.unwrap();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let expected = vec![
        WorkerRecord {
            id: known.clone(),
            address: ip("10.0.0.1"),
            first_seen: Some(at(5)),
            last_seen: Some(at(9)),
            completed: 1,
            failed: 0,
            draining: true,
            sandbox: None,
        },
        WorkerRecord {
            id: new.clone(),
            address: ip("10.0.0.2"),
            first_seen: Some(at(4)),
            last_seen: Some(at(4)),
            completed: 0,
            failed: 0,
            draining: false,
            sandbox: None,
        },
    ];
    assert_eq!(records, expected);
    assert_eq!(listed(q).await, expected);
    // Never backwards, as one call.
    let back = q.workers_seen(&[seen(&known, None, 7)]).await.unwrap();
    assert_eq!(back[0].last_seen, Some(at(9)));
}

/// Completions and failures are counted apart, and a report counts as a call.
pub async fn completions_and_failures_are_counted_apart(q: &dyn WorkQueue) {
    let w = worker("reporter");
    q.worker_seen(&w, ip("10.0.0.8"), at(1)).await.unwrap();
    q.worker_finished(&w, true, at(20)).await.unwrap();
    q.worker_finished(&w, true, at(40)).await.unwrap();
    q.worker_finished(&w, false, at(60)).await.unwrap();
    let r = record(q, &w).await;
    assert_eq!((r.completed, r.failed), (2, 1));
    assert_eq!(r.last_seen, Some(at(60)), "a report is a call");
    assert_eq!(r.address, ip("10.0.0.8"));
    // A report from a worker the store never heard of (it called another
    // orchestrator before this store kept workers) creates its record.
    let other = worker("unknown-reporter");
    q.worker_finished(&other, true, at(70)).await.unwrap();
    let r = record(q, &other).await;
    assert_eq!(
        (r.completed, r.first_seen, r.last_seen),
        (1, Some(at(70)), Some(at(70)))
    );
}

/// Concurrent reports, from one orchestrator or several, are all counted.
pub async fn concurrent_reports_are_all_counted(q: Arc<dyn WorkQueue>) {
    let w = worker("busy");
    let mut reports = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (q, w) = (q.clone(), w.clone());
        reports.spawn(async move { q.worker_finished(&w, i % 4 != 0, at(i)).await });
    }
    while let Some(done) = reports.join_next().await {
        done.expect("a report task").expect("worker_finished");
    }
    let r = record(&*q, &w).await;
    assert_eq!((r.completed, r.failed), (15, 5), "no count lost");
    assert_eq!(r.last_seen, Some(at(19)));
}

/// Draining stays set across the worker's calls until it is cleared.
pub async fn draining_stays_until_cleared(q: &dyn WorkQueue) {
    let w = worker("drained");
    q.worker_seen(&w, None, at(1)).await.unwrap();
    q.set_draining(&w, true).await.unwrap();
    let r = q.worker_seen(&w, None, at(2)).await.unwrap();
    assert!(r.draining, "a call does not clear draining");
    q.worker_finished(&w, true, at(3)).await.unwrap();
    assert!(record(q, &w).await.draining, "a report does not clear it");
    q.set_draining(&w, false).await.unwrap();
    let r = q.worker_seen(&w, None, at(4)).await.unwrap();
    assert!(!r.draining);
    assert_eq!((r.last_seen, r.completed), (Some(at(4)), 1));
}

/// A worker drained before it ever called is listed, draining and never seen.
pub async fn a_worker_drained_before_calling_is_listed(q: &dyn WorkQueue) {
    let w = worker("not-yet");
    q.set_draining(&w, true).await.unwrap();
    let mut expected = WorkerRecord::unseen(w.clone());
    expected.draining = true;
    assert_eq!(listed(q).await, vec![expected]);
    let r = q.worker_seen(&w, ip("10.0.0.9"), at(5)).await.unwrap();
    assert!(r.draining, "its first call finds it draining");
    assert_eq!((r.first_seen, r.last_seen), (Some(at(5)), Some(at(5))));
}

/// The sandbox is kept across the worker's calls, reports and drains until it
/// says another; a record that never had one lists none.
pub async fn the_sandbox_is_kept_until_the_worker_says_another(q: &dyn WorkQueue) {
    let (w, silent) = (worker("sandboxed"), worker("silent"));
    q.worker_seen(&silent, ip("10.0.0.3"), at(1)).await.unwrap();
    q.worker_seen(&w, ip("10.0.0.4"), at(1)).await.unwrap();
    q.set_sandbox(&w, AgentSandbox::Bwrap).await.unwrap();
    let r = q.worker_seen(&w, None, at(2)).await.unwrap();
    assert_eq!(r.sandbox, Some(AgentSandbox::Bwrap), "a call keeps it");
    q.worker_finished(&w, true, at(3)).await.unwrap();
    q.set_draining(&w, true).await.unwrap();
    let r = record(q, &w).await;
    assert_eq!(
        (r.sandbox, r.completed, r.draining, r.last_seen),
        (Some(AgentSandbox::Bwrap), 1, true, Some(at(3))),
        "a report and a drain keep it, and setting it touches nothing else"
    );
    q.set_sandbox(&w, AgentSandbox::None).await.unwrap();
    assert_eq!(record(q, &w).await.sandbox, Some(AgentSandbox::None));
    q.set_sandbox(&w, AgentSandbox::Srt).await.unwrap();
    assert_eq!(record(q, &w).await.sandbox, Some(AgentSandbox::Srt));
    assert_eq!(record(q, &silent).await.sandbox, None, "never said");
}

/// A worker that says so before it ever called is listed with it, never seen.
pub async fn a_sandbox_said_before_calling_is_listed(q: &dyn WorkQueue) {
    let w = worker("early");
    q.set_sandbox(&w, AgentSandbox::None).await.unwrap();
    let mut expected = WorkerRecord::unseen(w.clone());
    expected.sandbox = Some(AgentSandbox::None);
    assert_eq!(listed(q).await, vec![expected]);
    let r = q.worker_seen(&w, ip("10.0.0.5"), at(5)).await.unwrap();
    assert_eq!(r.sandbox, Some(AgentSandbox::None));
    assert_eq!((r.first_seen, r.last_seen), (Some(at(5)), Some(at(5))));
}

/// Each worker is listed once, in id order, with what was recorded of it.
pub async fn workers_are_listed_once_in_id_order(q: &dyn WorkQueue) {
    assert!(listed(q).await.is_empty());
    for (name, secs) in [("w-c", 1), ("w-a", 2), ("w-b", 3), ("w-a", 4), ("w-c", 5)] {
        q.worker_seen(&worker(name), None, at(secs)).await.unwrap();
    }
    let got: Vec<(String, Option<Timestamp>)> = listed(q)
        .await
        .into_iter()
        .map(|r| (r.id.to_string(), r.last_seen))
        .collect();
    let expected: Vec<(String, Option<Timestamp>)> = [("w-a", 4), ("w-b", 3), ("w-c", 5)]
        .into_iter()
        .map(|(n, s)| (worker(n).to_string(), Some(at(s))))
        .collect();
    assert_eq!(got, expected);
}

/// A queue opened again on the same store (a restarted orchestrator, or another
/// one sharing the store) lists the same workers and probe reports.
pub async fn a_reopened_store_lists_the_same_workers(f: &mut dyn RegistryFixture) {
    let (steady, drained) = (worker("steady"), worker("drained"));
    let (workers, probes) = {
        let q = f.queue();
        q.worker_seen(&steady, ip("10.0.0.1"), at(1)).await.unwrap();
        q.worker_finished(&steady, true, at(30)).await.unwrap();
        q.worker_finished(&steady, false, at(60)).await.unwrap();
        q.worker_seen(&drained, ip("fd00::2"), at(2)).await.unwrap();
        q.set_draining(&drained, true).await.unwrap();
        q.set_sandbox(&steady, AgentSandbox::Srt).await.unwrap();
        q.record_probe(report("10.0.0.1", HostHealth::Healthy, None, 10))
            .await
            .unwrap();
        let reason = Some("ai-scrum-worker is inactive");
        q.record_probe(report("10.0.0.2:2222", HostHealth::Degraded, reason, 11))
            .await
            .unwrap();
        (listed(&*q).await, q.probes().await.unwrap())
    };
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[1].sandbox, Some(AgentSandbox::Srt), "{workers:?}");
    f.reopen().await;
    let q = f.queue();
    assert_eq!(listed(&*q).await, workers, "the workers as they were");
    assert_eq!(
        q.probes().await.unwrap(),
        probes,
        "the probe reports as they were"
    );
    // And the counts go on from there.
    q.worker_finished(&steady, true, at(90)).await.unwrap();
    let r = record(&*q, &steady).await;
    assert_eq!((r.completed, r.failed, r.last_seen), (2, 1, Some(at(90))));
}

/// Only workers last seen before `unseen_before` and holding no in-progress task are
/// dropped; workers seen since, workers holding a task, and drained workers that
/// never called are kept.
pub async fn forget_drops_only_idle_workers_unseen_since(q: &dyn WorkQueue) {
    let (gone, holder, recent, on_time, never) = (
        worker("gone"),
        worker("holder"),
        worker("recent"),
        worker("on-time"),
        worker("never"),
    );
    let issue = ReadyIssue {
        id: TaskId::new("acme/widgets", 1).expect("valid id"),
        title: "Issue 1".into(),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(0),
    };
    q.enqueue(issue, at(0)).await.expect("enqueue");
    for w in [&gone, &holder] {
        q.worker_seen(w, None, at(1)).await.unwrap();
    }
    // Its lease lapses long before the round, but the task is still in progress.
    let claimed = q.claim(&holder, LeaseKind::Heartbeat, at(2)).await.unwrap();
    assert!(claimed.is_some(), "a task to hold");
    q.worker_seen(&recent, None, at(500)).await.unwrap();
    q.worker_seen(&on_time, None, at(100)).await.unwrap();
    q.set_draining(&never, true).await.unwrap();

    assert_eq!(q.forget_workers(at(100)).await.unwrap(), 1);
    let left: Vec<WorkerId> = listed(q).await.into_iter().map(|r| r.id).collect();
    let mut expected = vec![holder, never, on_time, recent];
    expected.sort();
    assert_eq!(left, expected, "only {gone} is dropped");
    assert_eq!(q.forget_workers(at(100)).await.unwrap(), 0);
}

/// Each host keeps only its latest report; reports are listed by host.
pub async fn each_host_keeps_its_latest_probe(q: &dyn WorkQueue) {
    assert!(q.probes().await.unwrap().is_empty());
    let down = report("10.0.0.2", HostHealth::Unreachable, Some("timed out"), 1);
    q.record_probe(down).await.unwrap();
    let first = report("10.0.0.1:2222", HostHealth::Healthy, None, 2);
    q.record_probe(first.clone()).await.unwrap();
    let back = report(
        "10.0.0.2",
        HostHealth::Degraded,
        Some("service inactive"),
        3,
    );
    q.record_probe(back.clone()).await.unwrap();
    assert_eq!(q.probes().await.unwrap(), vec![first, back]);
}

/// Generates one `#[tokio::test]` per conformance function for a backend; see the
/// [module docs](crate::conformance::workers).
#[macro_export]
macro_rules! registry_conformance {
    ($make:ident) => {
        mod registry_conformance {
            use super::$make;
            use $crate::conformance::workers::RegistryFixture;

            async fn fresh() -> impl RegistryFixture {
                $make().await
            }

            $crate::registry_conformance!(@each
                first_call_creates_the_record,
                later_calls_move_last_seen_and_keep_the_address,
                a_batch_of_calls_records_each,
                completions_and_failures_are_counted_apart,
                draining_stays_until_cleared,
                a_worker_drained_before_calling_is_listed,
                the_sandbox_is_kept_until_the_worker_says_another,
                a_sandbox_said_before_calling_is_listed,
                workers_are_listed_once_in_id_order,
                forget_drops_only_idle_workers_unseen_since,
                each_host_keeps_its_latest_probe,
            );

            #[test]
            fn the_suite_runs_every_conformance_function() {
                $crate::conformance::assert_runs_every_function(
                    $crate::conformance::workers::SOURCE,
                    &[
                        stringify!(first_call_creates_the_record),
                        stringify!(later_calls_move_last_seen_and_keep_the_address),
                        stringify!(a_batch_of_calls_records_each),
                        stringify!(completions_and_failures_are_counted_apart),
                        stringify!(draining_stays_until_cleared),
                        stringify!(a_worker_drained_before_calling_is_listed),
                        stringify!(the_sandbox_is_kept_until_the_worker_says_another),
                        stringify!(a_sandbox_said_before_calling_is_listed),
                        stringify!(workers_are_listed_once_in_id_order),
                        stringify!(forget_drops_only_idle_workers_unseen_since),
                        stringify!(each_host_keeps_its_latest_probe),
                        "concurrent_reports_are_all_counted",
                        "a_reopened_store_lists_the_same_workers",
                    ],
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_reports_are_all_counted() {
                let fixture = fresh().await;
                $crate::conformance::workers::concurrent_reports_are_all_counted(fixture.queue())
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_reopened_store_lists_the_same_workers() {
                let mut fixture = fresh().await;
                $crate::conformance::workers::a_reopened_store_lists_the_same_workers(&mut fixture)
                    .await;
            }
        }
    };
    (@each $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = fresh().await;
                $crate::conformance::workers::$name(&*fixture.queue()).await;
            }
        )*
    };
}
