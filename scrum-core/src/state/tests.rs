//! Table-driven tests of each transition, and property tests of the invariants.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::model::{Assignment, LeaseKind, LeaseToken, ReadyIssue, TaskState, Timestamp};
use crate::pull_gate::PullState;

fn policy() -> Policy {
    Policy {
        max_attempts: 2,
        lease: Duration::from_secs(30),
        max_run: Duration::from_secs(600),
        cancel_grace: Duration::from_secs(10),
        backoff: Backoff {
            initial: Duration::from_secs(10),
            cap: Duration::from_secs(60),
        },
        ..Policy::default()
    }
}

fn issue() -> ReadyIssue {
    ReadyIssue {
        id: "acme/widgets#1".parse().unwrap(),
        title: "t".into(),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(0),
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp(secs * 1000)
}

fn step(task: &Task, event: Event, now: Timestamp) -> Result<Step, Refusal> {
    let p = policy();
    transition(
        task,
        event,
        &Ctx {
            now,
            policy: &p,
            jitter: 0.0,
        },
    )
}

const TOKEN: LeaseToken = LeaseToken(7);
const STALE: LeaseToken = LeaseToken(8);

fn pending() -> Task {
    new_task(issue(), t(0), &policy()).task
}

fn claimed() -> Task {
    let claim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: TOKEN,
        lease: LeaseKind::Heartbeat,
    };
    step(&pending(), claim, t(1)).unwrap().task
}

fn on_last_attempt() -> Task {
    let mut task = claimed();
    task.run.attempts[0].number = 2;
    task
}

fn cancelling() -> Task {
    let reason = "closed".to_string();
    step(&claimed(), Event::Cancel { reason }, t(2))
        .unwrap()
        .task
}

fn completed() -> Task {
    let done = Event::Complete {
        token: TOKEN,
        completion: Completion::default(),
    };
    step(&claimed(), done, t(5)).unwrap().task
}

fn written(mut task: Task) -> Task {
    task.run.written_at = Some(t(6));
    task
}

fn review(digest: &str) -> EditReview {
    EditReview {
        editor: "mallory".into(),
        edited_at: Some(t(2)),
        digest: digest.into(),
        held_at: t(2),
    }
}

fn hold() -> Event {
    Event::Hold {
        review: review("sha256:edited"),
    }
}

fn approve() -> Event {
    Event::Approve {
        approval: Approval {
            by: "maintainer".into(),
            at: Some(t(3)),
            digest: "sha256:edited".into(),
        },
        issue: Some(ReadyIssue {
            body: "edited".into(),
            ..issue()
        }),
    }
}

fn held_pending() -> Task {
    step(&pending(), hold(), t(2)).unwrap().task
}

fn held_claimed() -> Task {
    step(&claimed(), hold(), t(2)).unwrap().task
}

fn fail(retryable: bool) -> Event {
    Event::Fail {
        token: TOKEN,
        failure: Failure {
            reason: "boom".into(),
            retryable,
            ..Failure::default()
        },
    }
}

fn clarify(token: LeaseToken) -> Event {
    Event::Clarify {
        token,
        clarification: Clarification {
            questions: vec!["Which page?".into()],
            reasoning: "vague".into(),
            cost_usd: Some(0.25),
            tokens: Some(900),
        },
    }
}

fn parked() -> Task {
    step(&claimed(), clarify(TOKEN), t(3)).unwrap().task
}

fn complete(token: LeaseToken) -> Event {
    Event::Complete {
        token,
        completion: Completion::default(),
    }
}

