//! The events of a running task's lease: the claim that starts an attempt, the
//! heartbeats that keep it, and every way it ends (complete, fail, release,
//! clarify, lapse).

use super::{Applied, Ctx, Draft, EffectKind, Flow, Refusal};
use crate::model::{
    Attempt, Clarification, Completion, Failure, Lease, LeaseEnd, LeaseKind, LeaseToken, Outcome,
    Status, Stop, Task, Timestamp, WorkerId,
};
use crate::redact::redact;

/// The most attempt records a run keeps: the latest, which is all the state
/// machine reads, and enough before it for people; a worker that hands a task
/// back again and again does not grow it without end.
const KEPT_ATTEMPTS: usize = 32;

pub(super) fn claim(
    task: &Task,
    d: &mut Draft,
    worker: WorkerId,
    token: LeaseToken,
    kind: LeaseKind,
    ctx: &Ctx<'_>,
) -> Applied {
    let now = ctx.now;
    if task.claimable_from().is_none_or(|at| at > now) {
        return Err(Refusal::NotClaimable);
    }
    // A handed-back attempt's number is used again.
    let number = task.attempts() + u32::from(!task.handed_back());
    let deadline = now.plus(ctx.policy.max_run);
    let expires_at = match kind {
        LeaseKind::Heartbeat => now.plus(ctx.policy.lease).min(deadline),
        LeaseKind::RunTime => deadline,
    };
    let attempts = &mut d.task.run.attempts;
    if attempts.len() >= KEPT_ATTEMPTS {
        attempts.drain(..=attempts.len() - KEPT_ATTEMPTS);
    }
    attempts.push(Attempt {
        number,
        worker: worker.clone(),
        token,
        started_at: now,
        ended_at: None,
        outcome: None,
        error: None,
        cost_usd: None,
        tokens: None,
        lease: kind,
    });
    d.task.status = Status::Running {
        lease: Lease {
            token,
            worker,
            claimed_at: now,
            expires_at,
            deadline,
            kind,
        },
        stop: None,
    };
    Ok(Flow::Changed)
}

pub(super) fn heartbeat(task: &Task, d: &mut Draft, token: LeaseToken, ctx: &Ctx<'_>) -> Applied {
    let lease = live_lease(task, token, ctx.now)?;
    // Told to stop: the deadline it was given stands.
    if !task.stop_requested() {
        let renewed = ctx.now.plus(ctx.policy.lease).min(lease.deadline);
        let l = lease_mut(d);
        l.expires_at = l.expires_at.max(renewed);
    }
    Ok(Flow::Changed)
}

pub(super) fn complete(
    task: &Task,
    d: &mut Draft,
    token: LeaseToken,
    completion: Completion,
    ctx: &Ctx<'_>,
) -> Applied {
    if repeats(task, token, LeaseEnd::Completed) {
        return Ok(Flow::Unchanged);
    }
    let lease = live_lease(task, token, ctx.now)?;
    spend(d, completion.cost_usd, completion.tokens);
    close_attempt(d, Outcome::Completed, None, ctx.now);
    let spend = d.task.spend();
    let kind = EffectKind::Completed {
        pr_url: completion.pr_url.clone(),
        worker: lease.worker.clone(),
        attempts: task.attempts(),
        duration_ms: u64::try_from(ctx.now.since(task.run.queued_at).as_millis())
            .unwrap_or(u64::MAX),
        cost_usd: spend.cost_usd,
        tokens: spend.tokens,
        revisions: completion.revisions,
        rounds: task
            .follow_up()
            .map(|f| f.rounds(task.run.number, "completed"))
            .unwrap_or_default(),
    };
    let status = Status::Completed {
        completion,
        pull_mark: None,
        exhausted: None,
    };
    finish(d, status, ctx.now);
    d.push(kind);
    Ok(Flow::Changed)
}

pub(super) fn fail(
    task: &Task,
    d: &mut Draft,
    token: LeaseToken,
    failure: Failure,
    ctx: &Ctx<'_>,
) -> Applied {
    if repeats(task, token, LeaseEnd::Failed) {
        return Ok(Flow::Unchanged);
    }
    live_lease(task, token, ctx.now)?;
    spend(d, failure.cost_usd, failure.tokens);
    end_attempt(task, d, failure, LeaseEnd::Failed, ctx);
    Ok(Flow::Changed)
}

