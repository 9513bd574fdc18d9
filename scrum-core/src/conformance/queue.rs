//! The suite every [`WorkQueue`] backend runs: one plain async function
//! per `# Behavior` bullet of the trait, each taking a fresh queue made with
//! [`policy`] and [`jitter`].
//!
//! A backend runs the whole suite with one macro call in a test file:
//!
//! ```text
//! async fn make(policy: scrum_core::state::Policy, jitter: scrum_core::state::Jitter)
//!     -> std::sync::Arc<dyn scrum_core::WorkQueue> { /* a fresh, isolated queue */ }
//! scrum_core::queue_conformance!(make);          // a store one process owns
//! scrum_core::queue_conformance!(make, shared);  // a store several orchestrators share
//! ```
//!
//! The macro expands to one `#[tokio::test]` per function (so the calling crate needs
//! tokio with `macros` and `rt-multi-thread`); tests run in parallel, so each queue
//! `make` returns must be isolated from the others.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ErrorKind;
use crate::model::{
    Clarification, Completion, Failure, LeaseKind, LeaseToken, ReadyIssue, Task, TaskId, TaskState,
    Timestamp, WorkerId,
};
use crate::queue::{
    EffectFailure, EffectSelector, Enqueued, OutboxEntry, RepoHolds, TaskFilter, WorkQueue,
};
use crate::state::{Backoff, EffectKind, Jitter, Policy};

/// The policy every conformance queue is made with: 2 attempts, 30 s leases, 1 h
/// maximum run time, 10 s cancellation grace, backoff from 10 s capped at 60 s, a
/// budget of 2 USD per run.
pub fn policy() -> Policy {
    Policy {
        max_attempts: 2,
        lease: Duration::from_secs(30),
        max_run: Duration::from_secs(3600),
        cancel_grace: Duration::from_secs(10),
        backoff: Backoff {
            initial: Duration::from_secs(10),
            cap: Duration::from_secs(60),
        },
        issue_budget_usd: Some(2.0),
        ..Policy::default()
    }
}

/// The jitter every conformance queue is made with: always 0.5, so a first retry
/// waits exactly 7.5 s.
pub fn jitter() -> Jitter {
    Jitter::fixed(0.5)
}

/// This file's text: the macro's test checks that it runs every `pub async fn` here.
#[doc(hidden)]
pub const SOURCE: &str = include_str!("queue.rs");

/// The time the suite starts at.
pub const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

fn id(n: u64) -> TaskId {
    TaskId::new("acme/widgets", n).expect("valid id")
}

fn issue(n: u64, labels: &[&str], created_secs: i64) -> ReadyIssue {
    ReadyIssue {
        id: id(n),
        title: format!("Issue {n}"),
        body: format!("Body {n}"),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        created_at: Timestamp(created_secs * 1000),
    }
}

fn worker(n: u32) -> WorkerId {
    WorkerId::new(&format!("worker-{n}")).expect("valid worker id")
}

async fn enqueue(q: &dyn WorkQueue, n: u64) {
    let got = q
        .enqueue(issue(n, &["ai-ready"], n as i64), T0)
        .await
        .expect("enqueue");
    assert_eq!(got, Enqueued::Created);
}

async fn claim(q: &dyn WorkQueue, w: u32, now: Timestamp) -> Task {
    q.claim(&worker(w), LeaseKind::Heartbeat, now)
        .await
        .expect("claim")
        .expect("a task to claim")
}

fn token(t: &Task) -> LeaseToken {
    t.lease().as_ref().expect("a lease").token
}

async fn effect_kinds(q: &dyn WorkQueue) -> Vec<(TaskId, &'static str)> {
    q.pending_effects(10_000)
        .await
        .expect("pending effects")
        .into_iter()
        .map(|e| (e.effect.task, e.effect.kind.name()))
        .collect()
}

async fn get(q: &dyn WorkQueue, n: u64) -> Task {
    q.get(&id(n)).await.expect("get").expect("the task exists")
}

async fn ack_all(q: &dyn WorkQueue, now: Timestamp) {
    for e in q.pending_effects(10_000).await.expect("pending effects") {
        q.ack_effect(e.id, now).await.expect("ack");
    }
}

fn retryable(reason: &str) -> Failure {
    Failure {
        reason: reason.into(),
        retryable: true,
        ..Failure::default()
    }
}

fn done() -> Completion {
    Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/1".into()),
        cost_usd: Some(0.5),
        tokens: Some(1000),
        revisions: None,
    }
}

/// An issue with no task gets a Pending task of run 1 with a `Queued` effect.
pub async fn enqueue_creates_pending_task(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = get(q, 1).await;
    assert_eq!(
        (t.state(), t.run.number, t.attempts()),
        (TaskState::Pending, 1, 0)
    );
    assert_eq!(t.max_attempts(), 2);
    assert_eq!(effect_kinds(q).await, vec![(id(1), "queued")]);
}

/// Enqueuing an issue that has a live task changes nothing and returns `Unchanged`.
pub async fn enqueue_of_live_issue_is_unchanged(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let again = q.enqueue(issue(1, &["ai-ready"], 1), at(1)).await.unwrap();
    assert_eq!(again, Enqueued::Unchanged);
    claim(q, 1, at(2)).await;
    let again = q.enqueue(issue(1, &["ai-ready"], 1), at(3)).await.unwrap();
    assert_eq!(again, Enqueued::Unchanged);
    assert_eq!(get(q, 1).await.state(), TaskState::InProgress);
    assert_eq!(effect_kinds(q).await.len(), 1, "one Queued effect only");
}

/// A live task's issue data (title, body, labels) is refreshed by a new enqueue.
pub async fn enqueue_refreshes_live_issue_data(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    enqueue(q, 2).await;
    let mut changed = issue(2, &["ai-ready", "priority:critical"], 2);
    changed.title = "Renamed".into();
    assert_eq!(
        q.enqueue(changed, at(1)).await.unwrap(),
        Enqueued::Unchanged
    );
    assert_eq!(get(q, 2).await.issue.title, "Renamed");
    // The new priority label takes effect for claims.
    assert_eq!(claim(q, 1, at(2)).await.id, id(2));
}

/// A terminal task is queued again as a new run only when its terminal effects were
/// written before `observed_at`; otherwise `Unchanged`.
pub async fn requeue_only_after_terminal_effects_written(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(1)).await;
    q.complete(&t.id, token(&t), done(), at(2)).await.unwrap();
    // The labels are not written yet: the ready label still seen is the old run's.
    let seen = q.enqueue(issue(1, &["ai-ready"], 1), at(3)).await.unwrap();
    assert_eq!(seen, Enqueued::Unchanged);
    ack_all(q, at(4)).await;
    // A listing that started before the labels were written proves nothing.
    let seen = q.enqueue(issue(1, &["ai-ready"], 1), at(4)).await.unwrap();
    assert_eq!(seen, Enqueued::Unchanged);
    // Seen ready after the labels were written: someone put the label back.
    let seen = q.enqueue(issue(1, &["ai-ready"], 1), at(5)).await.unwrap();
    assert_eq!(seen, Enqueued::Requeued);
    let t = get(q, 1).await;
    assert_eq!(
        (t.state(), t.run.number, t.attempts()),
        (TaskState::Pending, 2, 0)
    );
    assert_eq!(effect_kinds(q).await, vec![(id(1), "queued")]);
}