#[test]
fn transition_table() {
    type Expect = Result<(TaskState, &'static [&'static str]), Refusal>;
    let release = |token| Event::Release {
        token,
        reason: "later".into(),
    };
    let cancel = Event::Cancel {
        reason: "closed".into(),
    };
    let claim = Event::Claim {
        worker: WorkerId::new("w2").unwrap(),
        token: LeaseToken(9),
        lease: LeaseKind::Heartbeat,
    };
    let requeue = |secs| Event::Requeue {
        issue: issue(),
        observed_at: t(secs),
    };
    let rows: Vec<(&str, Task, Event, i64, Expect)> = vec![
        (
            "hold pending",
            pending(),
            hold(),
            2,
            Ok((TaskState::Pending, &["review_requested"])),
        ),
        (
            "hold in progress",
            claimed(),
            hold(),
            2,
            Ok((TaskState::InProgress, &["review_requested"])),
        ),
        (
            "hold again, same edit",
            held_pending(),
            hold(),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "hold completed",
            completed(),
            hold(),
            9,
            Err(Refusal::Terminal),
        ),
        (
            "claim held for review",
            held_pending(),
            claim.clone(),
            3,
            Err(Refusal::NotClaimable),
        ),
        (
            "approve held",
            held_pending(),
            approve(),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "approve completed",
            completed(),
            approve(),
            9,
            Err(Refusal::Terminal),
        ),
        (
            "release held for review",
            held_claimed(),
            release(TOKEN),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "fail held for review",
            held_claimed(),
            fail(false),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "expire held for review",
            held_claimed(),
            Event::Expire,
            12,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "claim pending",
            pending(),
            claim.clone(),
            1,
            Ok((TaskState::InProgress, &[])),
        ),
        (
            "claim held",
            claimed(),
            claim.clone(),
            2,
            Err(Refusal::NotClaimable),
        ),
        (
            "claim completed",
            completed(),
            claim.clone(),
            9,
            Err(Refusal::NotClaimable),
        ),
        (
            "heartbeat live",
            claimed(),
            Event::Heartbeat { token: TOKEN },
            2,
            Ok((TaskState::InProgress, &[])),
        ),
        (
            "heartbeat stale",
            claimed(),
            Event::Heartbeat { token: STALE },
            2,
            Err(Refusal::LeaseLost),
        ),
        (
            "heartbeat lapsed",
            claimed(),
            Event::Heartbeat { token: TOKEN },
            31,
            Err(Refusal::LeaseLost),
        ),
        (
            "complete live",
            claimed(),
            complete(TOKEN),
            3,
            Ok((TaskState::Completed, &["completed"])),
        ),
        (
            "complete stale",
            claimed(),
            complete(STALE),
            3,
            Err(Refusal::LeaseLost),
        ),
        (
            "complete pending",
            pending(),
            complete(TOKEN),
            3,
            Err(Refusal::LeaseLost),
        ),
        (
            "fail retryable",
            claimed(),
            fail(true),
            3,
            Ok((TaskState::Pending, &["retry_scheduled"])),
        ),
        (
            "fail fatal",
            claimed(),
            fail(false),
            3,
            Ok((TaskState::Failed, &["failed"])),
        ),
        (
            "fail last attempt",
            on_last_attempt(),
            fail(true),
            3,
            Ok((TaskState::Failed, &["failed"])),
        ),
        (
            "fail while cancelling",
            cancelling(),
            fail(true),
            3,
            Ok((TaskState::Cancelled, &["cancelled"])),
        ),
        (
            "release live",
            claimed(),
            release(TOKEN),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "clarify live",
            claimed(),
            clarify(TOKEN),
            3,
            Ok((TaskState::Parked, &["clarification_requested"])),
        ),
        (
            "clarify stale",
            claimed(),
            clarify(STALE),
            3,
            Err(Refusal::LeaseLost),
        ),
        (
            "clarify while cancelling",
            cancelling(),
            clarify(TOKEN),
            3,
            Ok((TaskState::Cancelled, &["cancelled"])),
        ),
        (
            "clarify held for review",
            held_claimed(),
            clarify(TOKEN),
            3,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "retry parked",
            parked(),
            Event::Retry,
            9,
            Ok((TaskState::Pending, &["queued"])),
        ),
        (
            "claim parked",
            parked(),
            claim.clone(),
            9,
            Err(Refusal::NotClaimable),
        ),
        (
            "cancel parked",
            parked(),
            cancel.clone(),
            9,
            Err(Refusal::Terminal),
        ),
        (
            "release stale",
            claimed(),
            release(STALE),
            3,
            Err(Refusal::LeaseLost),
        ),
        (
            "release while cancelling",
            cancelling(),
            release(TOKEN),
            3,
            Ok((TaskState::Cancelled, &["cancelled"])),
        ),
        (
            "expire early",
            claimed(),
            Event::Expire,
            30,
            Err(Refusal::NotExpired),
        ),
        (
            "expire lapsed",
            claimed(),
            Event::Expire,
            31,
            Ok((TaskState::Pending, &["retry_scheduled"])),
        ),
        (
            "expire last attempt",
            on_last_attempt(),
            Event::Expire,
            31,
            Ok((TaskState::Failed, &["failed"])),
        ),
        (
            "expire cancelling",
            cancelling(),
            Event::Expire,
            12,
            Ok((TaskState::Cancelled, &["cancelled"])),
        ),
        (
            "expire pending",
            pending(),
            Event::Expire,
            99,
            Err(Refusal::NotExpired),
        ),
        (
            "resume lapsed",
            claimed(),
            Event::Resume,
            100,
            Ok((TaskState::InProgress, &[])),
        ),
        (
            "resume pending",
            pending(),
            Event::Resume,
            100,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "cancel pending",
            pending(),
            cancel.clone(),
            1,
            Ok((TaskState::Cancelled, &["cancelled"])),
        ),
        (
            "cancel held",
            claimed(),
            cancel.clone(),
            2,
            Ok((TaskState::InProgress, &[])),
        ),
        (
            "cancel completed",
            completed(),
            cancel.clone(),
            9,
            Err(Refusal::Terminal),
        ),
        ("requeue live", claimed(), requeue(9), 9, Err(Refusal::Live)),
        (
            "requeue unwritten",
            completed(),
            requeue(9),
            9,
            Err(Refusal::NotRelabelled),
        ),
        (
            "requeue stale listing",
            written(completed()),
            requeue(6),
            9,
            Err(Refusal::NotRelabelled),
        ),
        (
            "requeue relabelled",
            written(completed()),
            requeue(7),
            9,
            Ok((TaskState::Pending, &["queued"])),
        ),
        (
            "retry completed",
            completed(),
            Event::Retry,
            9,
            Err(Refusal::Completed),
        ),
        ("retry live", pending(), Event::Retry, 9, Err(Refusal::Live)),
        (
            "effects written live",
            claimed(),
            Event::EffectsWritten,
            9,
            Err(Refusal::Live),
        ),
    ];
    for (name, task, event, now, expect) in rows {
        let got = step(&task, event, t(now)).map(|s| {
            let kinds: Vec<&str> = s.effects.iter().map(|e| e.kind.name()).collect();
            (s.task.state(), kinds)
        });
        let want = expect.map(|(st, k)| (st, k.to_vec()));
        assert_eq!(got, want, "row {name:?}");
    }
}