pub(super) fn release(
    task: &Task,
    d: &mut Draft,
    token: LeaseToken,
    reason: &str,
    ctx: &Ctx<'_>,
) -> Applied {
    if repeats(task, token, LeaseEnd::Released) {
        return Ok(Flow::Unchanged);
    }
    live_lease(task, token, ctx.now)?;
    let reason = Some(redact(reason));
    if !stopped(task, d, LeaseEnd::Released, reason.clone(), ctx.now) {
        close_attempt(d, Outcome::Released, reason, ctx.now);
        d.task.status = Status::Ready;
    }
    Ok(Flow::Changed)
}

pub(super) fn clarify(
    task: &Task,
    d: &mut Draft,
    token: LeaseToken,
    clarification: Clarification,
    ctx: &Ctx<'_>,
) -> Applied {
    if repeats(task, token, LeaseEnd::Parked) {
        return Ok(Flow::Unchanged);
    }
    live_lease(task, token, ctx.now)?;
    spend(d, clarification.cost_usd, clarification.tokens);
    if stopped(task, d, LeaseEnd::Parked, None, ctx.now) {
        return Ok(Flow::Changed);
    }
    let error = redact(&format!(
        "needs clarification: {}",
        clarification.questions.join(" ")
    ));
    close_attempt(d, Outcome::Parked, Some(error), ctx.now);
    finish(d, Status::Parked, ctx.now);
    d.push(EffectKind::ClarificationRequested {
        questions: clarification.questions.iter().map(|q| redact(q)).collect(),
        reasoning: redact(&clarification.reasoning),
    });
    Ok(Flow::Changed)
}

pub(super) fn expire(task: &Task, d: &mut Draft, ctx: &Ctx<'_>) -> Applied {
    let Some(lease) = task.lease() else {
        return Err(Refusal::NotExpired);
    };
    if ctx.now < lease.expires_at {
        return Err(Refusal::NotExpired);
    }
    let reason = if ctx.now >= lease.deadline {
        "run time exceeded"
    } else {
        "worker lost"
    };
    let failure = Failure {
        reason: reason.to_string(),
        retryable: true,
        ..Failure::default()
    };
    end_attempt(task, d, failure, LeaseEnd::Expired, ctx);
    Ok(Flow::Changed)
}

pub(super) fn resume(task: &Task, d: &mut Draft, ctx: &Ctx<'_>) -> Applied {
    let Some(lease) = task.lease() else {
        return Ok(Flow::Unchanged);
    };
    let grace = ctx.now.plus(ctx.policy.lease).min(lease.deadline);
    // Past the deadline there is nothing to give: the reaper ends the run.
    if grace <= lease.expires_at || grace <= ctx.now {
        return Ok(Flow::Unchanged);
    }
    lease_mut(d).expires_at = grace;
    Ok(Flow::Changed)
}

/// Ends an attempt that failed (reported, or its lease lapsed): cancel, held for
/// review, retry after backoff, or fail for good.
fn end_attempt(task: &Task, d: &mut Draft, failure: Failure, end: LeaseEnd, ctx: &Ctx<'_>) {
    let reason = redact(&failure.reason);
    let failed = match end {
        LeaseEnd::Expired => Outcome::Lost,
        _ => Outcome::Failed,
    };
    if let Some(Stop::Cancel { .. }) = task.stop() {
        stopped(task, d, end, Some(reason), ctx.now);
        return;
    }
    if let Some(spent) = budget_spent(&d.task, ctx.policy.issue_budget_usd) {
        close_attempt(d, failed, Some(reason.clone()), ctx.now);
        fail_for_good(d, format!("{reason}; and {spent}"), ctx.now);
        return;
    }
    if stopped(task, d, end, Some(reason.clone()), ctx.now) {
        return;
    }
    close_attempt(d, failed, Some(reason.clone()), ctx.now);
    if failure.retryable && d.task.attempts() < d.task.run.max_attempts {
        let delay = ctx.policy.backoff.delay(d.task.attempts(), ctx.jitter);
        let at = ctx.now.plus(delay);
        d.task.status = Status::Scheduled { at };
        d.push(EffectKind::RetryScheduled {
            reason,
            next_attempt_at: at,
        });
    } else {
        fail_for_good(d, reason, ctx.now);
    }
}