/// An empty queue returns `None`.
pub async fn claim_on_empty_queue_returns_none(q: &dyn WorkQueue) {
    let got = q.claim(&worker(1), LeaseKind::Heartbeat, T0).await.unwrap();
    assert!(got.is_none());
}

/// Claims follow priority labels (critical, high, medium, low, none), then the
/// oldest issue.
pub async fn claim_follows_priority_then_age(q: &dyn WorkQueue) {
    let issues = [
        (1, vec!["ai-ready"], 10),
        (2, vec!["ai-ready", "priority:low"], 20),
        (3, vec!["ai-ready", "priority:critical"], 30),
        (4, vec!["ai-ready", "priority:high"], 40),
        (5, vec!["ai-ready", "priority:high"], 35),
        (6, vec!["ai-ready", "priority:medium"], 50),
        (7, vec!["ai-ready"], 5),
    ];
    for (n, labels, created) in issues {
        q.enqueue(issue(n, &labels, created), T0).await.unwrap();
    }
    let mut order = Vec::new();
    for i in 0..7 {
        order.push(claim(q, i, at(1)).await.id.number());
    }
    assert_eq!(order, vec![3, 5, 4, 6, 2, 7, 1]);
}

/// A claim counts an attempt and returns a lease with a token no other claim had.
pub async fn claim_counts_attempt_with_unique_token(q: &dyn WorkQueue) {
    let policy = policy();
    let mut tokens = HashSet::new();
    for n in 1..=20 {
        enqueue(q, n).await;
    }
    for n in 1..=20 {
        let t = claim(q, n as u32, at(1)).await;
        assert_eq!(t.state(), TaskState::InProgress);
        assert_eq!(t.attempts(), 1);
        let lease = t.lease().unwrap();
        assert_eq!(lease.worker, worker(n as u32));
        assert_eq!(lease.expires_at, at(1).plus(policy.lease));
        assert!(tokens.insert(lease.token), "token reused");
    }
    // A released and re-claimed task gets a fresh token too.
    let t = get(q, 1).await;
    q.release(&t.id, token(&t), "later".into(), at(2))
        .await
        .unwrap();
    let again = claim(q, 99, at(3)).await;
    assert!(tokens.insert(token(&again)), "token reused after release");
}

/// Tasks `hold` holds are passed over, however old or urgent, and are claimed once
/// the hold lifts.
pub async fn held_tasks_are_passed_over(q: &dyn WorkQueue) {
    let urgent = issue(1, &["ai-ready", "priority:critical"], 0);
    q.enqueue(urgent, T0).await.expect("enqueue");
    let gadget = ReadyIssue {
        id: TaskId::new("acme/gadgets", 1).expect("valid id"),
        ..issue(1, &["ai-ready"], 5)
    };
    q.enqueue(gadget, T0).await.expect("enqueue");
    let hold = RepoHolds {
        repos: vec!["acme/widgets".into()],
    };
    let w = worker(1);
    let claim_held = || q.claim_where(&w, LeaseKind::Heartbeat, at(1), &hold);
    let first = claim_held().await.expect("claim").expect("a task");
    assert_eq!(
        first.id.repo(),
        "acme/gadgets",
        "the held repository is passed over"
    );
    assert!(
        claim_held().await.expect("claim").is_none(),
        "only held tasks left"
    );
    let lifted = claim(q, 2, at(2)).await;
    assert_eq!(lifted.id, id(1), "claimed once the hold lifts");
}

/// Asserts that nothing is claimable, however long the wait (ten years on).
async fn assert_never_claimed(q: &dyn WorkQueue, what: &str) {
    let years = Timestamp(at(0).0 + 10 * 365 * 86_400_000);
    assert!(
        q.claim(&worker(2), LeaseKind::Heartbeat, years)
            .await
            .expect("claim")
            .is_none(),
        "{what}"
    );
}

/// A task held for review of an edit (`Event::Hold`) is never claimed, however long
/// the wait, and its holder is told to stop; an approval (`Event::Approve`) makes it
/// claimable at once, with the approved text.
pub async fn task_held_for_review_waits_for_approval(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    enqueue(q, 2).await;
    let edited = "sha256:edited".to_string();
    let review = crate::model::EditReview {
        editor: "author".into(),
        edited_at: Some(at(1)),
        digest: edited.clone(),
        held_at: at(1),
    };
    let hold = crate::state::Event::Hold { review };
    q.apply(&id(1), hold.clone(), at(1))
        .await
        .expect("hold pending");
    let running = claim(q, 1, at(1)).await;
    assert_eq!(running.id, id(2), "the held task is passed over");
    q.apply(&id(2), hold, at(2))
        .await
        .expect("hold in progress");
    let beat = q
        .heartbeat(&id(2), token(&running), at(2))
        .await
        .expect("heartbeat");
    assert!(beat.cancel, "the holder is told to stop");
    q.release(&id(2), token(&running), "told to stop".into(), at(3))
        .await
        .expect("release");
    assert_never_claimed(q, "a held task is never handed out").await;
    let reviews = effect_kinds(q).await;
    assert_eq!(
        reviews
            .iter()
            .filter(|(_, k)| *k == "review_requested")
            .count(),
        2
    );
    let approve = crate::state::Event::Approve {
        approval: crate::model::Approval {
            by: "maintainer".into(),
            at: Some(at(4)),
            digest: edited,
        },
        issue: Some(ReadyIssue {
            body: "Edited body".into(),
            ..issue(1, &["ai-ready"], 1)
        }),
    };
    q.apply(&id(1), approve, at(4)).await.expect("approve");
    let released = claim(q, 3, at(4)).await;
    assert_eq!(released.id, id(1), "claimable at once");
    assert_eq!(released.issue.body, "Edited body");
    assert_eq!(
        released.approval.as_ref().map(|a| a.by.as_str()),
        Some("maintainer")
    );
}

/// A task blocked by open dependencies (`Event::Block`) is never claimed, however
/// urgent or long the wait; what blocks it is stored (and read back), its problem
/// recorded once as a `dependency_problem` effect; `Event::Unblock` makes it
/// claimable at once.
pub async fn blocked_task_waits_until_unblocked(q: &dyn WorkQueue) {
    q.enqueue(issue(1, &["ai-ready", "priority:critical"], 1), at(0))
        .await
        .expect("enqueue");
    enqueue(q, 2).await;
    let blocked = crate::deps::Blocked {
        by: vec![id(2)],
        problem: Some("dependency cycle: acme/widgets#1 → acme/widgets#2 → acme/widgets#1".into()),
        since: at(1),
    };
    let block = crate::state::Event::Block {
        blocked: blocked.clone(),
    };
    q.apply(&id(1), block.clone(), at(1)).await.expect("block");
    q.apply(&id(1), block, at(2)).await.expect("block again");
    let stored = q.get(&id(1)).await.expect("get").expect("task");
    assert_eq!(stored.blocked(), Some(&blocked), "stored with the task");
    let running = claim(q, 1, at(2)).await;
    assert_eq!(running.id, id(2), "the blocked task is passed over");
    assert_never_claimed(q, "a blocked task is never handed out").await;
    let problems = effect_kinds(q).await;
    assert_eq!(
        problems
            .iter()
            .filter(|(_, k)| *k == "dependency_problem")
            .count(),
        1,
        "the problem is recorded once"
    );
    q.apply(&id(1), crate::state::Event::Unblock, at(3))
        .await
        .expect("unblock");
    let freed = claim(q, 3, at(3)).await;
    assert_eq!(freed.id, id(1), "claimable at once");
    assert_eq!(freed.blocked(), None);
}