#[test]
fn claim_sets_a_lease_and_counts_an_attempt() {
    let task = claimed();
    let lease = task.lease().unwrap();
    assert_eq!((task.attempts(), lease.token), (1, TOKEN));
    assert_eq!(lease.expires_at, t(31));
    assert_eq!(lease.deadline, t(601));
}

#[test]
fn heartbeats_never_pass_the_deadline() {
    let mut task = claimed();
    for secs in (20..700).step_by(20) {
        match step(&task, Event::Heartbeat { token: TOKEN }, t(secs)) {
            Ok(s) => task = s.task,
            Err(e) => {
                assert_eq!(e, Refusal::LeaseLost);
                assert!(secs >= 601, "refused at {secs}s");
                break;
            }
        }
        assert!(task.lease().as_ref().unwrap().expires_at <= t(601));
    }
    let s = step(&task, Event::Expire, t(601)).unwrap();
    assert_eq!(s.task.last_error(), Some("run time exceeded"));
}

#[test]
fn resume_gives_a_lease_one_more_period_up_to_its_deadline() {
    // Claimed at 1 s: the lease lapsed at 31 s, the deadline is 601 s.
    let lapsed = step(&claimed(), Event::Resume, t(100)).unwrap();
    assert!(!lapsed.unchanged);
    assert_eq!(lapsed.task.lease().as_ref().unwrap().expires_at, t(130));
    // The holder can report in now, with the same token.
    step(&lapsed.task, Event::Heartbeat { token: TOKEN }, t(120)).unwrap();
    // A lease that already runs longer, or a task not in progress, stays as it is.
    assert!(step(&claimed(), Event::Resume, t(0)).unwrap().unchanged);
    assert!(step(&completed(), Event::Resume, t(50)).unwrap().unchanged);
    // Never past the deadline: past it, the reaper still ends the run.
    let late = step(&claimed(), Event::Resume, t(590)).unwrap().task;
    assert_eq!(late.lease().as_ref().unwrap().expires_at, t(601));
    assert!(step(&claimed(), Event::Resume, t(700)).unwrap().unchanged);
}

#[test]
fn a_repeated_report_is_unchanged_and_a_different_one_is_refused() {
    let done = completed();
    let again = step(&done, complete(TOKEN), t(9)).unwrap();
    assert!(again.unchanged && again.effects.is_empty());
    assert_eq!(step(&done, fail(true), t(9)), Err(Refusal::LeaseLost));
    let retried = step(&claimed(), fail(true), t(3)).unwrap().task;
    assert!(step(&retried, fail(true), t(4)).unwrap().unchanged);
    assert_eq!(
        step(&retried, complete(TOKEN), t(4)),
        Err(Refusal::LeaseLost)
    );
}

#[test]
fn backoff_delays_the_next_claim() {
    let p = policy();
    let s = transition(
        &claimed(),
        fail(true),
        &Ctx {
            now: t(3),
            policy: &p,
            jitter: 1.0,
        },
    )
    .unwrap();
    assert_eq!(s.task.status, Status::Scheduled { at: t(13) });
    let claim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: LeaseToken(10),
        lease: LeaseKind::Heartbeat,
    };
    assert_eq!(
        step(&s.task, claim.clone(), t(12)),
        Err(Refusal::NotClaimable)
    );
    assert_eq!(step(&s.task, claim, t(13)).unwrap().task.attempts(), 2);
}

