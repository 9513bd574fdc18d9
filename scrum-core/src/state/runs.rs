//! The events of a task's runs: a new run (the issue labelled ready again, an
//! operator's retry, a request for changes on the pull request), and what is
//! recorded on a finished one.

use super::{Applied, Ctx, Draft, EffectKind, Flow, Refusal, set_issue};
use crate::follow_up::{FollowUp, Round};
use crate::model::{ReadyIssue, Run, RunCause, Status, Task, Timestamp};
use crate::pull_gate::PullState;

pub(super) fn requeue(
    task: &Task,
    d: &mut Draft,
    issue: ReadyIssue,
    observed_at: Timestamp,
    ctx: &Ctx<'_>,
) -> Applied {
    if !task.status.is_terminal() {
        return Err(Refusal::Live);
    }
    match task.run.written_at {
        Some(at) if at < observed_at => {}
        _ => return Err(Refusal::NotRelabelled),
    }
    set_issue(&mut d.task, issue, ctx.policy);
    new_run(d, RunCause::Ready, ctx);
    Ok(Flow::Changed)
}

pub(super) fn retry(task: &Task, d: &mut Draft, ctx: &Ctx<'_>) -> Applied {
    match task.status {
        Status::Failed { .. } | Status::Cancelled { .. } | Status::Parked => {
            new_run(d, RunCause::Retry, ctx);
            Ok(Flow::Changed)
        }
        Status::Completed { .. } => Err(Refusal::Completed),
        _ => Err(Refusal::Live),
    }
}

/// A follow-up of the completed task's pull request: numbered after the rounds
/// before it on the same pull request, with their history; a new run while
/// [`super::Policy::follow_up_rounds`] allows, else the pull request is left for
/// people, said once. What the latest follow-up already answers changes nothing.
pub(super) fn follow_up(
    task: &Task,
    d: &mut Draft,
    mut follow_up: FollowUp,
    ctx: &Ctx<'_>,
) -> Applied {
    match task.status {
        Status::Completed { .. } => {}
        ref s if s.is_terminal() => return Err(Refusal::NotCompleted),
        _ => return Err(Refusal::Live),
    }
    let before = task.follow_up().filter(|f| f.pr_url == follow_up.pr_url);
    if task.follow_ups_exhausted().is_some()
        || before.is_some_and(|f| f.answered(&follow_up.answers))
    {
        return Ok(Flow::Unchanged);
    }
    (follow_up.round, follow_up.history) = match before {
        Some(f) => (f.round + 1, f.rounds(task.run.number, "completed")),
        None => (
            1,
            vec![Round {
                run: task.run.number,
                cause: None,
                outcome: "completed".into(),
                answers: String::new(),
                at: task.run.queued_at,
            }],
        ),
    };
    if follow_up.round > ctx.policy.follow_up_rounds {
        let kind = EffectKind::FollowUpsExhausted {
            pr_url: follow_up.pr_url.clone(),
            cause: follow_up.cause,
            feedback: follow_up.feedback.clone(),
            rounds: follow_up.history.clone(),
        };
        if let Status::Completed { exhausted, .. } = &mut d.task.status {
            *exhausted = Some(follow_up);
        }
        d.push(kind);
        return Ok(Flow::Changed);
    }
    let kind = EffectKind::FollowUpRequested {
        author: follow_up.author.clone(),
        pr_url: follow_up.pr_url.clone(),
        cause: follow_up.cause,
        rounds: follow_up.rounds(task.run.number + 1, "running"),
        max_rounds: ctx.policy.follow_up_rounds,
    };
    new_run(d, RunCause::FollowUp(follow_up), ctx);
    d.push(kind);
    Ok(Flow::Changed)
}

pub(super) fn mark_pull(task: &Task, d: &mut Draft, state: PullState) -> Applied {
    let Status::Completed { pull_mark, .. } = &mut d.task.status else {
        return Err(Refusal::NotCompleted);
    };
    if task.pull_mark() == Some(state) {
        return Ok(Flow::Unchanged);
    }
    *pull_mark = Some(state);
    Ok(Flow::Changed)
}

pub(super) fn effects_written(task: &Task, d: &mut Draft, ctx: &Ctx<'_>) -> Applied {
    if !task.status.is_terminal() {
        return Err(Refusal::Live);
    }
    d.task.run.written_at = Some(ctx.now);
    Ok(Flow::Changed)
}

/// Starts the next run of the issue, for `cause`: Ready, attempts from none, the
/// text to be approved anew (the engine records it after the enqueue).
fn new_run(d: &mut Draft, cause: RunCause, ctx: &Ctx<'_>) {
    d.task.status = Status::Ready;
    d.task.run = Run {
        number: d.task.run.number + 1,
        cause,
        max_attempts: ctx.policy.max_attempts.max(1),
        attempts: Vec::new(),
        queued_at: ctx.now,
        finished_at: None,
        written_at: None,
    };
    d.task.approval = None;
    d.task.locks = ctx.policy.locks.keys(&d.task.issue);
    d.push(EffectKind::Queued);
}
