//! The task state machine: a pure function from (task, event, now) to the next task
//! and the tracker effects the step causes. Backends persist what it decides; they
//! never decide themselves.
//!
//! This is the one picture of a task's life; the README and ARCHITECTURE.md link
//! here. A task is in one named [`Status`], with the data of that state inside it:
//!
//! ```text
//!                     claim (attempt n, new lease)
//!   enqueue ──► Ready ─────────────────────────────► Running ──complete──► Completed
//!                ▲ ▲ ▲                               │  │  │  │
//!                │ │ └──release (attempt handed back)┘  │  │  └─clarify──► Parked
//!                │ │                                    │  └─fail / lapse, none left──► Failed
//!                │ └── Scheduled { at } ◄──fail / lapse,┘     (or the run's budget spent)
//!                │      (backoff ends)     attempts left
//!                └── Held { review, blocked } ◄── an edit by someone who may not
//!                      (each reason lifted       approve (Running: the holder is told
//!                       by its own event)        to stop first), or open blockers
//!   Ready, Scheduled, Held ──cancel──► Cancelled
//!   Running ──cancel──► Running { stop: Cancel } ──the holder stops or the lease lapses──► Cancelled
//!   Completed, Failed, Cancelled, Parked ──requeue (labelled ready again) / retry / follow-up──► Ready (a new run)
//! ```
//!
//! | from | event | to | effects |
//! | --- | --- | --- | --- |
//! | – | enqueue ([`new_task`]) | Ready, run 1 | `Queued` |
//! | Ready, or Scheduled whose time came | `Claim` | Running, a new attempt and lease (the attempt handed back last is used again) | – |
//! | Running, live token | `Heartbeat` | Running, lease renewed up to the deadline (not while told to stop) | – |
//! | Running, live token | `Complete` | Completed | `Completed` |
//! | Running, live token | `Fail` retryable, attempts left | Scheduled after backoff | `RetryScheduled` |
//! | Running, live token | `Fail` otherwise, or the run's cost reached [`Policy::issue_budget_usd`] | Failed | `Failed` |
//! | Running, live token | `Release` | Ready, attempt handed back | – |
//! | Running, live token | `Clarify` | Parked, attempt handed back | `ClarificationRequested` |
//! | Running, lease lapsed | `Expire` | as `Fail` retryable, "worker lost" (or "run time exceeded") | as `Fail` |
//! | Running | `Resume` (orchestrator start) | Running, lease at least one period from now, up to the deadline | – |
//! | Ready, Scheduled, Held | `Cancel` | Cancelled | `Cancelled` |
//! | Running | `Cancel` | Running, stop: cancel, lease cut to the grace period | – |
//! | Running, stop: cancel | `Fail`, `Release`, `Clarify`, `Expire` | Cancelled | `Cancelled` |
//! | Ready, Scheduled, Held | `Hold` (an edit by someone who may not approve) | Held for review | `ReviewRequested` |
//! | Running | `Hold` | Running, stop: review, lease cut to the grace period | `ReviewRequested` |
//! | Running, stop: review | `Fail`, `Release`, `Clarify`, `Expire` | Held for review, attempt handed back | – |
//! | live | `Approve` | same, the approval recorded; a review hold lifted (Ready once nothing holds) | – |
//! | Ready, Scheduled, Held | `Block` (open blockers, or a dependency problem) | Held, blocked | `DependencyProblem` when the problem is new |
//! | Running | `Block` | refused (`Live`): the engine releases a claim it finds blocked first | – |
//! | Held, blocked | `Unblock` | Ready once nothing else holds | – |
//! | terminal, effects written before the issue was seen ready | `Requeue` | Ready, a new run | `Queued` |
//! | Failed, Cancelled, Parked | `Retry` (operator) | Ready, a new run | `Queued` |
//! | Completed | `FollowUp` (its pull request needs one: a red check, a conflict, a request for changes, a `/agent` comment; once per thing answered), within `follow_up_rounds` | Ready, a new run carrying it, numbered after the rounds before it | `Queued`, `FollowUpRequested` |
//! | Completed | `FollowUp` past `follow_up_rounds` | Completed, the follow-up recorded as left for people (later ones change nothing) | `FollowUpsExhausted` |
//! | Completed | `MarkPull` (an operator's word on its pull request) | Completed, the word recorded | – |
//! | terminal | `EffectsWritten` | same, the run's `written_at` recorded | – |
//! | Held, Running (not due), terminal | `Claim` | refused (`NotClaimable`) | – |
//!
//! Every event that does not apply to a state is refused with a [`Refusal`] and
//! changes nothing. A call that repeats the one that ended an attempt, with that
//! attempt's token, succeeds and changes nothing ([`Step::unchanged`]); any other
//! call with a token that is not the live lease's fails with [`Refusal::LeaseLost`].
//!
//! Locks are the one claim rule no single task decides: a task's keys are set with
//! its issue ([`set_issue`], from [`Policy::locks`]), and every store checks them
//! against its running tasks inside its claim, atomically with the lease
//! ([`crate::locks`], [`crate::backend::LiveIndex::lock_holder`]). Gates that
//! depend on the fleet rather than the task (pause, drain, review gating, budgets,
//! repositories refusing writes) are answered at claim time by the engine.
//!
//! Each attempt is kept in the run's record ([`crate::model::Run`]) with its
//! worker, times, outcome, error and cost; the run's spend is their sum. A run
//! started by `FollowUp` carries it ([`crate::model::RunCause::FollowUp`]) to
//! every claim of it and keeps it once over, with the rounds before it, so what
//! one round answered never starts another. A step with a `Completed`, `Failed` or `ClarificationRequested` effect,
//! or an `Expire`, also records one `Notify` when [`Policy::notify`] lists the
//! event ([`notify`]); the engine sends it to every configured target.