#[test]
fn failure_reasons_are_redacted_before_they_reach_an_effect() {
    let event = Event::Fail {
        token: TOKEN,
        failure: Failure {
            reason: "git push https://x:ghp_0123456789abcdefghijklmnop@github.com failed".into(),
            retryable: false,
            ..Failure::default()
        },
    };
    let s = step(&claimed(), event, t(3)).unwrap();
    match &s.effects[0].kind {
        EffectKind::Failed { reason, .. } => assert!(!reason.contains("ghp_"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn effect_markers_name_task_run_attempt_and_event() {
    let s = step(&claimed(), complete(TOKEN), t(3)).unwrap();
    assert_eq!(
        s.effects[0].marker(),
        "scrum-orchestrator:acme/widgets#1:run-1:attempt-1:completed"
    );
}

#[test]
fn a_held_task_waits_for_review_and_an_approval_releases_it_with_the_new_text() {
    let held = held_pending();
    assert_eq!(held.status.name(), "held", "no backend hands it out");
    assert_eq!(held.claimable_from(), None);
    let s = step(&held, approve(), t(3)).unwrap();
    assert!(s.task.review().is_none());
    assert_eq!(s.task.status, Status::Ready, "claimable at once");
    assert_eq!(s.task.issue.body, "edited");
    assert_eq!(s.task.approval.as_ref().unwrap().by, "maintainer");
    let claim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: TOKEN,
        lease: LeaseKind::Heartbeat,
    };
    assert!(step(&s.task, claim, t(3)).is_ok());

    // A holder is told to stop, and its attempt is handed back.
    let stopping = held_claimed();
    assert!(crate::queue::heartbeat_reply(&stopping).cancel);
    assert_eq!(
        stopping.lease().unwrap().expires_at,
        t(12),
        "cut to the grace period"
    );
    let back = step(&stopping, fail(true), t(3)).unwrap().task;
    assert_eq!(
        (back.status.name(), back.handed_back()),
        ("held", true),
        "held, and the attempt handed back"
    );

    // One comment per edit: a different edit gets its own marker.
    let first = step(&pending(), hold(), t(2)).unwrap().effects[0].marker();
    let other = Event::Hold {
        review: review("sha256:other"),
    };
    let second = step(&held, other, t(4)).unwrap().effects[0].marker();
    assert_ne!(first, second);
    assert!(
        first.starts_with("scrum-orchestrator:acme/widgets#1:run-1:attempt-0:review_requested:")
    );
}

fn blocked(by: &[&str], problem: Option<&str>) -> Event {
    Event::Block {
        blocked: Blocked {
            by: by.iter().map(|s| s.parse().unwrap()).collect(),
            problem: problem.map(str::to_string),
            since: t(2),
        },
    }
}

#[test]
fn blocked_rows_of_the_table() {
    type Expect = Result<(TaskState, &'static [&'static str]), Refusal>;
    let claim = Event::Claim {
        worker: WorkerId::new("w2").unwrap(),
        token: LeaseToken(9),
        lease: LeaseKind::Heartbeat,
    };
    let blocked_pending = step(&pending(), blocked(&["acme/widgets#2"], None), t(2))
        .unwrap()
        .task;
    let rows: Vec<(&str, Task, Event, Expect)> = vec![
        (
            "block pending",
            pending(),
            blocked(&["acme/widgets#2"], None),
            Ok((TaskState::Pending, &[])),
        ),
        (
            "block pending with a problem",
            pending(),
            blocked(&["acme/widgets#2"], Some("dependency cycle")),
            Ok((TaskState::Pending, &["dependency_problem"])),
        ),
        (
            "block in progress",
            claimed(),
            blocked(&["acme/widgets#2"], None),
            Err(Refusal::Live),
        ),
        (
            "block completed",
            completed(),
            blocked(&["acme/widgets#2"], None),
            Err(Refusal::Terminal),
        ),
        (
            "claim blocked",
            blocked_pending.clone(),
            claim,
            Err(Refusal::NotClaimable),
        ),
        (
            "unblock blocked",
            blocked_pending,
            Event::Unblock,
            Ok((TaskState::Pending, &[])),
        ),
        (
            "unblock not blocked",
            pending(),
            Event::Unblock,
            Ok((TaskState::Pending, &[])),
        ),
    ];
    for (name, task, event, expect) in rows {
        let got = step(&task, event, t(3)).map(|s| {
            let kinds: Vec<&str> = s.effects.iter().map(|e| e.kind.name()).collect();
            (s.task.state(), kinds)
        });
        let want = expect.map(|(st, k)| (st, k.to_vec()));
        assert_eq!(got, want, "row {name:?}");
    }
}

#[test]
fn a_blocked_task_waits_until_unblocked_and_its_problem_is_said_once() {
    let b = step(&pending(), blocked(&["acme/widgets#2"], None), t(2)).unwrap();
    assert_eq!(b.task.claimable_from(), None);
    assert_eq!(b.task.blocked().as_ref().unwrap().since, t(2));
    // The same answer again changes nothing; a problem is said once, a new one again.
    let same = step(&b.task, blocked(&["acme/widgets#2"], None), t(5)).unwrap();
    assert!(same.unchanged);
    let cycle = step(&b.task, blocked(&["acme/widgets#2"], Some("cycle a")), t(6)).unwrap();
    assert_eq!(cycle.effects.len(), 1);
    assert_eq!(cycle.task.blocked().as_ref().unwrap().since, t(2));
    let again = step(
        &cycle.task,
        blocked(&["acme/widgets#2"], Some("cycle a")),
        t(7),
    )
    .unwrap();
    assert!(again.unchanged);
    let fewer = step(&cycle.task, blocked(&[], Some("cycle a")), t(8)).unwrap();
    assert!(fewer.effects.is_empty() && !fewer.unchanged);
    let other = step(&fewer.task, blocked(&[], Some("cycle b")), t(9)).unwrap();
    assert_ne!(cycle.effects[0].marker(), other.effects[0].marker());
    assert!(cycle.effects[0].marker().contains(":dependency_problem:"));
    // Unblocked: due at once.
    let free = step(&other.task, Event::Unblock, t(10)).unwrap().task;
    assert_eq!((free.blocked(), &free.status), (None, &Status::Ready));
}

#[test]
fn blocked_and_held_for_review_each_lift_only_their_own_hold() {
    let both = step(&held_pending(), blocked(&["acme/widgets#2"], None), t(3))
        .unwrap()
        .task;
    // Approved while blocked: still not due.
    let approved = step(&both, approve(), t(4)).unwrap().task;
    assert_eq!(approved.claimable_from(), None);
    assert!(approved.review().is_none());
    // Unblocked while held: still not due.
    let unblocked = step(&both, Event::Unblock, t(4)).unwrap().task;
    assert_eq!(unblocked.claimable_from(), None);
    // Both lifted: due.
    let free = step(&approved, Event::Unblock, t(5)).unwrap().task;
    assert_eq!(free.status, Status::Ready);
    let free = step(&unblocked, approve(), t(5)).unwrap().task;
    assert_eq!(free.status, Status::Ready);
}

#[test]
fn a_new_run_starts_unblocked() {
    let b = step(&pending(), blocked(&["acme/widgets#2"], None), t(2))
        .unwrap()
        .task;
    let cancelled = step(
        &b,
        Event::Cancel {
            reason: "closed".into(),
        },
        t(3),
    )
    .unwrap()
    .task;
    let again = step(&cancelled, Event::Retry, t(4)).unwrap().task;
    assert_eq!((again.blocked(), &again.status), (None, &Status::Ready));
}

#[test]
fn spending_the_budget_ends_the_run_without_another_attempt() {
    let mut p = policy();
    p.issue_budget_usd = Some(2.0);
    let with = |task: &Task, event: Event, now: Timestamp| {
        let ctx = Ctx {
            now,
            policy: &p,
            jitter: 0.0,
        };
        transition(task, event, &ctx).unwrap()
    };
    let costing = |usd: f64| Event::Fail {
        token: TOKEN,
        failure: Failure {
            reason: "boom".into(),
            retryable: true,
            cost_usd: Some(usd),
            tokens: None,
        },
    };
    // Under the budget: counted, and retried as usual.
    let under = with(&claimed(), costing(0.5), t(2));
    assert_eq!(
        (under.task.state(), under.task.spend().cost_usd),
        (TaskState::Pending, Some(0.5))
    );
    assert_eq!(under.effects[0].kind.name(), "retry_scheduled");
    // At it, with attempts left: failed, and the reason says why.
    let reclaim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: TOKEN,
        lease: LeaseKind::Heartbeat,
    };
    let mut run = under.task.clone();
    run.run.max_attempts = 3;
    let again = with(&run, reclaim, t(60)).task;
    assert_eq!((again.attempts(), again.max_attempts()), (2, 3));
    let over = with(&again, costing(1.5), t(4));
    assert_eq!(over.task.state(), TaskState::Failed);
    let reason = match &over.effects[..] {
        [
            Effect {
                kind: EffectKind::Failed { reason, .. },
                ..
            },
        ] => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        reason.starts_with("boom; and its budget is spent"),
        "{reason}"
    );
    assert!(
        reason.contains("$2.00 of $2.00 (ISSUE_BUDGET_USD)"),
        "{reason}"
    );
    // Without a budget the same spend is only counted.
    let unlimited = step(&again, costing(1.5), t(4)).unwrap().task;
    assert_eq!(unlimited.state(), TaskState::Pending);
    // A lost worker after the budget was spent ends the run too; a new run starts
    // from nothing.
    let mut spent = claimed();
    spent.run.attempts[0].cost_usd = Some(2.0);
    let lost = with(&spent, Event::Expire, t(100));
    assert_eq!(lost.task.state(), TaskState::Failed);
    let next = step(&over.task, Event::Retry, t(6)).unwrap().task;
    assert_eq!(next.spend().cost_usd, None);
}
fn rework(review_id: &str) -> Event {
    Event::FollowUp {
        follow_up: crate::follow_up::FollowUp::new(
            crate::follow_up::FollowUpCause::ChangesRequested,
            "https://github.com/acme/widgets/pull/2",
            review_id.into(),
            "alice",
            "please rename foo",
            0,
            t(7),
        ),
    }
}

fn mark(state: PullState) -> Event {
    Event::MarkPull { state }
}

#[test]
fn an_operators_word_on_the_pull_request_is_kept_until_a_new_run() {
    let marked = step(&completed(), mark(PullState::ChangesRequested), t(6)).unwrap();
    assert!(!marked.unchanged && marked.effects.is_empty());
    assert_eq!(marked.task.pull_mark(), Some(PullState::ChangesRequested));
    let again = step(&marked.task, mark(PullState::ChangesRequested), t(7)).unwrap();
    assert!(again.unchanged);
    let reworked = step(&marked.task, rework("r1"), t(8)).unwrap().task;
    assert_eq!(reworked.pull_mark(), None);
}

#[test]
fn rework_rows_of_the_table() {
    type Expect = Result<(TaskState, &'static [&'static str]), Refusal>;
    let reworking = step(&completed(), rework("r1"), t(7)).unwrap().task;
    let claim = Event::Claim {
        worker: WorkerId::new("w2").unwrap(),
        token: LeaseToken(9),
        lease: LeaseKind::Heartbeat,
    };
    let reworked = {
        let claimed = step(&reworking, claim, t(8)).unwrap().task;
        step(&claimed, complete(LeaseToken(9)), t(9)).unwrap().task
    };
    let rows: Vec<(&str, Task, Event, Expect)> = vec![
        (
            "rework completed",
            written(completed()),
            rework("r1"),
            Ok((TaskState::Pending, &["queued", "follow_up_requested"])),
        ),
        (
            "rework completed, effects not yet written",
            completed(),
            rework("r1"),
            Ok((TaskState::Pending, &["queued", "follow_up_requested"])),
        ),
        (
            "rework again for the same review",
            reworked.clone(),
            rework("r1"),
            Ok((TaskState::Completed, &[])),
        ),
        (
            "rework for a new review",
            reworked,
            rework("r2"),
            Ok((TaskState::Pending, &["queued", "follow_up_requested"])),
        ),
        (
            "rework pending",
            pending(),
            rework("r1"),
            Err(Refusal::Live),
        ),
        (
            "rework in progress",
            claimed(),
            rework("r1"),
            Err(Refusal::Live),
        ),
        (
            "rework while reworking",
            reworking,
            rework("r2"),
            Err(Refusal::Live),
        ),
        (
            "rework failed",
            step(&on_last_attempt(), fail(true), t(3)).unwrap().task,
            rework("r1"),
            Err(Refusal::NotCompleted),
        ),
        (
            "rework parked",
            parked(),
            rework("r1"),
            Err(Refusal::NotCompleted),
        ),
        (
            "rework cancelled",
            step(&pending(), Event::Cancel { reason: "x".into() }, t(1))
                .unwrap()
                .task,
            rework("r1"),
            Err(Refusal::NotCompleted),
        ),
    ];
    for (name, task, event, expect) in rows {
        let got = step(&task, event, t(10)).map(|s| {
            let kinds: Vec<&str> = s.effects.iter().map(|e| e.kind.name()).collect();
            (s.task.state(), kinds)
        });
        let want = expect.map(|(st, k)| (st, k.to_vec()));
        assert_eq!(got, want, "row {name:?}");
    }
}