/// What a run's attempts cost is stored with the task; a failed attempt that brings
/// it to the issue's budget (2 USD in the conformance policy) ends the run with one
/// `failed` effect that says why, attempts left or not, and it is never claimed
/// again. Under the budget, a failure is retried as usual.
pub async fn spent_budget_fails_the_run(q: &dyn WorkQueue) {
    let costing = |usd| Failure {
        reason: "tests fail".into(),
        retryable: true,
        cost_usd: Some(usd),
        tokens: Some(1000),
    };
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let under = q
        .fail(&id(1), token(&t), costing(1.0), at(1))
        .await
        .expect("fail");
    assert_eq!(
        (under.state(), under.spend().cost_usd),
        (TaskState::Pending, Some(1.0))
    );
    let stored = q.get(&id(1)).await.expect("get").expect("task");
    assert_eq!(
        (stored.state(), stored.spend().cost_usd),
        (TaskState::Pending, Some(1.0))
    );
    q.cancel(&id(1), "closed".into(), at(2))
        .await
        .expect("cancel");

    enqueue(q, 2).await;
    let t = claim(q, 2, at(3)).await;
    let ended = q
        .fail(&id(2), token(&t), costing(2.5), at(4))
        .await
        .expect("fail");
    assert_eq!(
        ended.state(),
        TaskState::Failed,
        "attempts were left, the budget was not"
    );
    let stored = q.get(&id(2)).await.expect("get").expect("task");
    assert_eq!(
        (stored.state(), stored.spend().cost_usd),
        (TaskState::Failed, Some(2.5))
    );
    assert!(
        stored
            .last_error()
            .is_some_and(|e| e.contains("ISSUE_BUDGET_USD")),
        "{:?}",
        stored.last_error()
    );
    let failed = effect_kinds(q).await;
    assert_eq!(failed.iter().filter(|(_, k)| *k == "failed").count(), 1);
    assert_never_claimed(q, "a failed task is never handed out").await;
}

/// A task backing off after a failure is not claimable before its time.
pub async fn backing_off_task_not_claimable_early(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let failed = q
        .fail(&t.id, token(&t), retryable("flaky"), at(1))
        .await
        .unwrap();
    // Backoff after one failure: 10 s, half of it jittered; jitter 0.5 gives 7.5 s.
    assert_eq!(failed.claimable_from(), Some(Timestamp(at(1).0 + 7_500)));
    let early = q
        .claim(&worker(2), LeaseKind::Heartbeat, at(8))
        .await
        .unwrap();
    assert!(early.is_none(), "claimed during backoff");
    let t = claim(q, 2, Timestamp(at(1).0 + 7_500)).await;
    assert_eq!(t.attempts(), 2);
}

/// What `claimers` concurrent claimers got, each claiming at `at(1)` until the
/// queue had nothing more for it.
async fn claim_concurrently(q: &Arc<dyn WorkQueue>, claimers: u32) -> Vec<Task> {
    let mut handles = Vec::new();
    for w in 0..claimers {
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(t) = q
                .claim(&worker(w), LeaseKind::Heartbeat, at(1))
                .await
                .expect("claim")
            {
                got.push(t);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("claimer"));
    }
    all
}

/// A task is never handed to two claimers, even when they claim concurrently.
pub async fn concurrent_claims_never_share_a_task(q: Arc<dyn WorkQueue>) {
    for n in 1..=40 {
        enqueue(&*q, n).await;
    }
    let all: Vec<TaskId> = claim_concurrently(&q, 20)
        .await
        .into_iter()
        .map(|t| t.id)
        .collect();
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 40, "every task claimed once");
    assert_eq!(distinct.len(), 40, "no task claimed twice");
}

/// An issue declaring `body` (its paths), created at `n` seconds.
fn declaring(n: u64, body: &str) -> ReadyIssue {
    ReadyIssue {
        body: body.into(),
        ..issue(n, &["ai-ready"], n as i64)
    }
}

async fn claim_none(q: &dyn WorkQueue, now: Timestamp, why: &str) {
    let got = q.claim(&worker(9), LeaseKind::Heartbeat, now).await;
    assert!(got.expect("claim").is_none(), "{why}");
}

/// A task whose declared paths overlap those of an in-progress task is passed over,
/// however old or urgent, while tasks that do not overlap are handed out; it is
/// claimed once the task holding the lock ends. A barrier path (a lockfile) overlaps
/// every declared path; a task that declares none locks nothing.
pub async fn overlapping_paths_are_never_in_progress_together(q: &dyn WorkQueue) {
    let issues = [
        declaring(1, "Files: src/auth/**"),
        ReadyIssue {
            labels: vec!["ai-ready".into(), "priority:critical".into()],
            ..declaring(2, "Files: src/auth/login.rs")
        },
        declaring(3, "Files: docs/guide.md"),
        declaring(4, "Nothing declared"),
        declaring(5, "Files: Cargo.lock"),
    ];
    for i in issues {
        q.enqueue(i, T0).await.expect("enqueue");
    }
    assert_eq!(get(q, 2).await.locks, ["src/auth/login.rs"]);
    assert_eq!(get(q, 5).await.locks, [crate::locks::EVERYTHING]);
    let first = claim(q, 1, at(1)).await;
    assert_eq!(first.id, id(2), "the critical issue first");
    let beside: Vec<TaskId> = [claim(q, 2, at(1)).await, claim(q, 3, at(1)).await]
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(beside, [id(3), id(4)], "#1 overlaps #2, #5 is a barrier");
    claim_none(q, at(1), "#1 and #5 wait for #2's lock").await;
    q.complete(&first.id, token(&first), done(), at(2))
        .await
        .unwrap();
    let next = claim(q, 4, at(3)).await;
    assert_eq!(next.id, id(1), "the lock ended with #2");
    claim_none(q, at(3), "the barrier waits for #1 and #3").await;
}

/// A lock ends with its task's lease: once the lease lapsed (even before the reaper
/// expired it) a task waiting for the lock is handed out; a release ends it too.
pub async fn a_lock_ends_with_its_lease(q: &dyn WorkQueue) {
    q.enqueue(declaring(1, "Files: src/**"), T0).await.unwrap();
    q.enqueue(declaring(2, "Files: src/a.rs"), T0)
        .await
        .unwrap();
    q.enqueue(declaring(3, "Files: src/b.rs"), T0)
        .await
        .unwrap();
    let holder = claim(q, 1, at(0)).await;
    assert_eq!(holder.id, id(1));
    claim_none(q, at(29), "the lease is live for 30 s").await;
    let after_lapse = claim(q, 2, at(30)).await;
    assert_eq!(after_lapse.id, id(2), "the lapsed lease holds no lock");
    q.release(&after_lapse.id, token(&after_lapse), "done".into(), at(31))
        .await
        .unwrap();
    let again = claim(q, 3, at(31)).await;
    assert_eq!(
        again.id,
        id(2),
        "released: the lock is free, #2 is first again"
    );
}

