//! The events of a task's runs: a new run (the issue labelled ready again, an
//! operator's retry, a request for changes on the pull request), and what is
//! recorded on a finished one.

use super::{Applied, Ctx, Draft, EffectKind, Flow, Refusal, set_issue};
use crate::model::{ReadyIssue, Run, RunCause, Status, Task, Timestamp};
use crate::pull_gate::{PullState, Rework};

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

pub(super) fn rework(task: &Task, d: &mut Draft, rework: Rework, ctx: &Ctx<'_>) -> Applied {
    match task.status {
        Status::Completed { .. } => {}
        ref s if s.is_terminal() => return Err(Refusal::NotCompleted),
        _ => return Err(Refusal::Live),
    }
    if task
        .rework()
        .is_some_and(|r| r.review_id == rework.review_id)
    {
        return Ok(Flow::Unchanged);
    }
    let kind = EffectKind::ReworkRequested {
        reviewer: rework.reviewer.clone(),
        pr_url: rework.pr_url.clone(),
    };
    new_run(d, RunCause::Rework(rework), ctx);
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