#[test]
fn a_follow_up_run_carries_its_feedback_to_its_claims_and_keeps_it_once_over() {
    let done = step(&written(completed()), rework("r1"), t(7)).unwrap();
    let task = &done.task;
    assert_eq!(
        (task.run.number, task.attempts(), task.state()),
        (2, 0, TaskState::Pending)
    );
    assert!(task.completion().is_none() && task.status == Status::Ready);
    let f = task.follow_up().unwrap();
    assert_eq!((f.feedback.as_str(), f.round), ("please rename foo", 1));
    let EffectKind::FollowUpRequested {
        author,
        pr_url,
        rounds,
        ..
    } = &done.effects[1].kind
    else {
        panic!("{:?}", done.effects[1].kind);
    };
    assert_eq!(
        (author.as_str(), pr_url.as_str(), rounds.len()),
        ("alice", "https://github.com/acme/widgets/pull/2", 2)
    );
    assert!(
        done.effects[1].marker().ends_with(":run-1:pull"),
        "the completion's comment, updated: {}",
        done.effects[1].marker()
    );
    let claim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: TOKEN,
        lease: LeaseKind::Heartbeat,
    };
    let claimed = step(task, claim, t(8)).unwrap().task;
    let a = Assignment::from_claimed(&claimed, Duration::from_secs(10)).unwrap();
    assert_eq!(a.follow_up.as_ref().unwrap().answers, "r1");
    let with_pull = Event::Complete {
        token: TOKEN,
        completion: Completion {
            pr_url: Some("https://github.com/acme/widgets/pull/2".into()),
            ..Completion::default()
        },
    };
    let finished = step(&claimed, with_pull, t(9)).unwrap();
    assert!(
        finished.effects[0].marker().ends_with(":run-1:pull"),
        "the same comment, updated: {}",
        finished.effects[0].marker()
    );
    let finished = finished.task;
    assert_eq!(finished.follow_up(), claimed.follow_up());
    // A run the ready label starts is no rework.
    let again = Event::Requeue {
        issue: issue(),
        observed_at: t(20),
    };
    let relabelled = step(&written(finished), again, t(21)).unwrap().task;
    assert!(relabelled.follow_up().is_none());
}