use std::sync::Arc;

use crate::deps::Blocked;
use crate::error::{Error, ErrorKind};
use crate::follow_up::FollowUp;
use crate::model::{
    Approval, Clarification, Completion, EditReview, Failure, LeaseKind, LeaseToken, ReadyIssue,
    Run, RunCause, Status, Task, Timestamp, WorkerId,
};
use crate::pull_gate::PullState;

mod effect;
mod holds;
mod lease;
pub mod notify;
mod outbox;
mod policy;
mod runs;

pub use effect::{Effect, EffectKind};
pub use notify::NotifyEvent;
pub use outbox::{EffectRetry, FailureClass, effect_failure};
pub use policy::{Backoff, Ctx, Jitter, Policy};

/// Something that happens to a task.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A worker takes the task.
    Claim {
        /// Who.
        worker: WorkerId,
        /// A fresh token, unique to this claim.
        token: LeaseToken,
        /// How long the lease lasts.
        lease: LeaseKind,
    },
    /// The holder is alive.
    Heartbeat {
        /// The holder's token.
        token: LeaseToken,
    },
    /// The holder finished.
    Complete {
        /// The holder's token.
        token: LeaseToken,
        /// What it produced.
        completion: Completion,
    },
    /// The holder's attempt failed.
    Fail {
        /// The holder's token.
        token: LeaseToken,
        /// Why, and whether to retry.
        failure: Failure,
    },
    /// The holder hands the task back without spending an attempt.
    Release {
        /// The holder's token.
        token: LeaseToken,
        /// Why (needs clarification, out of credits, shutting down).
        reason: String,
    },
    /// The holder found the issue too vague to work on: the task is parked until a
    /// person answers its questions.
    Clarify {
        /// The holder's token.
        token: LeaseToken,
        /// The questions.
        clarification: Clarification,
    },
    /// The reaper found the lease lapsed.
    Expire,
    /// An orchestrator starts serving the queue, possibly after an outage in which
    /// no heartbeat could arrive: the lease gets at least one lease period from now
    /// (never past its deadline), so a worker that kept running can report in
    /// before the reaper takes its task. Changes nothing on a task not in progress.
    Resume,
    /// The issue was closed or lost its ready label.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The issue was seen ready again (listed at `observed_at`) after a terminal run.
    Requeue {
        /// The issue as seen.
        issue: ReadyIssue,
        /// When the listing that showed it started.
        observed_at: Timestamp,
    },
    /// An operator asks for a new run of a failed or cancelled task.
    Retry,
    /// The dispatcher wrote the terminal state's GitHub effects.
    EffectsWritten,
    /// The task's text is approved: recorded with who approved it. With `issue`, the
    /// text changed and the new one (approved by a person who may) replaces it. Lifts
    /// a review hold.
    Approve {
        /// Who approved which text.
        approval: Approval,
        /// The approved issue, when its text changed since the task stored it.
        issue: Option<ReadyIssue>,
    },
    /// The text was changed, after its approval, by someone who may not approve: the
    /// task is held until a person who may applies the ready label again.
    Hold {
        /// The edit.
        review: EditReview,
    },
    /// The issue's blockers are not all closed, or its dependencies have a problem:
    /// the pending task is not handed out ([`crate::deps`]).
    Block {
        /// What blocks it.
        blocked: Blocked,
    },
    /// Every blocker of the issue is closed: a blocked task may be handed out.
    Unblock,
    /// The completed task's pull request needs a follow-up ([`crate::follow_up`]):
    /// a new run answers it on the same branch, or, past
    /// [`Policy::follow_up_rounds`], the pull request is left for people.
    FollowUp {
        /// The pull request, the cause and the feedback.
        follow_up: FollowUp,
    },
    /// An operator says what the completed task's pull request's review state is
    /// (`POST /pr-review/…`): recorded on the task, so it outlives the process
    /// that heard it ([`crate::pull_gate`]).
    MarkPull {
        /// The state they gave.
        state: PullState,
    },
}