/// Concurrent claimers never hold two tasks whose paths overlap: of tasks that all
/// lock the same directory only one is in progress, while every task that locks
/// nothing is handed out.
pub async fn concurrent_claims_never_overlap_paths(q: Arc<dyn WorkQueue>) {
    for n in 1..=30 {
        let body = if n % 3 == 0 {
            "Files: src/app/**"
        } else {
            "Nothing"
        };
        q.enqueue(declaring(n, body), T0).await.expect("enqueue");
    }
    let all = claim_concurrently(&q, 12).await;
    let locking = all.iter().filter(|t| !t.locks.is_empty()).count();
    assert_eq!(locking, 1, "one task holds src/app/ at a time");
    assert_eq!(all.len(), 21, "the 20 tasks that lock nothing, and one");
}

/// `LeaseKind::RunTime` leases last the maximum run time.
pub async fn run_time_lease_lasts_max_run(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = q
        .claim(&worker(1), LeaseKind::RunTime, at(1))
        .await
        .unwrap()
        .unwrap();
    let lease = t.lease().unwrap();
    assert_eq!(lease.expires_at, at(1).plus(policy().max_run));
    let expired = q.expire(at(1000)).await.unwrap();
    assert!(
        expired.is_empty(),
        "a run-time lease lapsed after one lease period"
    );
}

/// A heartbeat with the live token extends the lease by one lease period.
pub async fn heartbeat_extends_lease(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let reply = q.heartbeat(&t.id, token(&t), at(20)).await.unwrap();
    assert_eq!(reply.lease_expires_at, at(50));
    assert!(!reply.cancel);
    assert!(
        q.expire(at(40)).await.unwrap().is_empty(),
        "renewed lease lapsed"
    );
    let reply = q.heartbeat(&t.id, token(&t), at(45)).await.unwrap();
    assert_eq!(reply.lease_expires_at, at(75));
}