/// One random event; tokens pick from a small set so that live and stale tokens
/// both occur often.
fn any_event() -> impl Strategy<Value = (Event, u64)> {
    let token = (0u128..4).prop_map(LeaseToken);
    let ev = prop_oneof![
        (token.clone(), any::<bool>()).prop_map(|(token, run_time)| Event::Claim {
            worker: WorkerId::new("w").unwrap(),
            token,
            lease: if run_time {
                LeaseKind::RunTime
            } else {
                LeaseKind::Heartbeat
            },
        }),
        token.clone().prop_map(|token| Event::Heartbeat { token }),
        token.clone().prop_map(complete),
        (token.clone(), any::<bool>()).prop_map(|(token, retryable)| Event::Fail {
            token,
            failure: Failure {
                reason: "x".into(),
                retryable,
                ..Failure::default()
            },
        }),
        token.prop_map(|token| Event::Release {
            token,
            reason: "x".into(),
        }),
        Just(Event::Expire),
        Just(Event::Resume),
        Just(Event::Cancel {
            reason: "closed".into()
        }),
        (0i64..5).prop_map(|back| Event::Requeue {
            issue: issue(),
            observed_at: Timestamp(-back * 1000),
        }),
        Just(Event::Retry),
        Just(Event::EffectsWritten),
        Just(hold()),
        Just(approve()),
        Just(blocked(&["acme/widgets#2"], Some("cycle"))),
        Just(Event::Unblock),
        Just(rework("r1")),
        Just(rework("r2")),
        Just(mark(PullState::Approved)),
        Just(mark(PullState::Merged)),
    ];
    (ev, 0u64..40_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_over_any_event_sequence(events in prop::collection::vec(any_event(), 1..60)) {
        let p = policy();
        let mut task = pending();
        let mut now = t(0);
        for (event, advance_ms) in events {
            now = Timestamp(now.0 + advance_ms as i64);
            // Requeue listings are relative to now.
            let event = match event {
                Event::Requeue { issue, observed_at } => Event::Requeue { issue, observed_at: Timestamp(now.0 + observed_at.0) },
                e => e,
            };
            let live_token = match (&task.lease(), task.state()) {
                (Some(l), TaskState::InProgress) if now < l.expires_at => Some(l.token),
                _ => None,
            };
            let carried = match &event {
                Event::Heartbeat { token } | Event::Complete { token, .. }
                | Event::Fail { token, .. } | Event::Release { token, .. } => Some(*token),
                _ => None,
            };
            let result = transition(&task, event.clone(), &Ctx { now, policy: &p, jitter: 0.5 });
            // A blocked task is never claimed.
            if task.blocked().is_some() && matches!(event, Event::Claim { .. }) {
                prop_assert!(result.is_err());
            }
            let Ok(s) = result else { continue };
            let next = s.task;
            // A stale token never changes anything.
            if let Some(tok) = carried {
                if Some(tok) != live_token {
                    prop_assert!(s.unchanged && next == task, "stale {event:?} changed the task");
                }
            }
            // At most one live lease, and only while in progress.
            prop_assert_eq!(next.state() == TaskState::InProgress, next.lease().is_some());
            // Attempts never decrease within a run and never pass the maximum.
            if next.run.number == task.run.number {
                prop_assert!(next.attempts() >= task.attempts());
            } else {
                prop_assert_eq!(next.run.number, task.run.number + 1);
                prop_assert!(task.state().is_terminal());
                let new_run_event = matches!(event, Event::Requeue { .. } | Event::Retry | Event::FollowUp { .. });
                prop_assert!(new_run_event);
                // A follow-up starts only from a completion, once per thing it
                // answers, and within the rounds.
                if let Event::FollowUp { follow_up } = &event {
                    prop_assert_eq!(task.state(), TaskState::Completed);
                    prop_assert!(task.follow_up().is_none_or(|f| !f.answered(&follow_up.answers)));
                    let f = next.follow_up().expect("a follow-up run");
                    prop_assert_eq!(&f.answers, &follow_up.answers);
                    prop_assert!(f.round <= crate::state::Policy::default().follow_up_rounds);
                }
            }
            prop_assert!(next.attempts() <= next.max_attempts());
            // No lease outlives its deadline.
            if let Some(l) = next.lease() {
                prop_assert!(l.expires_at <= l.deadline);
            }
            // Terminal states stay terminal unless a new run starts.
            if task.state().is_terminal() && next.run.number == task.run.number {
                prop_assert_eq!(next.state(), task.state());
                prop_assert!(s.effects.is_empty());
            }
            // An operator's word is kept only on a completed run.
            if next.pull_mark().is_some() {
                prop_assert_eq!(next.state(), TaskState::Completed);
            }
            // A Failed effect only when the run is really over.
            for e in &s.effects {
                if matches!(e.kind, EffectKind::Failed { .. }) {
                    prop_assert_eq!(next.state(), TaskState::Failed);
                }
            }
            task = next;
        }
    }
}

#[test]
fn clarify_parks_with_the_questions_and_refunds_the_attempt() {
    let step1 = step(&claimed(), clarify(TOKEN), t(3)).unwrap();
    let p = &step1.task;
    assert_eq!(p.state(), TaskState::Parked);
    assert!(p.handed_back(), "the attempt is handed back");
    assert_eq!(p.finished_at(), Some(t(3)));
    assert_eq!(
        (p.spend().cost_usd, p.spend().tokens),
        (Some(0.25), Some(900))
    );
    assert_eq!(
        step1.effects[0].kind,
        EffectKind::ClarificationRequested {
            questions: vec!["Which page?".into()],
            reasoning: "vague".into()
        }
    );
    let again = step(p, clarify(TOKEN), t(4)).unwrap();
    assert!(again.unchanged, "a repeated report changes nothing");
    // Seen ready after the questions were posted: a new run, its cost from none.
    let written = step(p, Event::EffectsWritten, t(5)).unwrap().task;
    let next = step(
        &written,
        Event::Requeue {
            issue: issue(),
            observed_at: t(6),
        },
        t(6),
    )
    .unwrap();
    assert_eq!(
        (next.task.state(), next.task.run.number),
        (TaskState::Pending, 2)
    );
    assert_eq!(
        (next.task.spend().cost_usd, next.task.spend().tokens),
        (None, None)
    );
}

#[test]
fn reports_add_their_cost_to_the_run() {
    let failed = step(
        &claimed(),
        Event::Fail {
            token: TOKEN,
            failure: Failure {
                reason: "rejected".into(),
                retryable: true,
                cost_usd: Some(1.0),
                tokens: Some(1000),
            },
        },
        t(3),
    )
    .unwrap()
    .task;
    assert_eq!(
        (failed.spend().cost_usd, failed.spend().tokens),
        (Some(1.0), Some(1000))
    );
}

/// The notification rule: with events to tell, a completion, a failure for good,
/// questions and a lapsed lease each add one `Notify` (for every target) when the
/// event is listed, after the step's own effects; a retried failure and every
/// other step add none.
#[test]
fn notifications_follow_the_steps_they_are_about() {
    let mut p = policy();
    p.notify = NotifyEvent::ALL.to_vec();
    let with = |task: &Task, event: Event, now: Timestamp| {
        let ctx = Ctx {
            now,
            policy: &p,
            jitter: 0.0,
        };
        transition(task, event, &ctx).unwrap().effects
    };
    let notes = |effects: &[Effect]| -> Vec<NotifyEvent> {
        effects
            .iter()
            .filter_map(|e| match &e.kind {
                EffectKind::Notify {
                    target: None,
                    event,
                    ..
                } => Some(*event),
                _ => None,
            })
            .collect()
    };
    let done = with(&claimed(), complete(TOKEN), t(5));
    assert_eq!(done[0].kind.name(), "completed", "the labels come first");
    assert_eq!(notes(&done), [NotifyEvent::Completed]);

    let failed = with(&on_last_attempt(), fail(true), t(5));
    assert_eq!(failed[0].kind.name(), "failed");
    assert_eq!(
        notes(&failed),
        [NotifyEvent::Failed],
        "one, for every target"
    );
    assert!(
        notes(&with(&claimed(), fail(true), t(5))).is_empty(),
        "a retry is not news"
    );

    let parked = with(&claimed(), clarify(TOKEN), t(5));
    assert_eq!(parked[0].kind.name(), "clarification_requested");
    assert_eq!(notes(&parked), [NotifyEvent::NeedsClarification]);

    let lost = with(&claimed(), Event::Expire, t(100));
    assert_eq!(notes(&lost), [NotifyEvent::WorkerLost]);
    let EffectKind::Notify { title, detail, .. } = &lost[1].kind else {
        panic!("{lost:?}");
    };
    assert_eq!(
        (title.as_str(), detail.as_deref()),
        ("t", Some("worker lost"))
    );

    // An event no one listens to is not recorded.
    let only_failures = Policy {
        notify: vec![NotifyEvent::Failed],
        ..policy()
    };
    let ctx = Ctx {
        now: t(5),
        policy: &only_failures,
        jitter: 0.0,
    };
    let done = transition(&claimed(), complete(TOKEN), &ctx).unwrap();
    assert!(notes(&done.effects).is_empty());
    // Without events (the default policy) nothing is recorded.
    assert!(notes(&step(&claimed(), complete(TOKEN), t(5)).unwrap().effects).is_empty());
    // One stored by a release that recorded one per target keeps its target.
    let old = r#"{"task":"acme/widgets#1","run":1,"attempt":1,"kind":{"type":"notify","target":"slack","event":"completed","title":"t","detail":null,"attempts":1,"max_attempts":2}}"#;
    let EffectKind::Notify { target, event, .. } =
        serde_json::from_str::<Effect>(old).unwrap().kind
    else {
        panic!("not a notification");
    };
    assert_eq!(
        (target.as_deref(), event),
        (Some("slack"), NotifyEvent::Completed)
    );
    // Stored effects read back (the stores keep them as JSON or MessagePack).
    let json = serde_json::to_string(&lost[1]).unwrap();
    assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), lost[1]);
}