/// Ends the attempt of a holder that was told to stop, as its stop says: the task
/// is cancelled, or held for review with the attempt handed back. False when the
/// holder was not told to stop.
fn stopped(
    task: &Task,
    d: &mut Draft,
    by: LeaseEnd,
    error: Option<String>,
    now: Timestamp,
) -> bool {
    match task.stop() {
        Some(Stop::Cancel { reason }) => {
            close_attempt(d, Outcome::Cancelled { by }, error, now);
            let status = Status::Cancelled {
                reason: reason.clone(),
            };
            finish(d, status, now);
            d.push(EffectKind::Cancelled {
                reason: "issue no longer ready".into(),
            });
            true
        }
        Some(Stop::Review(review)) => {
            close_attempt(d, Outcome::Withdrawn { by }, error, now);
            d.task.status = Status::Held(crate::model::Holds {
                review: Some(review.clone()),
                blocked: None,
            });
            true
        }
        None => false,
    }
}

fn fail_for_good(d: &mut Draft, reason: String, now: Timestamp) {
    let attempts = d.task.attempts();
    finish(
        d,
        Status::Failed {
            reason: reason.clone(),
        },
        now,
    );
    d.push(EffectKind::Failed { reason, attempts });
}

/// Why a run may have no further attempt: its attempts' reported cost reached the
/// issue's budget.
fn budget_spent(task: &Task, budget: Option<f64>) -> Option<String> {
    let budget = budget?;
    let spent = task.spend().cost_usd.filter(|usd| *usd >= budget)?;
    Some(format!(
        "its budget is spent: its attempts cost ${spent:.2} of ${budget:.2} \
         (ISSUE_BUDGET_USD), so it gets no further attempt"
    ))
}

/// Moves the task to a terminal `status`, at `now`.
pub(super) fn finish(d: &mut Draft, status: Status, now: Timestamp) {
    d.task.status = status;
    d.task.run.finished_at = Some(now);
}

/// Adds a report's cost and tokens to the running attempt.
fn spend(d: &mut Draft, cost_usd: Option<f64>, tokens: Option<u64>) {
    if let Some(a) = d.task.run.attempts.last_mut() {
        let mut s = crate::Spend {
            cost_usd: a.cost_usd,
            tokens: a.tokens,
        };
        s.add(crate::Spend { cost_usd, tokens });
        (a.cost_usd, a.tokens) = (s.cost_usd, s.tokens);
    }
}

/// Records how the running attempt ended.
fn close_attempt(d: &mut Draft, outcome: Outcome, error: Option<String>, now: Timestamp) {
    if let Some(a) = d.task.run.attempts.last_mut() {
        a.outcome = Some(outcome);
        a.ended_at = Some(now);
        if error.is_some() {
            a.error = error;
        }
    }
}

/// Whether a call with `token` repeats the call that ended the run's last attempt.
fn repeats(task: &Task, token: LeaseToken, end: LeaseEnd) -> bool {
    task.lease().is_none()
        && task
            .last_attempt()
            .is_some_and(|a| a.token == token && a.outcome.map(Outcome::ended_by) == Some(end))
}

/// The task's lease, if `token` holds it and it has not lapsed.
fn live_lease(task: &Task, token: LeaseToken, now: Timestamp) -> Result<&Lease, Refusal> {
    match task.lease() {
        Some(l) if l.token == token && now < l.expires_at => Ok(l),
        _ => Err(Refusal::LeaseLost),
    }
}

/// The lease of the task being built (the handlers call it on running tasks only).
pub(super) fn lease_mut(d: &mut Draft) -> &mut Lease {
    match &mut d.task.status {
        Status::Running { lease, .. } => lease,
        _ => unreachable!("only a running task's lease changes"),
    }
}
