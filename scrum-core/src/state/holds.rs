//! The events that hold a waiting task back or stop a running one, and lift
//! that again: cancel, hold for review and approve, block and unblock.

use super::lease::{finish, lease_mut};
use super::{Applied, Ctx, Draft, EffectKind, Flow, Refusal, set_issue};
use crate::deps::Blocked;
use crate::model::{Approval, EditReview, Holds, ReadyIssue, Status, Stop, Task};
use crate::redact::redact;

pub(super) fn cancel(task: &Task, d: &mut Draft, reason: &str, ctx: &Ctx<'_>) -> Applied {
    match &task.status {
        Status::Ready | Status::Scheduled { .. } | Status::Held(_) => {
            let reason = redact(reason);
            let status = Status::Cancelled {
                reason: reason.clone(),
            };
            finish(d, status, ctx.now);
            d.push(EffectKind::Cancelled { reason });
            Ok(Flow::Changed)
        }
        Status::Running {
            stop: Some(Stop::Cancel { .. }),
            ..
        } => Ok(Flow::Unchanged),
        Status::Running { .. } => {
            stop_holder(
                d,
                Stop::Cancel {
                    reason: redact(reason),
                },
                ctx,
            );
            Ok(Flow::Changed)
        }
        _ => Err(Refusal::Terminal),
    }
}

pub(super) fn approve(
    task: &Task,
    d: &mut Draft,
    approval: Approval,
    issue: Option<ReadyIssue>,
    ctx: &Ctx<'_>,
) -> Applied {
    if task.status.is_terminal() {
        return Err(Refusal::Terminal);
    }
    if task.approval.as_ref() == Some(&approval) && task.review().is_none() && issue.is_none() {
        return Ok(Flow::Unchanged);
    }
    if let Some(issue) = issue {
        set_issue(&mut d.task, issue, ctx.policy);
    }
    d.task.approval = Some(approval);
    match &mut d.task.status {
        Status::Held(holds) => {
            holds.review = None;
            d.task.status = Status::held(std::mem::take(holds));
        }
        Status::Running { stop, .. } if matches!(stop, Some(Stop::Review(_))) => *stop = None,
        _ => {}
    }
    Ok(Flow::Changed)
}

pub(super) fn hold(task: &Task, d: &mut Draft, review: EditReview, ctx: &Ctx<'_>) -> Applied {
    if task.status.is_terminal() {
        return Err(Refusal::Terminal);
    }
    if task.review().is_some_and(|r| r.digest == review.digest) {
        return Ok(Flow::Unchanged);
    }
    let kind = EffectKind::ReviewRequested {
        editor: review.editor.clone(),
        digest: review.digest.clone(),
    };
    match &mut d.task.status {
        Status::Held(holds) => holds.review = Some(review),
        Status::Running { stop, .. } => {
            // Being cancelled already: the cancellation stands, the comment goes out.
            if !matches!(stop, Some(Stop::Cancel { .. })) {
                stop_holder(d, Stop::Review(review), ctx);
            }
        }
        _ => {
            d.task.status = Status::Held(Holds {
                review: Some(review),
                blocked: None,
            });
        }
    }
    d.push(kind);
    Ok(Flow::Changed)
}

pub(super) fn block(task: &Task, d: &mut Draft, blocked: Blocked) -> Applied {
    let mut holds = match &task.status {
        Status::Ready | Status::Scheduled { .. } => Holds::default(),
        Status::Held(holds) => holds.clone(),
        Status::Running { .. } => return Err(Refusal::Live),
        _ => return Err(Refusal::Terminal),
    };
    let before = task.blocked();
    if before.is_some_and(|b| b.same_as(&blocked)) {
        return Ok(Flow::Unchanged);
    }
    if let Some(problem) = blocked
        .problem
        .clone()
        .filter(|p| before.and_then(|b| b.problem.as_ref()) != Some(p))
    {
        d.push(EffectKind::DependencyProblem { problem });
    }
    let since = before.map_or(blocked.since, |b| b.since);
    holds.blocked = Some(Blocked { since, ..blocked });
    d.task.status = Status::Held(holds);
    Ok(Flow::Changed)
}

pub(super) fn unblock(task: &Task, d: &mut Draft) -> Applied {
    let Status::Held(holds) = &task.status else {
        return Ok(Flow::Unchanged);
    };
    if holds.blocked.is_none() {
        return Ok(Flow::Unchanged);
    }
    d.task.status = Status::held(Holds {
        blocked: None,
        ..holds.clone()
    });
    Ok(Flow::Changed)
}

/// Tells a running task's holder to stop (on its next heartbeat), and cuts its
/// lease to the grace period.
fn stop_holder(d: &mut Draft, why: Stop, ctx: &Ctx<'_>) {
    let grace = ctx.now.plus(ctx.policy.cancel_grace);
    let l = lease_mut(d);
    l.expires_at = l.expires_at.min(grace);
    if let Status::Running { stop, .. } = &mut d.task.status {
        *stop = Some(why);
    }
}