/// Why an event does not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token is not the live lease's (or the lease lapsed).
    #[error("the lease is no longer held by this token")]
    LeaseLost,
    /// The task is not pending, is backing off, or is being cancelled.
    #[error("the task cannot be claimed now")]
    NotClaimable,
    /// The lease has not lapsed.
    #[error("the lease has not expired")]
    NotExpired,
    /// The task is terminal and the event would change it.
    #[error("the task is finished")]
    Terminal,
    /// The task is live (a new run needs a terminal task).
    #[error("the task is still live")]
    Live,
    /// The terminal labels were not yet written when the issue was seen ready, so the
    /// ready label is the old run's, not a new request.
    #[error("the issue has not been labelled ready since the last run ended")]
    NotRelabelled,
    /// A completed task cannot be retried by an operator.
    #[error("a completed task cannot be retried")]
    Completed,
    /// Only a completed task's pull request is followed up or marked.
    #[error("only a completed task's pull request is followed up or marked")]
    NotCompleted,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        let kind = match r {
            Refusal::LeaseLost => ErrorKind::LeaseLost,
            _ => ErrorKind::InvalidTransition,
        };
        Error::new(kind, r.to_string())
    }
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The task after the step.
    pub task: Task,
    /// The tracker effects to record with it.
    pub effects: Vec<Effect>,
    /// True when the event repeated the call that ended the lease, or changed
    /// nothing: nothing needs persisting.
    pub unchanged: bool,
}

impl Step {
    /// A step that stores `task` as given, with no effects: a refreshed task, or
    /// one a claim stores back as it was (which re-indexes it and ends a
    /// reservation).
    pub fn store(task: Task) -> Step {
        Step {
            task,
            effects: Vec::new(),
            unchanged: false,
        }
    }
}

/// Whether an event changed the task.
enum Flow {
    Changed,
    Unchanged,
}

/// What one event handler answers.
type Applied = Result<Flow, Refusal>;

/// A step being built: the next task (a copy of the old one, stamped with the
/// step's time) and the effects recorded so far.
struct Draft {
    task: Task,
    effects: Vec<Effect>,
}

impl Draft {
    fn push(&mut self, kind: EffectKind) {
        let effect = effect_of(&self.task, kind);
        self.effects.push(effect);
    }
}

