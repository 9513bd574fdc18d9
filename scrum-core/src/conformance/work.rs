//! The suite every [`WorkSource`] runs: one plain async function per `# Behavior`
//! bullet of the trait, each taking a fresh [`WorkFixture`]: an in-memory engine
//! made with [`policy`] and [`config`], and the work source under test in front of
//! it. Tests queue issues on the engine and drive the work through the source.
//!
//! A work source runs the whole suite with one macro call in a test file:
//!
//! ```text
//! // The WorkSource under test, in front of `engine` (the engine itself, a client
//! // of a server serving it, …).
//! async fn make(engine: scrum_core::engine::Orchestrator)
//!     -> std::sync::Arc<dyn scrum_core::worker::WorkSource> { /* … */ }
//! scrum_core::work_conformance!(make);
//! ```
//!
//! The macro expands to one `#[tokio::test]` per function (so the calling crate needs
//! tokio with `macros` and `rt-multi-thread`). Nothing in the suite waits for time to
//! pass, so a source behind a real socket runs it as it is.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::{EngineConfig, Orchestrator};
use crate::error::{ErrorKind, Result};
use crate::memory::{MemoryIssueSource, MemoryQueue};
use crate::model::{
    Assignment, Completion, Failure, HeartbeatReply, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::queue::WorkQueue;
use crate::source::{IssueSource, Labels};
use crate::state::{Backoff, Policy};
use crate::worker::WorkSource;

/// This file's text: the macro's test checks that it runs every `pub async fn` here.
#[doc(hidden)]
pub const SOURCE: &str = include_str!("work.rs");

/// The policy of every fixture's engine: 2 attempts, 30 s leases (heartbeats every
/// 10 s), 1 h maximum run time, 10 s cancellation grace, and no backoff, so a failed
/// task can be handed out again at once.
pub fn policy() -> Policy {
    Policy {
        backoff: Backoff {
            initial: Duration::ZERO,
            cap: Duration::ZERO,
        },
        ..super::queue::policy()
    }
}

/// The configuration of every fixture's engine: the defaults, the default labels.
pub fn config() -> EngineConfig {
    EngineConfig {
        instance: "work-conformance".into(),
        labels: Labels::default(),
        ..EngineConfig::default()
    }
}

/// An in-memory engine and the work source under test in front of it.
pub struct WorkFixture {
    /// The work source under test.
    pub work: Arc<dyn WorkSource>,
    /// The engine behind it: poll it to queue issues, dispatch it to write outcomes.
    pub engine: Orchestrator,
    /// The issues the engine polls.
    pub issues: Arc<MemoryIssueSource>,
    /// The engine's queue, to check what a report did.
    pub queue: Arc<MemoryQueue>,
    next_issue: AtomicU64,
}

impl WorkFixture {
    /// A fresh engine made with [`policy`] and [`config`], and the work source
    /// `make` puts in front of it.
    pub async fn new<F, Fut>(make: F) -> WorkFixture
    where
        F: FnOnce(Orchestrator) -> Fut,
        Fut: Future<Output = Arc<dyn WorkSource>>,
    {
        let issues = Arc::new(MemoryIssueSource::new(config().labels));
        let queue = Arc::new(MemoryQueue::new(policy()));
        let engine = Orchestrator::builder(queue.clone(), issues.clone())
            .config(config())
            .build();
        let work = make(engine.clone()).await;
        WorkFixture {
            work,
            engine,
            issues,
            queue,
            next_issue: AtomicU64::new(1),
        }
    }

    /// Opens a ready issue `acme/widgets#N` (N counting from 1) with `labels` on top
    /// of the ready label, and polls so it is queued. Returns its id.
    pub async fn queue_issue(&self, labels: &[&str]) -> TaskId {
        let n = self.next_issue.fetch_add(1, Ordering::SeqCst);
        let id = TaskId::new("acme/widgets", n).expect("valid id");
        let mut all = vec!["ai-ready"];
        all.extend_from_slice(labels);
        let opened = Timestamp(i64::try_from(n).unwrap_or(i64::MAX) * 1000);
        self.issues
            .open_issue(id.clone(), &format!("Issue {n}"), &all, opened);
        self.engine.poll_once().await.expect("poll");
        id
    }

    /// Closes the issue and polls, so its task is cancelled.
    pub async fn close_issue(&self, id: &TaskId) {
        self.issues.close(id);
        self.engine.poll_once().await.expect("poll");
    }
}

fn worker(n: u32) -> WorkerId {
    WorkerId::new(&format!("worker-{n}")).expect("valid worker id")
}

/// The assignment `next` hands worker `w` at once.
async fn next(f: &WorkFixture, w: u32) -> Assignment {
    f.work
        .next(&worker(w), Duration::ZERO)
        .await
        .expect("next")
        .expect("an assignment")
}

/// Asserts that `next` hands worker `w` nothing.
async fn assert_nothing_for(f: &WorkFixture, w: u32) {
    let got = f.work.next(&worker(w), Duration::ZERO).await.expect("next");
    assert!(got.is_none(), "handed out {:?}", got.map(|a| a.task));
}

async fn heartbeat(f: &WorkFixture, w: u32, a: &Assignment) -> Result<HeartbeatReply> {
    f.work.heartbeat(&worker(w), a).await
}

async fn complete(f: &WorkFixture, w: u32, a: &Assignment, done: Completion) -> Result<()> {
    f.work.complete(&worker(w), a, done).await
}

async fn fail(f: &WorkFixture, w: u32, a: &Assignment, failure: Failure) -> Result<()> {
    f.work.fail(&worker(w), a, failure).await
}

async fn release(f: &WorkFixture, w: u32, a: &Assignment) -> Result<()> {
    f.work.release(&worker(w), a, "handed back").await
}

fn retryable(reason: &str) -> Failure {
    Failure {
        reason: reason.into(),
        retryable: true,
        ..Failure::default()
    }
}

fn pull(n: u64) -> Completion {
    Completion {
        pr_url: Some(format!("https://github.com/acme/widgets/pull/{n}")),
        cost_usd: Some(0.5),
        tokens: Some(1000),
        revisions: None,
    }
}

/// With nothing ready it answers `None`, waiting at most `wait` (a zero `wait` does
/// not wait).
pub async fn next_without_ready_work_is_none(f: &WorkFixture) {
    for wait in [Duration::ZERO, Duration::from_millis(50)] {
        let got = f.work.next(&worker(1), wait).await.expect("next");
        assert!(got.is_none(), "handed out {got:?} with nothing queued");
    }
}

/// A ready task comes as an assignment carrying the issue's title, body and labels,
/// its branch name, a lease token, attempt 1 of the run's attempts, and a heartbeat
/// interval shorter than the time left on the lease.
pub async fn assignment_carries_issue_and_lease(f: &WorkFixture) {
    let id = f.queue_issue(&["priority:high"]).await;
    let listed = f.issues.list_ready().await.expect("list");
    let issue = listed.iter().find(|i| i.id == id).expect("the issue");
    let before = f.engine.now();
    let a = next(f, 1).await;
    let after = f.engine.now();
    assert_eq!(a.task, id);
    assert_eq!(
        (&a.issue.title, &a.issue.body, &a.issue.labels),
        (&issue.title, &issue.body, &issue.labels)
    );
    assert_eq!(a.branch_name, issue.branch_name());
    assert_eq!((a.attempt, a.max_attempts), (1, policy().max_attempts));
    assert!(
        a.lease_expires_at <= after.plus(policy().lease),
        "a lease longer than the policy's"
    );
    assert!(!a.heartbeat_interval.is_zero(), "no heartbeat interval");
    assert!(
        before.plus(a.heartbeat_interval) < a.lease_expires_at,
        "the lease lapses before the first heartbeat is due"
    );
}

/// A task is handed to one worker at a time: while it is held, `next` hands it to no
/// one else.
pub async fn task_is_handed_to_one_worker_at_a_time(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    assert_eq!(next(f, 1).await.task, id);
    assert_nothing_for(f, 2).await;
    assert_nothing_for(f, 1).await;
}

/// With the live assignment it renews the lease to one lease period from now (so
/// `lease_expires_at` grows as time passes) and answers `cancel: false`.
pub async fn heartbeat_renews_lease(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    let before = f.engine.now();
    let reply = heartbeat(f, 1, &a).await.expect("heartbeat");
    let after = f.engine.now();
    assert!(!reply.cancel);
    let lease = policy().lease;
    assert!(
        before.plus(lease) <= reply.lease_expires_at && reply.lease_expires_at <= after.plus(lease),
        "renewed to {:?}, not one lease period from now ({:?}..{:?})",
        reply.lease_expires_at,
        before.plus(lease),
        after.plus(lease)
    );
    assert!(
        reply.lease_expires_at >= a.lease_expires_at,
        "the lease shrank"
    );
}

/// On a task being cancelled (its issue was closed) it answers `cancel: true`.
pub async fn heartbeat_reports_cancellation(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    f.close_issue(&id).await;
    let reply = heartbeat(f, 1, &a).await.expect("heartbeat");
    assert!(reply.cancel, "the holder of a cancelled task is not told");
}

/// With a stale assignment (the task was handed back and handed out again) it fails
/// with `LeaseLost`, and the new assignment's heartbeat still succeeds.
pub async fn heartbeat_with_stale_assignment_is_lease_lost(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let stale = next(f, 1).await;
    release(f, 1, &stale).await.expect("release");
    let live = next(f, 1).await;
    let err = heartbeat(f, 1, &stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    heartbeat(f, 1, &live)
        .await
        .expect("the live assignment's heartbeat");
}

/// For a task the orchestrator does not know it fails with `NotFound`.
pub async fn heartbeat_for_unknown_task_is_not_found(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    let unknown = Assignment {
        task: TaskId::new("acme/widgets", 404).expect("valid id"),
        ..a
    };
    let err = heartbeat(f, 1, &unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The task is done: `next` does not hand it out again.
pub async fn completed_task_is_not_handed_out_again(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    complete(f, 1, &a, pull(2)).await.expect("complete");
    assert_nothing_for(f, 2).await;
    // Not after its outcome is written and GitHub polled again either.
    f.engine.dispatch_once().await.expect("dispatch");
    f.engine.poll_once().await.expect("poll");
    assert_nothing_for(f, 2).await;
}

/// Completing twice with the same assignment succeeds both times and takes effect
/// once.
pub async fn complete_twice_takes_effect_once(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    for _ in 0..2 {
        complete(f, 1, &a, pull(2)).await.expect("complete");
    }
    let effects = f.queue.pending_effects(100).await.expect("effects");
    let completed = effects
        .iter()
        .filter(|e| e.effect.kind.name() == "completed")
        .count();
    assert_eq!(completed, 1, "one completion recorded");
    f.engine.dispatch_once().await.expect("dispatch");
    let issue = f.issues.issue(&id).expect("the issue");
    assert!(issue.labels.contains(&config().labels.completed));
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
    assert!(issue.comments[0].1.contains("/pull/2"));
}

/// With a stale assignment (another worker's attempt completed the task) it fails
/// with `LeaseLost` and changes nothing.
pub async fn complete_with_stale_assignment_is_lease_lost(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let stale = next(f, 1).await;
    fail(f, 1, &stale, retryable("flaky network"))
        .await
        .expect("fail");
    let live = next(f, 2).await;
    complete(f, 2, &live, pull(2)).await.expect("complete");
    let err = complete(f, 1, &stale, pull(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    let task = f.queue.get(&id).await.expect("get").expect("the task");
    assert_eq!(task.state(), TaskState::Completed);
    assert_eq!(
        task.completion(),
        Some(&pull(2)),
        "the stale report took effect"
    );
}

/// A retryable failure with attempts left puts the task back: a later `next` hands it
/// out again as attempt 2, once its backoff passed.
pub async fn retryable_failure_hands_task_out_again(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let first = next(f, 1).await;
    fail(f, 1, &first, retryable("tests failed"))
        .await
        .expect("fail");
    // The fixture's policy has no backoff: the retry is due at once.
    let second = next(f, 2).await;
    assert_eq!((second.task, second.attempt), (id, 2));
    assert_ne!(second.lease_token, first.lease_token);
}

/// A non-retryable failure, or a failure of the last attempt, ends the task: `next`
/// does not hand it out again.
pub async fn final_failure_ends_task(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    let fatal = Failure {
        reason: "the issue asks for something impossible".into(),
        retryable: false,
        ..Failure::default()
    };
    fail(f, 1, &a, fatal).await.expect("fail");
    assert_nothing_for(f, 2).await;

    let id = f.queue_issue(&[]).await;
    for attempt in 1..=policy().max_attempts {
        let a = next(f, 1).await;
        assert_eq!((&a.task, a.attempt), (&id, attempt));
        fail(f, 1, &a, retryable("tests failed"))
            .await
            .expect("fail");
    }
    assert_nothing_for(f, 2).await;
}

/// Failing twice with the same assignment succeeds both times and spends one attempt.
pub async fn failing_twice_spends_one_attempt(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    for _ in 0..2 {
        fail(f, 1, &a, retryable("tests failed"))
            .await
            .expect("fail");
    }
    let again = next(f, 2).await;
    assert_eq!((again.task, again.attempt), (id, 2));
}

/// With a stale assignment (another worker holds the task now) it fails with
/// `LeaseLost`, and the holder keeps its lease.
pub async fn fail_with_stale_assignment_is_lease_lost(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let stale = next(f, 1).await;
    release(f, 1, &stale).await.expect("release");
    let live = next(f, 2).await;
    let err = fail(f, 1, &stale, retryable("late report"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    heartbeat(f, 2, &live)
        .await
        .expect("the holder's heartbeat");
    assert_nothing_for(f, 3).await;
}

/// The task is back at once: `next` hands it out again with the same attempt number
/// and a new lease token.
pub async fn release_spends_no_attempt(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let first = next(f, 1).await;
    release(f, 1, &first).await.expect("release");
    let again = next(f, 2).await;
    assert_eq!((again.task, again.attempt), (id, 1));
    assert_ne!(again.lease_token, first.lease_token);
}

/// Releasing twice with the same assignment succeeds both times.
pub async fn releasing_twice_succeeds(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    for _ in 0..2 {
        release(f, 1, &a).await.expect("release");
    }
    let again = next(f, 2).await;
    assert_eq!((again.task, again.attempt), (id, 1));
}

/// Releasing a task being cancelled ends it: `next` does not hand it out again.
pub async fn releasing_a_cancelled_task_ends_it(f: &WorkFixture) {
    let id = f.queue_issue(&[]).await;
    let a = next(f, 1).await;
    f.close_issue(&id).await;
    release(f, 1, &a).await.expect("release");
    assert_nothing_for(f, 2).await;
    f.engine.poll_once().await.expect("poll");
    assert_nothing_for(f, 2).await;
}

/// With a stale assignment (another worker holds the task now) it fails with
/// `LeaseLost`, and the holder keeps its lease.
pub async fn release_with_stale_assignment_is_lease_lost(f: &WorkFixture) {
    f.queue_issue(&[]).await;
    let stale = next(f, 1).await;
    release(f, 1, &stale).await.expect("release");
    let live = next(f, 2).await;
    let err = release(f, 1, &stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    heartbeat(f, 2, &live)
        .await
        .expect("the holder's heartbeat");
    assert_nothing_for(f, 3).await;
}

/// Generates one `#[tokio::test]` per conformance function for a work source; see
/// the [module docs](crate::conformance::work).
#[macro_export]
macro_rules! work_conformance {
    ($make:ident) => {
        mod work_conformance {
            use super::$make;

            async fn fresh() -> $crate::conformance::work::WorkFixture {
                $crate::conformance::work::WorkFixture::new($make).await
            }

            $crate::work_conformance!(@suite
                next_without_ready_work_is_none,
                assignment_carries_issue_and_lease,
                task_is_handed_to_one_worker_at_a_time,
                heartbeat_renews_lease,
                heartbeat_reports_cancellation,
                heartbeat_with_stale_assignment_is_lease_lost,
                heartbeat_for_unknown_task_is_not_found,
                completed_task_is_not_handed_out_again,
                complete_twice_takes_effect_once,
                complete_with_stale_assignment_is_lease_lost,
                retryable_failure_hands_task_out_again,
                final_failure_ends_task,
                failing_twice_spends_one_attempt,
                fail_with_stale_assignment_is_lease_lost,
                release_spends_no_attempt,
                releasing_twice_succeeds,
                releasing_a_cancelled_task_ends_it,
                release_with_stale_assignment_is_lease_lost,
            );
        }
    };
    (@suite $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = fresh().await;
                $crate::conformance::work::$name(&fixture).await;
            }
        )*

        #[test]
        fn the_suite_runs_every_conformance_function() {
            $crate::conformance::assert_runs_every_function(
                $crate::conformance::work::SOURCE,
                &[$(stringify!($name)),*],
            );
        }
    };
}