#[test]
fn a_rework_effect_stored_before_follow_ups_reads_as_a_follow_up() {
    let old = r#"{"task":"acme/widgets#1","run":2,"attempt":0,"kind":{"type":"rework_requested","reviewer":"alice","pr_url":"https://github.com/acme/widgets/pull/2"}}"#;
    let EffectKind::FollowUpRequested {
        author,
        pr_url,
        cause,
        ..
    } = serde_json::from_str::<Effect>(old).unwrap().kind
    else {
        panic!("not a follow-up");
    };
    assert_eq!(
        (author.as_str(), pr_url.as_str(), cause),
        (
            "alice",
            "https://github.com/acme/widgets/pull/2",
            crate::follow_up::FollowUpCause::ChangesRequested
        )
    );
}

/// The module doc's table is the one table of the state machine: every event has
/// its row (the match below fails to compile when an event is added, so its name
/// is added here and its row in the doc), and every named state shows in it.
#[test]
fn the_module_docs_table_names_every_event_and_state() {
    fn name(e: &Event) -> &'static str {
        match e {
            Event::Claim { .. } => "Claim",
            Event::Heartbeat { .. } => "Heartbeat",
            Event::Complete { .. } => "Complete",
            Event::Fail { .. } => "Fail",
            Event::Release { .. } => "Release",
            Event::Clarify { .. } => "Clarify",
            Event::Expire => "Expire",
            Event::Resume => "Resume",
            Event::Cancel { .. } => "Cancel",
            Event::Requeue { .. } => "Requeue",
            Event::Retry => "Retry",
            Event::EffectsWritten => "EffectsWritten",
            Event::Approve { .. } => "Approve",
            Event::Hold { .. } => "Hold",
            Event::Block { .. } => "Block",
            Event::Unblock => "Unblock",
            Event::FollowUp { .. } => "FollowUp",
            Event::MarkPull { .. } => "MarkPull",
        }
    }
    let source = include_str!("../state.rs");
    let rows: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//! | "))
        .collect();
    let events = [
        Event::Expire,
        Event::Resume,
        Event::Retry,
        Event::EffectsWritten,
        Event::Unblock,
        Event::Claim {
            worker: WorkerId::new("w").unwrap(),
            token: TOKEN,
            lease: LeaseKind::Heartbeat,
        },
        Event::Heartbeat { token: TOKEN },
        complete(TOKEN),
        fail(true),
        Event::Release {
            token: TOKEN,
            reason: String::new(),
        },
        clarify(TOKEN),
        Event::Cancel {
            reason: String::new(),
        },
        Event::Requeue {
            issue: issue(),
            observed_at: t(0),
        },
        approve(),
        hold(),
        blocked(&[], None),
        rework("r1"),
        Event::MarkPull {
            state: PullState::Open,
        },
    ];
    for e in &events {
        let cell = format!("`{}`", name(e));
        assert!(
            rows.iter()
                .any(|r| r.split(" | ").nth(1).is_some_and(|c| c.contains(&cell))),
            "no row of the table in state.rs's docs has the event {cell}"
        );
    }
    let names: std::collections::BTreeSet<&str> = events.iter().map(name).collect();
    assert_eq!(names.len(), 18, "every event listed once above");
    for state in [
        "Ready",
        "Scheduled",
        "Held",
        "Running",
        "Completed",
        "Failed",
        "Cancelled",
        "Parked",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(state)),
            "the table never names {state}"
        );
    }
}