/// A new task (run 1) for an issue seen ready, and its `Queued` effect.
pub fn new_task(issue: ReadyIssue, now: Timestamp, policy: &Policy) -> Step {
    let task = Task {
        id: issue.id.clone(),
        locks: policy.locks.keys(&issue),
        issue: Arc::new(issue),
        status: Status::Ready,
        run: Run {
            number: 1,
            cause: RunCause::Ready,
            max_attempts: policy.max_attempts.max(1),
            attempts: Vec::new(),
            queued_at: now,
            finished_at: None,
            written_at: None,
        },
        approval: None,
        updated_at: now,
    };
    let effects = vec![effect_of(&task, EffectKind::Queued)];
    Step {
        task,
        effects,
        unchanged: false,
    }
}

/// An effect about `task` as it is now: its run, and the number of its latest
/// attempt (0 before the first claim).
fn effect_of(task: &Task, kind: EffectKind) -> Effect {
    Effect {
        task: task.id.clone(),
        run: task.run.number,
        attempt: task.last_attempt().map_or(0, |a| a.number),
        kind,
    }
}

/// Applies `event` to `task` at `ctx.now`. Pure: no I/O, no clock, no randomness
/// beyond `ctx.jitter`. Each event has its handler; this only dispatches.
pub fn transition(task: &Task, event: Event, ctx: &Ctx<'_>) -> Result<Step, Refusal> {
    let expired = matches!(event, Event::Expire);
    let mut d = Draft {
        task: task.clone(),
        effects: Vec::new(),
    };
    d.task.updated_at = ctx.now;
    let flow = match event {
        Event::Claim {
            worker,
            token,
            lease,
        } => lease::claim(task, &mut d, worker, token, lease, ctx),
        Event::Heartbeat { token } => lease::heartbeat(task, &mut d, token, ctx),
        Event::Complete { token, completion } => {
            lease::complete(task, &mut d, token, completion, ctx)
        }
        Event::Fail { token, failure } => lease::fail(task, &mut d, token, failure, ctx),
        Event::Release { token, reason } => lease::release(task, &mut d, token, &reason, ctx),
        Event::Clarify {
            token,
            clarification,
        } => lease::clarify(task, &mut d, token, clarification, ctx),
        Event::Expire => lease::expire(task, &mut d, ctx),
        Event::Resume => lease::resume(task, &mut d, ctx),
        Event::Cancel { reason } => holds::cancel(task, &mut d, &reason, ctx),
        Event::Approve { approval, issue } => holds::approve(task, &mut d, approval, issue, ctx),
        Event::Hold { review } => holds::hold(task, &mut d, review, ctx),
        Event::Block { blocked } => holds::block(task, &mut d, blocked),
        Event::Unblock => holds::unblock(task, &mut d),
        Event::Requeue { issue, observed_at } => {
            runs::requeue(task, &mut d, issue, observed_at, ctx)
        }
        Event::Retry => runs::retry(task, &mut d, ctx),
        Event::FollowUp { follow_up } => runs::follow_up(task, &mut d, follow_up, ctx),
        Event::MarkPull { state } => runs::mark_pull(task, &mut d, state),
        Event::EffectsWritten => runs::effects_written(task, &mut d, ctx),
    }?;
    if let Flow::Unchanged = flow {
        return Ok(Step {
            task: task.clone(),
            effects: Vec::new(),
            unchanged: true,
        });
    }
    let notes = notify::notifications(&d.task, &d.effects, expired, ctx.policy);
    d.effects.extend(notes);
    Ok(Step {
        task: d.task,
        effects: d.effects,
        unchanged: false,
    })
}

/// Gives `task` the issue data `issue`, and the lock keys it declares under
/// `policy` ([`crate::locks`]): the one place a task's issue changes.
///
/// A running task keeps the keys it was claimed with: its lock neither grows
/// under another holder's nor shrinks while its worker may still touch the paths.
/// The new keys take effect when it waits for a worker again.
pub fn set_issue(task: &mut Task, issue: ReadyIssue, policy: &Policy) {
    if task.lease().is_none() {
        task.locks = policy.locks.keys(&issue);
    }
    task.issue = Arc::new(issue);
}

#[cfg(test)]
mod tests;