/// A heartbeat with a stale token fails with `LeaseLost` and changes nothing.
pub async fn heartbeat_with_stale_token_is_lease_lost(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let err = q
        .heartbeat(&t.id, LeaseToken(token(&t).0 ^ 1), at(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(get(q, 1).await.lease().unwrap().expires_at, at(30));
    // A lapsed lease cannot be renewed either.
    let err = q.heartbeat(&t.id, token(&t), at(31)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
}

/// A heartbeat on a task being cancelled answers `cancel: true`.
pub async fn heartbeat_reports_cancellation(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    q.cancel(&t.id, "issue closed".into(), at(5)).await.unwrap();
    let reply = q.heartbeat(&t.id, token(&t), at(6)).await.unwrap();
    assert!(reply.cancel);
    assert_eq!(
        reply.lease_expires_at,
        at(15),
        "the grace period is not extended"
    );
}

/// An unknown task fails with `NotFound`.
pub async fn heartbeat_unknown_task_not_found(q: &dyn WorkQueue) {
    let err = q.heartbeat(&id(404), LeaseToken(1), T0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// Completing with the live token makes the task Completed with a `Completed` effect.
pub async fn complete_makes_task_completed(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    ack_all(q, T0).await;
    let t = claim(q, 7, at(0)).await;
    let done_task = q.complete(&t.id, token(&t), done(), at(20)).await.unwrap();
    assert_eq!(done_task.state(), TaskState::Completed);
    assert_eq!(done_task.finished_at(), Some(at(20)));
    let effects = q.pending_effects(10).await.unwrap();
    assert_eq!(effects.len(), 1);
    match &effects[0].effect.kind {
        EffectKind::Completed {
            pr_url,
            worker: w,
            attempts,
            duration_ms,
            ..
        } => {
            assert_eq!(
                pr_url.as_deref(),
                Some("https://github.com/acme/widgets/pull/1")
            );
            assert_eq!((w, *attempts, *duration_ms), (&worker(7), 1, 20_000));
        }
        other => panic!("expected a Completed effect, got {other:?}"),
    }
}

/// The same completion sent twice with the same token succeeds twice and takes
/// effect once.
pub async fn complete_twice_takes_effect_once(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(5)).await.unwrap();
    let again = q.complete(&t.id, token(&t), done(), at(6)).await.unwrap();
    assert_eq!(again.state(), TaskState::Completed);
    assert_eq!(again.finished_at(), Some(at(5)));
    let kinds = effect_kinds(q).await;
    assert_eq!(kinds, vec![(id(1), "queued"), (id(1), "completed")]);
}

/// Completing with a stale token fails with `LeaseLost` and changes nothing.
pub async fn complete_with_stale_token_changes_nothing(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let before = get(q, 1).await;
    let err = q
        .complete(
            &t.id,
            LeaseToken(token(&t).0.wrapping_add(1)),
            done(),
            at(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(get(q, 1).await, before);
    // The token of an earlier attempt is stale too.
    q.fail(&t.id, token(&t), retryable("flaky"), at(6))
        .await
        .unwrap();
    let t2 = claim(q, 2, at(60)).await;
    let err = q
        .complete(&t.id, token(&t), done(), at(61))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(get(q, 1).await.holder(), Some(&worker(2)));
    assert_eq!(get(q, 1).await.lease().unwrap().token, token(&t2));
}

/// A retryable failure with attempts left puts the task back to Pending after a
/// backoff, with a `RetryScheduled` effect and no `Failed` effect.
pub async fn retryable_failure_backs_off_without_failed_effect(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let after = q
        .fail(&t.id, token(&t), retryable("tests failed"), at(1))
        .await
        .unwrap();
    assert_eq!((after.state(), after.attempts()), (TaskState::Pending, 1));
    assert_eq!(after.last_error(), Some("tests failed"));
    assert_eq!(
        effect_kinds(q).await,
        vec![(id(1), "queued"), (id(1), "retry_scheduled")]
    );
}

/// A failure on the last attempt, or a non-retryable one, makes the task Failed
/// with one `Failed` effect.
pub async fn final_failure_is_failed_with_one_effect(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    enqueue(q, 2).await;
    // Issue 1: two retryable failures use up both attempts.
    let t = claim(q, 1, at(0)).await;
    assert_eq!(t.id, id(1));
    q.fail(&t.id, token(&t), retryable("first"), at(1))
        .await
        .unwrap();
    let t = claim(q, 1, at(100)).await;
    assert_eq!((t.id.clone(), t.attempts()), (id(1), 2));
    let last = q
        .fail(&t.id, token(&t), retryable("second"), at(101))
        .await
        .unwrap();
    assert_eq!(last.state(), TaskState::Failed);
    // Issue 2: a non-retryable failure ends the run at once.
    let t = claim(q, 2, at(102)).await;
    let fatal = Failure {
        reason: "the issue asks for something impossible".into(),
        retryable: false,
        ..Failure::default()
    };
    let failed = q.fail(&t.id, token(&t), fatal, at(103)).await.unwrap();
    assert_eq!((failed.state(), failed.attempts()), (TaskState::Failed, 1));
    let failed_effects: Vec<_> = effect_kinds(q)
        .await
        .into_iter()
        .filter(|(_, k)| *k == "failed")
        .collect();
    assert_eq!(failed_effects, vec![(id(1), "failed"), (id(2), "failed")]);
    assert!(
        q.claim(&worker(3), LeaseKind::Heartbeat, at(999))
            .await
            .unwrap()
            .is_none()
    );
}

/// Failing with a stale token fails with `LeaseLost` and changes nothing.
pub async fn fail_with_stale_token_changes_nothing(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let before = get(q, 1).await;
    let err = q
        .fail(&t.id, LeaseToken(!token(&t).0), retryable("x"), at(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(get(q, 1).await, before);
    assert_eq!(effect_kinds(q).await.len(), 1);
}

/// A released task is Pending at once, and its next claim has the same attempt number.
pub async fn release_spends_no_attempt(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let released = q
        .release(&t.id, token(&t), "out of credits".into(), at(1))
        .await
        .unwrap();
    assert_eq!(released.state(), TaskState::Pending);
    let again = claim(q, 2, at(1)).await;
    assert_eq!(again.attempts(), 1, "the release spent an attempt");
    assert_eq!(effect_kinds(q).await, vec![(id(1), "queued")]);
}

/// A task whose holder asks for clarification is Parked (terminal) with one
/// `clarification_requested` effect and its attempt handed back, its cost kept;
/// repeating the call changes nothing, a stale token is refused, nothing claims it;
/// once its labels are written, the issue seen ready again starts a new run.
pub async fn clarify_parks_without_spending_an_attempt(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let asked = Clarification {
        questions: vec!["Which page?".into()],
        reasoning: "the issue names none".into(),
        cost_usd: Some(0.5),
        tokens: Some(1500),
    };
    let parked = q
        .clarify(&t.id, token(&t), asked.clone(), at(1))
        .await
        .unwrap();
    assert_eq!(parked.state(), TaskState::Parked);
    assert!(parked.handed_back(), "the attempt is handed back");
    assert_eq!(
        (parked.spend().cost_usd, parked.spend().tokens),
        (Some(0.5), Some(1500))
    );
    let again = q.clarify(&t.id, token(&t), asked.clone(), at(2)).await;
    assert_eq!(again.unwrap().state(), TaskState::Parked);
    let stale = q.clarify(&t.id, LeaseToken(7), asked, at(2)).await;
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::LeaseLost);
    let none = q
        .claim(&worker(2), LeaseKind::Heartbeat, at(3))
        .await
        .unwrap();
    assert!(none.is_none(), "a parked task is not handed out");
    assert_eq!(
        effect_kinds(q).await,
        vec![(id(1), "queued"), (id(1), "clarification_requested")]
    );
    assert_eq!(q.counts().await.unwrap().parked, 1);
    ack_all(q, at(4)).await;
    let seen = q.enqueue(issue(1, &["ai-ready"], 1), at(5)).await.unwrap();
    assert_eq!(seen, Enqueued::Requeued);
    let t = get(q, 1).await;
    assert_eq!(
        (t.state(), t.run.number, t.attempts()),
        (TaskState::Pending, 2, 0)
    );
    assert_eq!(
        (t.spend().cost_usd, t.spend().tokens),
        (None, None),
        "a new run's cost starts afresh"
    );
}

/// Releasing with a stale token fails with `LeaseLost`.
pub async fn release_with_stale_token_is_lease_lost(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let err = q
        .release(&t.id, LeaseToken(token(&t).0 ^ 0xff), "x".into(), at(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(get(q, 1).await.state(), TaskState::InProgress);
}

/// A pending task becomes Cancelled at once with a `Cancelled` effect.
pub async fn cancel_pending_is_immediate(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let got = q
        .cancel(&id(1), "issue closed".into(), at(1))
        .await
        .unwrap();
    assert_eq!(got.map(|t| t.state()), Some(TaskState::Cancelled));
    assert_eq!(
        effect_kinds(q).await,
        vec![(id(1), "queued"), (id(1), "cancelled")]
    );
    assert!(
        q.claim(&worker(1), LeaseKind::Heartbeat, at(2))
            .await
            .unwrap()
            .is_none()
    );
}

/// An in-progress task is marked for cancellation, its holder is told on its next
/// heartbeat, and it becomes Cancelled when the holder releases or fails it, or when
/// the lease lapses.
pub async fn cancel_in_progress_waits_for_holder(q: &dyn WorkQueue) {
    for n in 1..=3 {
        enqueue(q, n).await;
    }
    let t1 = claim(q, 1, at(0)).await;
    let t2 = claim(q, 2, at(0)).await;
    let t3 = claim(q, 3, at(0)).await;
    for t in [&t1, &t2, &t3] {
        let marked = q
            .cancel(&t.id, "ready label removed".into(), at(1))
            .await
            .unwrap();
        assert_eq!(marked.map(|t| t.state()), Some(TaskState::InProgress));
    }
    let released = q
        .release(&t1.id, token(&t1), "cancelled".into(), at(2))
        .await
        .unwrap();
    assert_eq!(released.state(), TaskState::Cancelled);
    let failed = q
        .fail(&t2.id, token(&t2), retryable("killed"), at(2))
        .await
        .unwrap();
    assert_eq!(
        failed.state(),
        TaskState::Cancelled,
        "a cancelled task is not retried"
    );
    let expired = q.expire(at(11)).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].id.clone(), expired[0].state()),
        (t3.id.clone(), TaskState::Cancelled)
    );
    let cancelled = effect_kinds(q)
        .await
        .into_iter()
        .filter(|(_, k)| *k == "cancelled")
        .count();
    assert_eq!(cancelled, 3);
}

/// Cancelling a terminal or unknown task returns `None` and changes nothing.
pub async fn cancel_terminal_or_unknown_is_noop(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(1)).await.unwrap();
    let before = get(q, 1).await;
    assert!(
        q.cancel(&id(1), "closed".into(), at(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        q.cancel(&id(404), "closed".into(), at(2))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(get(q, 1).await, before);
}

/// A failed task is Pending again with attempts from zero and a `Queued` effect.
pub async fn retry_failed_starts_new_run(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    let fatal = Failure {
        reason: "no".into(),
        retryable: false,
        ..Failure::default()
    };
    q.fail(&t.id, token(&t), fatal, at(1)).await.unwrap();
    ack_all(q, at(2)).await;
    let retried = q.retry(&id(1), at(3)).await.unwrap();
    assert_eq!(
        (retried.state(), retried.run.number, retried.attempts()),
        (TaskState::Pending, 2, 0)
    );
    assert_eq!(effect_kinds(q).await, vec![(id(1), "queued")]);
    assert_eq!(claim(q, 2, at(4)).await.attempts(), 1);
}

/// Retrying a live or completed task fails with `InvalidTransition`.
pub async fn retry_live_or_completed_is_invalid(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let err = q.retry(&id(1), at(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    let t = claim(q, 1, at(1)).await;
    assert_eq!(
        q.retry(&id(1), at(2)).await.unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    q.complete(&t.id, token(&t), done(), at(3)).await.unwrap();
    assert_eq!(
        q.retry(&id(1), at(4)).await.unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    assert_eq!(
        q.retry(&id(404), at(4)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// `Event::FollowUp` on a completed task starts a new run (`queued` and
/// `follow_up_requested` effects) that is claimed like any, carrying the follow-up
/// through the claim and the completion; what a round answered changes nothing
/// again, and a live task refuses one. Rounds are numbered with the history of
/// the pull request, and past the queue's `follow_up_rounds` a follow-up starts no
/// run: the task stays completed, says so once (`follow_ups_exhausted`) and takes
/// no further follow-up. An operator's word (`Event::MarkPull`) is stored on the
/// completed task, and the new run starts without it.
pub async fn completed_task_followed_up_starts_a_new_run(q: &dyn WorkQueue) {
    use crate::follow_up::{FollowUp, FollowUpCause};
    let follow = |answers: &str, cause: FollowUpCause| crate::state::Event::FollowUp {
        follow_up: FollowUp::new(
            cause,
            "https://github.com/acme/widgets/pull/1",
            answers.into(),
            "alice",
            "please rename foo",
            0,
            at(3),
        ),
    };
    let review = |r: &str| follow(r, FollowUpCause::ChangesRequested);
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(1)).await.unwrap();
    ack_all(q, at(2)).await;
    let word = crate::state::Event::MarkPull {
        state: crate::pull_gate::PullState::ChangesRequested,
    };
    q.apply(&id(1), word, at(2)).await.unwrap();
    assert_eq!(
        get(q, 1).await.pull_mark(),
        Some(crate::pull_gate::PullState::ChangesRequested),
        "an operator's word is stored"
    );
    let again = q.apply(&id(1), review("r1"), at(3)).await.unwrap();
    assert_eq!(again.pull_mark(), None, "a new run starts without it");
    assert_eq!(
        (again.state(), again.run.number, again.attempts()),
        (TaskState::Pending, 2, 0)
    );
    assert_eq!(
        effect_kinds(q).await,
        vec![(id(1), "queued"), (id(1), "follow_up_requested")]
    );
    let err = q.apply(&id(1), review("r2"), at(3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    let t = claim(q, 2, at(4)).await;
    assert_eq!((t.run.number, t.attempts()), (2, 1));
    assert_eq!(t.follow_up().unwrap().feedback, "please rename foo");
    let done_task = q.complete(&t.id, token(&t), done(), at(5)).await.unwrap();
    let f = done_task.follow_up().unwrap();
    assert_eq!((f.answers.as_str(), f.round), ("r1", 1));
    assert_eq!(f.history.len(), 1, "the run that opened the pull request");
    ack_all(q, at(6)).await;
    let same = q.apply(&id(1), review("r1"), at(7)).await.unwrap();
    assert_eq!((same.state(), same.run.number), (TaskState::Completed, 2));
    assert!(effect_kinds(q).await.is_empty());
    let rounds = q.policy().follow_up_rounds;
    for round in 2..=rounds {
        let next = follow(&format!("checks:{round}"), FollowUpCause::Checks);
        q.apply(&id(1), next, at(8)).await.unwrap();
        let t = claim(q, 2, at(9)).await;
        let done_task = q.complete(&t.id, token(&t), done(), at(10)).await.unwrap();
        let f = done_task.follow_up().unwrap();
        assert_eq!((f.round, f.cause), (round, FollowUpCause::Checks));
        ack_all(q, at(11)).await;
    }
    let run = get(q, 1).await.run.number;
    let last = follow("checks:last", FollowUpCause::Checks);
    let left = q.apply(&id(1), last, at(12)).await.unwrap();
    assert_eq!((left.state(), left.run.number), (TaskState::Completed, run));
    let exhausted = left.follow_ups_exhausted().expect("the rounds are used up");
    assert_eq!(
        (exhausted.answers.as_str(), exhausted.round),
        ("checks:last", rounds + 1)
    );
    let kinds: Vec<&str> = effect_kinds(q).await.into_iter().map(|(_, k)| k).collect();
    assert_eq!(kinds.first(), Some(&"follow_ups_exhausted"));
    ack_all(q, at(13)).await;
    let more = follow("comment:9", FollowUpCause::Comments);
    let still = q.apply(&id(1), more, at(14)).await.unwrap();
    assert_eq!(
        (still.state(), still.run.number),
        (TaskState::Completed, run)
    );
    assert!(effect_kinds(q).await.is_empty(), "said once");
    assert!(get(q, 1).await.follow_ups_exhausted().is_some(), "stored");
}

/// A lapsed lease counts as a failed attempt: retried while attempts remain, then
/// Failed.
pub async fn expired_lease_counts_as_failed_attempt(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    claim(q, 1, at(0)).await;
    let expired = q.expire(at(30)).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state(), TaskState::Pending);
    assert_eq!(expired[0].last_error(), Some("worker lost"));
    claim(q, 2, at(100)).await;
    let expired = q.expire(at(130)).await.unwrap();
    assert_eq!(expired[0].state(), TaskState::Failed);
    let kinds: Vec<_> = effect_kinds(q).await.into_iter().map(|(_, k)| k).collect();
    assert_eq!(kinds, vec!["queued", "retry_scheduled", "failed"]);
}

/// Leases that have not lapsed are left alone, and a lapsed token is refused
/// afterwards with `LeaseLost`.
pub async fn live_leases_survive_expire(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    enqueue(q, 2).await;
    let t1 = claim(q, 1, at(0)).await;
    let t2 = claim(q, 2, at(10)).await;
    let expired = q.expire(at(35)).await.unwrap();
    assert_eq!(
        expired.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![t1.id.clone()]
    );
    assert_eq!(get(q, 2).await.state(), TaskState::InProgress);
    let err = q
        .complete(&t1.id, token(&t1), done(), at(36))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    q.complete(&t2.id, token(&t2), done(), at(36))
        .await
        .unwrap();
}

/// After an outage, a lapsed lease that is not yet reaped is live again for one
/// lease period: its holder's heartbeat and completion succeed, and `expire` leaves
/// it alone until that period passed. Leases that already run longer, and tasks
/// not in progress, are unchanged.
pub async fn resume_revives_lapsed_leases_for_one_period(q: &dyn WorkQueue) {
    for n in 1..=4 {
        enqueue(q, n).await;
    }
    let lapsed = claim(q, 1, at(0)).await;
    let finished = claim(q, 2, at(0)).await;
    let fresh = q
        .claim(&worker(3), LeaseKind::RunTime, at(100))
        .await
        .unwrap()
        .unwrap();
    // The orchestrator was down from 10 s to 110 s: leases of 30 s lapsed meanwhile.
    let resumed = q.resume_leases(at(110)).await.unwrap();
    let ids: Vec<_> = resumed.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, vec![lapsed.id.clone(), finished.id.clone()]);
    assert_eq!(resumed[0].lease().unwrap().expires_at, at(140));
    assert_eq!(get(q, 3).await, fresh, "a run-time lease is left alone");
    assert_eq!(get(q, 4).await.state(), TaskState::Pending);
    // The holders report in: finished work is accepted, not lost.
    q.complete(&finished.id, token(&finished), done(), at(111))
        .await
        .unwrap();
    q.heartbeat(&lapsed.id, token(&lapsed), at(112))
        .await
        .unwrap();
    assert!(q.expire(at(139)).await.unwrap().is_empty());
    assert!(
        q.resume_leases(at(112)).await.unwrap().is_empty(),
        "nothing to extend"
    );
    // A holder that stops is reaped one period after its last heartbeat.
    let expired = q.expire(at(200)).await.unwrap();
    let ids: Vec<_> = expired.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, vec![lapsed.id.clone()]);
}

/// Effects come back in the order they were recorded, and stay until acknowledged.
pub async fn effects_in_order_until_acked(q: &dyn WorkQueue) {
    enqueue(q, 2).await;
    enqueue(q, 1).await;
    let t = claim(q, 1, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(1)).await.unwrap();
    let first = q.pending_effects(10).await.unwrap();
    let order: Vec<_> = first
        .iter()
        .map(|e| (e.effect.task.number(), e.effect.kind.name()))
        .collect();
    assert_eq!(order, vec![(2, "queued"), (1, "queued"), (1, "completed")]);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    assert_eq!(
        q.pending_effects(10).await.unwrap(),
        first,
        "reading does not consume"
    );
    assert_eq!(q.pending_effects(2).await.unwrap(), first[..2].to_vec());
    q.ack_effect(first[0].id, at(2)).await.unwrap();
    assert_eq!(q.pending_effects(10).await.unwrap(), first[1..].to_vec());
}

/// An acknowledged effect is not returned again; acknowledging twice is fine.
pub async fn ack_is_idempotent(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let e = q.pending_effects(10).await.unwrap().remove(0);
    q.nack_effect(e.id, &backing_off(at(60))).await.unwrap();
    assert_eq!(q.pending_effects(10).await.unwrap()[0].failures, 1);
    q.ack_effect(e.id, at(1)).await.unwrap();
    q.ack_effect(e.id, at(2)).await.unwrap();
    assert!(q.pending_effects(10).await.unwrap().is_empty());
}

fn backing_off(until: Timestamp) -> EffectFailure {
    EffectFailure {
        error: "GitHub failed (502)".into(),
        refused: false,
        retry_at: Some(until),
    }
}

fn refused_for_good() -> EffectFailure {
    EffectFailure {
        error: "GITHUB_TOKEN may not label issues (403)".into(),
        refused: true,
        retry_at: None,
    }
}

/// Effects `due_effects` hands out at `now`, as (issue number, effect name).
async fn due(q: &dyn WorkQueue, now: Timestamp) -> Vec<(u64, &'static str)> {
    q.due_effects(now, 100)
        .await
        .expect("due effects")
        .into_iter()
        .map(|e| (e.effect.task.number(), e.effect.kind.name()))
        .collect()
}

/// Task 1 with a queued and a completed effect, task 2 with a queued one; returns
/// the pending effects in order.
async fn two_tasks_with_effects(q: &dyn WorkQueue) -> Vec<OutboxEntry> {
    enqueue(q, 1).await;
    enqueue(q, 2).await;
    let t = claim(q, 1, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(1)).await.unwrap();
    let pending = q.pending_effects(10).await.unwrap();
    let order: Vec<_> = pending.iter().map(|e| e.effect.task.number()).collect();
    assert_eq!(order, [1, 2, 1]);
    pending
}

/// The failure count, error and next attempt time are stored; a failure without a
/// retry time sets the effect aside (dead).
pub async fn nack_records_the_failure(q: &dyn WorkQueue) {
    let pending = two_tasks_with_effects(q).await;
    q.nack_effect(pending[0].id, &backing_off(at(60)))
        .await
        .unwrap();
    q.nack_effect(pending[1].id, &refused_for_good())
        .await
        .unwrap();
    let after = q.pending_effects(10).await.unwrap();
    assert_eq!(after.len(), 3, "a failed effect stays in the outbox");
    assert_eq!((after[0].failures, after[0].dead), (1, false));
    assert_eq!(after[0].next_attempt_at, at(60));
    assert_eq!(after[0].last_error.as_deref(), Some("GitHub failed (502)"));
    assert!(after[1].dead && after[1].refused);
    assert_eq!(after[2].failures, 0);
}

/// Recording a failure of an unknown (already applied) effect changes nothing.
pub async fn nack_of_an_applied_effect_changes_nothing(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let e = q.pending_effects(10).await.unwrap().remove(0);
    q.ack_effect(e.id, at(1)).await.unwrap();
    q.nack_effect(e.id, &backing_off(at(60))).await.unwrap();
    assert!(q.pending_effects(10).await.unwrap().is_empty());
    assert!(q.failing_effects(10).await.unwrap().is_empty());
}

/// An effect backing off is not due before its time, and neither are the later
/// effects of its task; the effects of other tasks are.
pub async fn backing_off_effect_holds_back_only_its_task(q: &dyn WorkQueue) {
    let pending = two_tasks_with_effects(q).await;
    assert_eq!(
        due(q, at(2)).await,
        [(1, "queued"), (2, "queued"), (1, "completed")]
    );
    q.nack_effect(pending[0].id, &backing_off(at(60)))
        .await
        .unwrap();
    assert_eq!(due(q, at(2)).await, [(2, "queued")]);
    assert_eq!(
        due(q, at(60)).await,
        [(1, "queued"), (2, "queued"), (1, "completed")]
    );
    let limited = q.due_effects(at(60), 1).await.unwrap();
    assert_eq!(limited.len(), 1, "at most `limit`");
}

/// A dead effect is never due, and holds back the later effects of its task.
pub async fn dead_effect_is_never_due(q: &dyn WorkQueue) {
    let pending = two_tasks_with_effects(q).await;
    q.nack_effect(pending[0].id, &refused_for_good())
        .await
        .unwrap();
    assert_eq!(due(q, at(1_000_000)).await, [(2, "queued")]);
}

/// Failing and dead effects are listed with their failure count and last error;
/// effects that never failed are not.
pub async fn failing_effects_lists_what_failed(q: &dyn WorkQueue) {
    let pending = two_tasks_with_effects(q).await;
    assert!(q.failing_effects(10).await.unwrap().is_empty());
    q.nack_effect(pending[2].id, &backing_off(at(60)))
        .await
        .unwrap();
    q.nack_effect(pending[0].id, &refused_for_good())
        .await
        .unwrap();
    let failing = q.failing_effects(10).await.unwrap();
    let ids: Vec<_> = failing.iter().map(|e| e.id).collect();
    assert_eq!(ids, [pending[0].id, pending[2].id], "oldest first");
    assert!(failing[0].dead && !failing[1].dead);
    assert_eq!(q.failing_effects(1).await.unwrap().len(), 1);
}

/// Revived effects are due again, in their order; effects not named, and effects
/// that are not dead, are unchanged.
pub async fn revived_effects_are_due_again(q: &dyn WorkQueue) {
    enqueue(q, 1).await;
    let gadget = ReadyIssue {
        id: TaskId::new("acme/gadgets", 1).expect("valid id"),
        ..issue(1, &["ai-ready"], 1)
    };
    q.enqueue(gadget, T0).await.expect("enqueue");
    enqueue(q, 2).await;
    let pending = q.pending_effects(10).await.unwrap();
    let (widgets, gadgets) = (pending[0].id, pending[1].id);
    q.nack_effect(widgets, &refused_for_good()).await.unwrap();
    q.nack_effect(gadgets, &refused_for_good()).await.unwrap();
    q.nack_effect(pending[2].id, &backing_off(at(60)))
        .await
        .unwrap();
    let gadgets_only = EffectSelector::Repo("acme/gadgets".into());
    assert_eq!(q.revive_effects(&gadgets_only, at(5)).await.unwrap(), 1);
    assert_eq!(
        q.revive_effects(&gadgets_only, at(5)).await.unwrap(),
        0,
        "once"
    );
    let dead: Vec<_> = q
        .pending_effects(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.dead)
        .collect();
    assert_eq!(dead.len(), 1, "the other repository's effect is still dead");
    assert_eq!(
        q.revive_effects(&EffectSelector::Id(widgets), at(6))
            .await
            .unwrap(),
        1
    );
    let revived = q.pending_effects(10).await.unwrap();
    let by_id = |id| revived.iter().find(|e| e.id == id).unwrap();
    assert_eq!((by_id(widgets).failures, by_id(widgets).dead), (0, false));
    assert_eq!(
        by_id(pending[2].id).next_attempt_at,
        at(60),
        "backing off: unchanged"
    );
    assert_eq!(
        q.revive_effects(&EffectSelector::All, at(7)).await.unwrap(),
        0
    );
    let due_now: Vec<_> = q
        .due_effects(at(7), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert!(due_now.contains(&widgets) && due_now.contains(&gadgets));
}

/// `list` filters by state and holder and pages in id order; `counts` counts by state.
pub async fn list_filters_and_counts(q: &dyn WorkQueue) {
    for n in 1..=5 {
        enqueue(q, n).await;
    }
    let t = claim(q, 1, at(0)).await;
    claim(q, 2, at(0)).await;
    q.complete(&t.id, token(&t), done(), at(1)).await.unwrap();
    let pending = q
        .list(&TaskFilter::states([TaskState::Pending]))
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|t| t.id.number()).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let mine = TaskFilter {
        worker: Some(worker(2)),
        ..TaskFilter::default()
    };
    let held = q.list(&mine).await.unwrap();
    assert_eq!(
        held.iter().map(|t| t.id.number()).collect::<Vec<_>>(),
        vec![2]
    );
    let page = TaskFilter {
        offset: 1,
        limit: Some(2),
        ..TaskFilter::default()
    };
    let paged = q.list(&page).await.unwrap();
    assert_eq!(
        paged.iter().map(|t| t.id.number()).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.pending, c.in_progress, c.completed, c.failed),
        (3, 1, 1, 0)
    );
}

/// A store one process owns always answers `true`; a shared store grants the lease to
/// one holder at a time, and another holder gets it once it lapsed.
pub async fn leader_lease(q: &dyn WorkQueue, shared: bool) {
    let ttl = Duration::from_secs(10);
    assert!(q.lead("orchestrator-a", ttl, at(0)).await.unwrap());
    assert!(
        q.lead("orchestrator-a", ttl, at(5)).await.unwrap(),
        "renewal"
    );
    let b_while_a_leads = q.lead("orchestrator-b", ttl, at(6)).await.unwrap();
    assert_eq!(b_while_a_leads, !shared, "two leaders at once");
    if shared {
        // a renewed at 5 s until 15 s; past that, b takes over and a is out.
        assert!(
            q.lead("orchestrator-b", ttl, at(16)).await.unwrap(),
            "no takeover"
        );
        assert!(!q.lead("orchestrator-a", ttl, at(17)).await.unwrap());
    }
}

/// Once the leader resigned, another holder gets the lease at once; a holder that
/// does not lead changes nothing by resigning.
pub async fn resigned_lead_passes_at_once(q: &dyn WorkQueue, shared: bool) {
    let ttl = Duration::from_secs(10);
    assert!(q.lead("orchestrator-a", ttl, at(0)).await.unwrap());
    q.resign("orchestrator-b", at(1)).await.unwrap();
    assert_eq!(
        q.lead("orchestrator-b", ttl, at(2)).await.unwrap(),
        !shared,
        "b's resignation freed a's lease"
    );
    q.resign("orchestrator-a", at(3)).await.unwrap();
    assert!(
        q.lead("orchestrator-b", ttl, at(3)).await.unwrap(),
        "not free after a resigned"
    );
    assert_eq!(q.lead("orchestrator-a", ttl, at(4)).await.unwrap(), !shared);
}

/// Generates one `#[tokio::test]` per conformance function for a backend; see the
/// [module docs](crate::conformance::queue).
#[macro_export]
macro_rules! queue_conformance {
    ($make:ident) => {
        $crate::queue_conformance!(@suite $make, false);
    };
    ($make:ident, shared) => {
        $crate::queue_conformance!(@suite $make, true);
    };
    (@suite $make:ident, $shared:expr) => {
        mod queue_conformance {
            use super::$make;

            async fn fresh() -> ::std::sync::Arc<dyn $crate::WorkQueue> {
                $make($crate::conformance::queue::policy(), $crate::conformance::queue::jitter()).await
            }

            $crate::queue_conformance!(@each
                enqueue_creates_pending_task,
                enqueue_of_live_issue_is_unchanged,
                enqueue_refreshes_live_issue_data,
                requeue_only_after_terminal_effects_written,
                claim_on_empty_queue_returns_none,
                claim_follows_priority_then_age,
                claim_counts_attempt_with_unique_token,
                backing_off_task_not_claimable_early,
                held_tasks_are_passed_over,
                run_time_lease_lasts_max_run,
                heartbeat_extends_lease,
                heartbeat_with_stale_token_is_lease_lost,
                heartbeat_reports_cancellation,
                heartbeat_unknown_task_not_found,
                complete_makes_task_completed,
                complete_twice_takes_effect_once,
                complete_with_stale_token_changes_nothing,
                retryable_failure_backs_off_without_failed_effect,
                final_failure_is_failed_with_one_effect,
                fail_with_stale_token_changes_nothing,
                release_spends_no_attempt,
                clarify_parks_without_spending_an_attempt,
                release_with_stale_token_is_lease_lost,
                cancel_pending_is_immediate,
                cancel_in_progress_waits_for_holder,
                task_held_for_review_waits_for_approval,
                blocked_task_waits_until_unblocked,
                overlapping_paths_are_never_in_progress_together,
                a_lock_ends_with_its_lease,
                spent_budget_fails_the_run,
                cancel_terminal_or_unknown_is_noop,
                retry_failed_starts_new_run,
                retry_live_or_completed_is_invalid,
                completed_task_followed_up_starts_a_new_run,
                expired_lease_counts_as_failed_attempt,
                live_leases_survive_expire,
                resume_revives_lapsed_leases_for_one_period,
                effects_in_order_until_acked,
                ack_is_idempotent,
                nack_records_the_failure,
                nack_of_an_applied_effect_changes_nothing,
                backing_off_effect_holds_back_only_its_task,
                dead_effect_is_never_due,
                failing_effects_lists_what_failed,
                revived_effects_are_due_again,
                list_filters_and_counts,
            );

            #[test]
            fn the_suite_runs_every_conformance_function() {
                let mut listed = EACH.to_vec();
                listed.extend([
                    "concurrent_claims_never_share_a_task",
                    "concurrent_claims_never_overlap_paths",
                    "leader_lease",
                    "resigned_lead_passes_at_once",
                ]);
                $crate::conformance::assert_runs_every_function(
                    $crate::conformance::queue::SOURCE,
                    &listed,
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_claims_never_share_a_task() {
                $crate::conformance::queue::concurrent_claims_never_share_a_task(fresh().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_claims_never_overlap_paths() {
                $crate::conformance::queue::concurrent_claims_never_overlap_paths(fresh().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn leader_lease() {
                $crate::conformance::queue::leader_lease(&*fresh().await, $shared).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resigned_lead_passes_at_once() {
                $crate::conformance::queue::resigned_lead_passes_at_once(&*fresh().await, $shared)
                    .await;
            }
        }
    };
    (@each $($name:ident),* $(,)?) => {
        /// The functions run one by one below: the check compares them with the suite.
        const EACH: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::queue::$name(&*fresh().await).await;
            }
        )*
    };
}
