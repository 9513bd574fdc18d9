//! The task state machine: a pure function from (task, event, now) to the next task
//! and the GitHub effects the step causes. Backends persist what it decides; they
//! never decide themselves.
//!
//! ```text
//!              enqueue                 claim (attempt += 1, new lease)
//!    (none) ───────────► Pending ───────────────────────────────► InProgress
//!                         ▲  ▲                                      │ │ │ │
//!      release (no attempt)  └── fail / lease expired, attempts < max ┘ │ │ │
//!      ───────────────────┘        (back to Pending after backoff)      │ │ │
//!                                                                       │ │ │
//!    Completed ◄──────────── complete(success) ─────────────────────────┘ │ │
//!    Failed    ◄──────────── fail / lease expired, attempts == max ────────┘ │
//!    Cancelled ◄──────────── issue closed or ready label removed ────────────┘
//!                            (Pending: at once; InProgress: the worker is told
//!                             on its next heartbeat, then a deadline)
//! ```
//!
//! | from | event | to | effects |
//! | --- | --- | --- | --- |
//! | – | enqueue ([`new_task`]) | Pending | `Queued` |
//! | Pending (due, not cancelled) | `Claim` | InProgress, attempts + 1 (unless refunded), new lease | – |
//! | InProgress, live token | `Heartbeat` | InProgress, lease renewed up to the deadline | – |
//! | InProgress, live token | `Complete` | Completed | `Completed` |
//! | InProgress, live token | `Fail` retryable, attempts < max | Pending after backoff | `RetryScheduled` |
//! | InProgress, live token | `Fail` otherwise | Failed | `Failed` |
//! | InProgress, live token | `Release` | Pending, attempt refunded | – |
//! | InProgress, live token | `Clarify` (the issue needs answers) | Parked, attempt refunded | `ClarificationRequested` |
//! | InProgress, lease lapsed | `Expire` | as `Fail` retryable, reason "worker lost" | as `Fail` |
//! | InProgress | `Resume` (orchestrator start) | InProgress, lease at least one period from now, up to the deadline | – |
//! | Pending | `Cancel` | Cancelled | `Cancelled` |
//! | InProgress | `Cancel` | InProgress, cancel requested, lease cut to the grace period | – |
//! | InProgress, cancel requested | `Fail`, `Release`, `Expire` | Cancelled | `Cancelled` |
//! | terminal, effects written before the issue was seen ready | `Requeue` | Pending, new run | `Queued` |
//! | Failed, Cancelled or Parked | `Retry` (operator) | Pending, new run | `Queued` |
//! | Completed | `Rework` (changes requested on its pull request) | Pending, new run carrying the review | `Queued`, `ReworkRequested` |
//! | Completed, reworked for that review already | `Rework` | unchanged | – |
//! | live | `Rework` | refused (`Live`) | – |
//! | Failed, Cancelled or Parked | `Rework` | refused (`NotCompleted`) | – |
//! | Completed | `MarkPull` (an operator's word on its pull request's review) | same, the word recorded | – |
//! | not Completed | `MarkPull` | refused (`NotCompleted`) | – |
//! | terminal | `EffectsWritten` | same, effects time recorded | – |
//! | live | `Approve` | same, the approved text (and who approved it) recorded, a review hold lifted | – |
//! | Pending | `Hold` (an edit by someone who may not approve) | Pending, held: not handed out | `ReviewRequested` |
//! | InProgress | `Hold` | InProgress, held: the holder is told to stop, lease cut to the grace period | `ReviewRequested` |
//! | InProgress, held | `Fail`, `Release`, `Expire` | Pending, held, attempt refunded | – |
//! | Pending, held | `Claim` | refused (`NotClaimable`) | – |
//! | Pending | `Block` (blockers not all closed, or a dependency problem) | Pending, blocked: not handed out | `DependencyProblem` when the problem is new |
//! | Pending, blocked | `Block` saying the same | unchanged | – |
//! | Pending, blocked | `Unblock` (every blocker closed) | Pending, due at once unless held for review | – |
//! | Pending, blocked | `Claim` | refused (`NotClaimable`) | – |
//! | InProgress | `Block` | refused (`Live`): the engine releases a claim it finds blocked first | – |
//! | not blocked | `Unblock` | unchanged | – |
//! | InProgress, live token | `Fail`, the run's reported cost at or past [`Policy::issue_budget_usd`] | Failed: no further attempt | `Failed` ("its budget is spent") |
//!
//! | Pending, its lock keys overlapping an in-progress task's under a live lease | claim | passed over by the store's claim, handed out once that task ends or its lease lapses | – |
//!
//! Locks are the one claim rule no single task decides: a task's keys are set with
//! its issue ([`set_issue`], from [`Policy::locks`]), and every store checks them
//! against its in-progress tasks inside its claim, atomically with the lease
//! ([`crate::locks`], [`crate::backend::LiveIndex::lock_holder`]).
//!
//! Blocked stands beside held for review: both keep the task Pending with
//! `not_before` at [`Timestamp::NEVER`], and each lifts only its own hold, so a task
//! both blocked and held is handed out once neither holds it. A new run starts
//! unblocked; the engine checks its blockers again ([`crate::deps`]).
//!
//! A run started by `Rework` carries the review ([`Task::rework`]) to every claim of
//! it, and keeps it once over, so the same review never starts another; a run
//! started by `Requeue` or `Retry` starts without one.
//!
//! `Complete` and `Fail` add the report's cost and tokens to the run's
//! (`Task::cost_usd`, `Task::tokens`; a new run starts from none). A Parked task is
//! terminal: its effect posts the questions, adds the needs-clarification label and
//! removes the ready label; an issue carrying needs-clarification is never ready
//! ([`crate::Labels::is_ready`]), so the next run starts only once a person removed
//! it and the ready label is back (`Requeue`).
//!
//! | any step with a `Completed` or `Failed` effect, or an `Expire` | as above | as above, then one `Notify` per [`Policy::notify`] route that wants the event ([`notify`]) |
//!
//! A held task is still Pending: its `not_before` is [`Timestamp::NEVER`], so every
//! backend passes over it as it passes over a task backing off, and `Approve` makes
//! it due at once. The same edit holds a task once (`Hold` with the digest it holds
//! for changes nothing).
//!
//! A call that repeats the one that ended a lease, with that lease's token, succeeds
//! and changes nothing ([`Step::unchanged`]); any other call with a token that is not
//! the live lease's fails with [`Refusal::LeaseLost`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deps::Blocked;
use crate::error::{Error, ErrorKind};
use crate::model::{
    Approval, Clarification, Completion, Failure, Lease, LeaseEnd, LeaseKind, LeaseToken,
    ReadyIssue, Review, Task, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::redact::redact;
use crate::review::{PullState, Rework};

/// Retry and lease settings a queue applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Attempts a run may spend (default 2).
    pub max_attempts: u32,
    /// How long a lease lasts without a heartbeat (default 60 s).
    pub lease: Duration,
    /// The longest a task may be held, heartbeats or not (default 3 h).
    pub max_run: Duration,
    /// How long a worker has to stop after it is told its task was cancelled (default 60 s).
    pub cancel_grace: Duration,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// The most one run of an issue may cost, in US dollars (`ISSUE_BUDGET_USD`;
    /// default none): a failed attempt that brings the run's reported cost to it
    /// ends the run, with no further attempt.
    pub issue_budget_usd: Option<f64>,
    /// Where notifications of completed, failed and lost tasks go (default none):
    /// each route that wants a step's event gets a `Notify` effect ([`notify`]).
    pub notify: Vec<NotifyRoute>,
    /// How issues declare the paths they lock ([`crate::locks`]; default: no areas,
    /// the usual lockfiles and CI files as barriers).
    pub locks: crate::locks::LockRules,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_attempts: 2,
            lease: Duration::from_secs(60),
            max_run: Duration::from_secs(3 * 3600),
            cancel_grace: Duration::from_secs(60),
            backoff: Backoff::default(),
            issue_budget_usd: None,
            notify: Vec::new(),
            locks: crate::locks::LockRules::default(),
        }
    }
}

impl Policy {
    /// The interval at which workers should send heartbeats: a third of the lease,
    /// so two lost heartbeats do not lose the task.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(1))
    }
}

/// Exponential backoff with "equal jitter": the delay before attempt `n + 1` is
/// `min(cap, initial * 2^(n-1))`, of which the upper half is random.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The delay after the first failed attempt, before jitter.
    pub initial: Duration,
    /// The largest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(30),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay after `failed_attempts` failures, for a `jitter` in `[0, 1)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use scrum_core::state::Backoff;
    /// let b = Backoff { initial: Duration::from_secs(10), cap: Duration::from_secs(60) };
    /// assert_eq!(b.delay(1, 0.0), Duration::from_secs(5));
    /// assert_eq!(b.delay(2, 0.5), Duration::from_secs(15));
    /// assert_eq!(b.delay(10, 0.0), Duration::from_secs(30));
    /// ```
    pub fn delay(&self, failed_attempts: u32, jitter: f64) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(30);
        let full = self.initial.saturating_mul(1 << exp).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Where the randomness of backoff jitter comes from: the system by default, a fixed
/// sequence in tests.
#[derive(Clone)]
pub struct Jitter(Arc<dyn Fn() -> f64 + Send + Sync>);

impl Jitter {
    /// Uniform in `[0, 1)` from a fast non-cryptographic generator.
    pub fn random() -> Jitter {
        Jitter(Arc::new(fastrand::f64))
    }

    /// Always `value`: deterministic backoff for tests.
    pub fn fixed(value: f64) -> Jitter {
        Jitter(Arc::new(move || value))
    }

    /// A value in `[0, 1)`.
    pub fn sample(&self) -> f64 {
        (self.0)()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter")
    }
}

/// The inputs of one step besides the task and the event.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The current time.
    pub now: Timestamp,
    /// The queue's policy.
    pub policy: &'a Policy,
    /// A jitter sample in `[0, 1)` for a backoff this step may schedule.
    pub jitter: f64,
}

impl<'a> Ctx<'a> {
    /// The context of a step at `now` under `policy`, with a fresh sample from
    /// `jitter`: what every queue builds before each transition.
    pub fn sample(now: Timestamp, policy: &'a Policy, jitter: &Jitter) -> Ctx<'a> {
        Ctx {
            now,
            policy,
            jitter: jitter.sample(),
        }
    }
}

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
        review: Review,
    },
    /// The issue's blockers are not all closed, or its dependencies have a problem:
    /// the pending task is not handed out ([`crate::deps`]).
    Block {
        /// What blocks it.
        blocked: Blocked,
    },
    /// Every blocker of the issue is closed: a blocked task may be handed out.
    Unblock,
    /// A reviewer who may approve work asked for changes on the completed task's
    /// pull request (`REWORK_ON_CHANGES_REQUESTED`): a new run answers them.
    Rework {
        /// The pull request and the review's text.
        rework: Rework,
    },
    /// An operator says what the completed task's pull request's review state is
    /// (`POST /pr-review/…`): recorded on the task, so it outlives the process
    /// that heard it ([`crate::review`]).
    MarkPull {
        /// The state they gave.
        state: PullState,
    },
}

/// A GitHub effect of a step, recorded in the same transaction as the step (the
/// outbox) and applied later by the dispatcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The task it is about.
    pub task: TaskId,
    /// The task's run.
    pub run: u32,
    /// The attempt it concerns (0 before the first claim).
    pub attempt: u32,
    /// What to write.
    pub kind: EffectKind,
}

/// What an [`Effect`] writes to GitHub (the label lifecycle is in the README's "A task's life").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EffectKind {
    /// Add the in-progress label (and clear a previous run's outcome labels).
    Queued,
    /// An attempt failed and another will follow: an optional short note, no label.
    RetryScheduled {
        /// The redacted reason.
        reason: String,
        /// When the next attempt may start.
        next_attempt_at: Timestamp,
    },
    /// Remove ready and in-progress, add completed, comment with the PR link.
    Completed {
        /// The pull request.
        pr_url: Option<String>,
        /// Who did it.
        worker: WorkerId,
        /// Attempts spent.
        attempts: u32,
        /// From queueing to completion, in milliseconds.
        duration_ms: u64,
        /// The run's cost in US dollars (every attempt's), when known.
        cost_usd: Option<f64>,
        /// The run's model tokens, when known.
        #[serde(default)]
        tokens: Option<u64>,
        /// Times the review sent the work back, when the workflow had one.
        #[serde(default)]
        revisions: Option<u32>,
    },
    /// Remove ready and in-progress, add failed, comment with the reason.
    Failed {
        /// The redacted, length-capped reason.
        reason: String,
        /// Attempts spent.
        attempts: u32,
    },
    /// Remove in-progress.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The issue needs answers: comment with the questions, add needs-clarification,
    /// remove ready and in-progress.
    ClarificationRequested {
        /// The questions (redacted).
        questions: Vec<String>,
        /// Why (redacted).
        reasoning: String,
    },
    /// The text changed after its approval: comment asking a maintainer to review
    /// the edit and apply the ready label again. No label.
    ReviewRequested {
        /// Who edited it.
        editor: String,
        /// The edited text's digest (one comment per edit).
        digest: String,
    },
    /// The task is blocked by a dependency cycle or a blocker that cannot be read:
    /// comment saying so, once per problem. No label.
    DependencyProblem {
        /// What is wrong (a cycle's path, or which blocker could not be read).
        problem: String,
    },
    /// A new run answers a request for changes on the pull request: comment
    /// naming the reviewer and the pull request. No label (`Queued` before it
    /// writes them).
    ReworkRequested {
        /// Who asked for changes.
        reviewer: String,
        /// The pull request.
        pr_url: String,
    },
    /// Tell a notification target (Slack, Discord, a webhook) of the step before
    /// it. Sent in the background; never holds back the task's labels ([`notify`]).
    Notify {
        /// The target's name (`slack`, `discord`, `webhook`).
        target: String,
        /// What happened.
        event: NotifyEvent,
        /// The issue's title.
        title: String,
        /// The pull request of a completion, or the reason of a failure.
        detail: Option<String>,
        /// Attempts spent.
        attempts: u32,
        /// The most attempts the run may spend.
        max_attempts: u32,
    },
}

impl EffectKind {
    /// A short name: `queued`, `retry_scheduled`, `completed`, `failed`, `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            EffectKind::Queued => "queued",
            EffectKind::RetryScheduled { .. } => "retry_scheduled",
            EffectKind::Completed { .. } => "completed",
            EffectKind::Failed { .. } => "failed",
            EffectKind::Cancelled { .. } => "cancelled",
            EffectKind::ReviewRequested { .. } => "review_requested",
            EffectKind::ClarificationRequested { .. } => "clarification_requested",
            EffectKind::DependencyProblem { .. } => "dependency_problem",
            EffectKind::ReworkRequested { .. } => "rework_requested",
            EffectKind::Notify { .. } => "notify",
        }
    }

    /// Whether this effect writes a terminal state's labels.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EffectKind::Completed { .. }
                | EffectKind::Failed { .. }
                | EffectKind::Cancelled { .. }
                | EffectKind::ClarificationRequested { .. }
        )
    }
}

impl Effect {
    /// The hidden marker a comment for this effect carries, so it is never posted
    /// twice: unique per task, run, attempt and event.
    pub fn marker(&self) -> String {
        let marker = format!(
            "scrum-orchestrator:{}:run-{}:attempt-{}:{}",
            self.task,
            self.run,
            self.attempt,
            self.kind.name()
        );
        match &self.kind {
            // One comment per edit, however many edits one attempt sees.
            EffectKind::ReviewRequested { digest, .. } => {
                let short = digest.strip_prefix("sha256:").unwrap_or(digest);
                format!("{marker}:{}", &short[..short.len().min(16)])
            }
            // One comment per problem.
            EffectKind::DependencyProblem { problem } => {
                let digest = crate::model::text_digest(problem, "");
                format!("{marker}:{}", &digest[7..23])
            }
            _ => marker,
        }
    }
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
    /// Only a completed task's pull request is reworked or marked.
    #[error("only a completed task's pull request is reworked or marked")]
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
    /// The GitHub effects to record with it.
    pub effects: Vec<Effect>,
    /// True when the event repeated the call that ended the lease: nothing changed
    /// and nothing needs persisting.
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

/// A new task (run 1) for an issue seen ready, and its `Queued` effect.
pub fn new_task(issue: ReadyIssue, now: Timestamp, policy: &Policy) -> Step {
    let task = Task {
        id: issue.id.clone(),
        issue: Arc::new(issue.clone()),
        state: TaskState::Pending,
        run: 1,
        attempts: 0,
        max_attempts: policy.max_attempts.max(1),
        attempt_refunded: false,
        lease: None,
        lease_end: None,
        not_before: now,
        cancel_requested: false,
        last_error: None,
        completion: None,
        enqueued_at: now,
        updated_at: now,
        finished_at: None,
        effects_written_at: None,
        approval: None,
        review: None,
        cost_usd: None,
        tokens: None,
        blocked: None,
        locks: policy.locks.keys(&issue),
        rework: None,
        pull_mark: None,
    };
    let effects = vec![effect(&task, EffectKind::Queued)];
    Step {
        task,
        effects,
        unchanged: false,
    }
}

fn effect(task: &Task, kind: EffectKind) -> Effect {
    Effect {
        task: task.id.clone(),
        run: task.run,
        attempt: task.attempts,
        kind,
    }
}

/// Applies `event` to `task` at `ctx.now`. Pure: no I/O, no clock, no randomness
/// beyond `ctx.jitter`.
pub fn transition(task: &Task, event: Event, ctx: &Ctx<'_>) -> Result<Step, Refusal> {
    let expired = matches!(event, Event::Expire);
    let now = ctx.now;
    let mut next = task.clone();
    next.updated_at = now;
    let mut effects = Vec::new();
    match event {
        Event::Claim {
            worker,
            token,
            lease,
        } => {
            if task.state != TaskState::Pending
                || task.cancel_requested
                || task.review.is_some()
                || task.blocked.is_some()
                || task.not_before > now
            {
                return Err(Refusal::NotClaimable);
            }
            if !next.attempt_refunded {
                next.attempts += 1;
            }
            next.attempt_refunded = false;
            let deadline = now.plus(ctx.policy.max_run);
            let expires_at = match lease {
                LeaseKind::Heartbeat => now.plus(ctx.policy.lease).min(deadline),
                LeaseKind::RunTime => deadline,
            };
            next.state = TaskState::InProgress;
            next.lease = Some(Lease {
                token,
                worker,
                claimed_at: now,
                expires_at,
                deadline,
                kind: lease,
            });
            next.lease_end = None;
        }
        Event::Heartbeat { token } => {
            let lease = live_lease(task, token, now)?;
            let mut renewed = now.plus(ctx.policy.lease).min(lease.deadline);
            if task.stop_requested() {
                // Told to stop: the cancellation deadline stands.
                renewed = lease.expires_at;
            }
            let l = next.lease.as_mut().expect("live lease checked above");
            l.expires_at = l.expires_at.max(renewed);
        }
        Event::Complete { token, completion } => {
            if repeats(task, token, LeaseEnd::Completed) {
                return Ok(unchanged(task));
            }
            let lease = live_lease(task, token, now)?;
            next.add_spend(completion.cost_usd, completion.tokens);
            let kind = EffectKind::Completed {
                pr_url: completion.pr_url.clone(),
                worker: lease.worker.clone(),
                attempts: task.attempts,
                duration_ms: u64::try_from(now.since(task.enqueued_at).as_millis())
                    .unwrap_or(u64::MAX),
                cost_usd: next.cost_usd,
                tokens: next.tokens,
                revisions: completion.revisions,
            };
            finish(&mut next, TaskState::Completed, LeaseEnd::Completed, now);
            next.completion = Some(completion);
            effects.push(effect(&next, kind));
        }
        Event::Fail { token, failure } => {
            if repeats(task, token, LeaseEnd::Failed) {
                return Ok(unchanged(task));
            }
            live_lease(task, token, now)?;
            next.add_spend(failure.cost_usd, failure.tokens);
            end_attempt(&mut next, &mut effects, failure, LeaseEnd::Failed, ctx);
        }
        Event::Clarify {
            token,
            clarification,
        } => {
            if repeats(task, token, LeaseEnd::Parked) {
                return Ok(unchanged(task));
            }
            live_lease(task, token, now)?;
            next.add_spend(clarification.cost_usd, clarification.tokens);
            if task.cancel_requested {
                cancel_now(&mut next, &mut effects, "issue no longer ready", now);
                next.lease_end = Some(LeaseEnd::Parked);
            } else if task.review.is_some() {
                back_to_review(&mut next, LeaseEnd::Parked);
            } else {
                finish(&mut next, TaskState::Parked, LeaseEnd::Parked, now);
                next.attempt_refunded = true;
                let kind = EffectKind::ClarificationRequested {
                    questions: clarification.questions.iter().map(|q| redact(q)).collect(),
                    reasoning: redact(&clarification.reasoning),
                };
                next.last_error = Some(redact(&format!(
                    "needs clarification: {}",
                    clarification.questions.join(" ")
                )));
                effects.push(effect(&next, kind));
            }
        }
        Event::Expire => {
            let lease = match (&task.lease, task.state) {
                (Some(l), TaskState::InProgress) => l,
                _ => return Err(Refusal::NotExpired),
            };
            if now < lease.expires_at {
                return Err(Refusal::NotExpired);
            }
            let reason = if now >= lease.deadline {
                "run time exceeded"
            } else {
                "worker lost"
            };
            let failure = Failure {
                reason: reason.to_string(),
                retryable: true,
                ..Failure::default()
            };
            end_attempt(&mut next, &mut effects, failure, LeaseEnd::Expired, ctx);
        }
        Event::Release { token, reason } => {
            if repeats(task, token, LeaseEnd::Released) {
                return Ok(unchanged(task));
            }
            live_lease(task, token, now)?;
            if task.cancel_requested {
                cancel_now(&mut next, &mut effects, "issue no longer ready", now);
                next.lease_end = Some(LeaseEnd::Released);
            } else if task.review.is_some() {
                back_to_review(&mut next, LeaseEnd::Released);
            } else {
                next.state = TaskState::Pending;
                next.attempt_refunded = true;
                next.lease_end = Some(LeaseEnd::Released);
                next.not_before = now;
                next.last_error = Some(redact(&reason));
            }
        }
        Event::Resume => {
            let held = next
                .lease
                .as_mut()
                .filter(|_| task.state == TaskState::InProgress);
            let Some(l) = held else {
                return Ok(unchanged(task));
            };
            let grace = now.plus(ctx.policy.lease).min(l.deadline);
            // Past the deadline there is nothing to give: the reaper ends the run.
            if grace <= l.expires_at || grace <= now {
                return Ok(unchanged(task));
            }
            l.expires_at = grace;
        }
        Event::Cancel { reason } => match task.state {
            TaskState::Pending => cancel_now(&mut next, &mut effects, &reason, now),
            TaskState::InProgress => {
                if task.cancel_requested {
                    return Ok(unchanged(task));
                }
                next.cancel_requested = true;
                let l = next.lease.as_mut().expect("in-progress tasks hold a lease");
                l.expires_at = l.expires_at.min(now.plus(ctx.policy.cancel_grace));
                next.last_error = Some(redact(&reason));
            }
            _ => return Err(Refusal::Terminal),
        },
        Event::Requeue { issue, observed_at } => {
            if !task.state.is_terminal() {
                return Err(Refusal::Live);
            }
            match task.effects_written_at {
                Some(at) if at < observed_at => {}
                _ => return Err(Refusal::NotRelabelled),
            }
            set_issue(&mut next, issue, ctx.policy);
            new_run(&mut next, &mut effects, ctx);
        }
        Event::Retry => match task.state {
            TaskState::Failed | TaskState::Cancelled | TaskState::Parked => {
                new_run(&mut next, &mut effects, ctx)
            }
            TaskState::Completed => return Err(Refusal::Completed),
            _ => return Err(Refusal::Live),
        },
        Event::EffectsWritten => {
            if !task.state.is_terminal() {
                return Err(Refusal::Live);
            }
            next.effects_written_at = Some(now);
        }
        Event::Approve { approval, issue } => {
            if task.state.is_terminal() {
                return Err(Refusal::Terminal);
            }
            if task.approval.as_ref() == Some(&approval) && task.review.is_none() && issue.is_none()
            {
                return Ok(unchanged(task));
            }
            if let Some(issue) = issue {
                set_issue(&mut next, issue, ctx.policy);
            }
            next.approval = Some(approval);
            if next.review.take().is_some()
                && task.state == TaskState::Pending
                && task.blocked.is_none()
            {
                next.not_before = now;
            }
        }
        Event::Hold { review } => {
            if task.state.is_terminal() {
                return Err(Refusal::Terminal);
            }
            if task
                .review
                .as_ref()
                .is_some_and(|r| r.digest == review.digest)
            {
                return Ok(unchanged(task));
            }
            let kind = EffectKind::ReviewRequested {
                editor: review.editor.clone(),
                digest: review.digest.clone(),
            };
            next.review = Some(review);
            match task.state {
                TaskState::Pending => next.not_before = Timestamp::NEVER,
                _ => {
                    let l = next.lease.as_mut().expect("in-progress tasks hold a lease");
                    l.expires_at = l.expires_at.min(now.plus(ctx.policy.cancel_grace));
                }
            }
            effects.push(effect(&next, kind));
        }
        Event::Block { blocked } => match task.state {
            TaskState::Pending => {
                let before = task.blocked.as_ref();
                if before.is_some_and(|b| b.same_as(&blocked)) {
                    return Ok(unchanged(task));
                }
                if let Some(problem) = blocked
                    .problem
                    .clone()
                    .filter(|p| before.and_then(|b| b.problem.as_ref()) != Some(p))
                {
                    effects.push(effect(&next, EffectKind::DependencyProblem { problem }));
                }
                let since = before.map_or(blocked.since, |b| b.since);
                next.blocked = Some(Blocked { since, ..blocked });
                next.not_before = Timestamp::NEVER;
            }
            TaskState::InProgress => return Err(Refusal::Live),
            _ => return Err(Refusal::Terminal),
        },
        Event::Rework { rework } => match task.state {
            TaskState::Completed => {
                if task
                    .rework
                    .as_ref()
                    .is_some_and(|r| r.review_id == rework.review_id)
                {
                    return Ok(unchanged(task));
                }
                new_run(&mut next, &mut effects, ctx);
                let kind = EffectKind::ReworkRequested {
                    reviewer: rework.reviewer.clone(),
                    pr_url: rework.pr_url.clone(),
                };
                next.rework = Some(rework);
                effects.push(effect(&next, kind));
            }
            state if state.is_terminal() => return Err(Refusal::NotCompleted),
            _ => return Err(Refusal::Live),
        },
        Event::MarkPull { state } => {
            if task.state != TaskState::Completed {
                return Err(Refusal::NotCompleted);
            }
            if task.pull_mark == Some(state) {
                return Ok(unchanged(task));
            }
            next.pull_mark = Some(state);
        }
        Event::Unblock => {
            if task.blocked.is_none() {
                return Ok(unchanged(task));
            }
            next.blocked = None;
            if task.state == TaskState::Pending && task.review.is_none() {
                next.not_before = now;
            }
        }
    }
    let notes = notify::notifications(&next, &effects, expired, ctx.policy);
    effects.extend(notes);
    Ok(Step {
        task: next,
        effects,
        unchanged: false,
    })
}

fn unchanged(task: &Task) -> Step {
    Step {
        task: task.clone(),
        effects: Vec::new(),
        unchanged: true,
    }
}

/// Whether a call with `token` repeats the call that ended the task's last lease.
fn repeats(task: &Task, token: LeaseToken, end: LeaseEnd) -> bool {
    task.lease_end == Some(end) && task.lease.as_ref().is_some_and(|l| l.token == token)
}

/// The task's lease, if `token` holds it and it has not lapsed.
fn live_lease(task: &Task, token: LeaseToken, now: Timestamp) -> Result<&Lease, Refusal> {
    match (&task.lease, task.state) {
        (Some(l), TaskState::InProgress) if l.token == token && now < l.expires_at => Ok(l),
        _ => Err(Refusal::LeaseLost),
    }
}

/// Ends an attempt that failed: retry after backoff, cancel, or fail for good.
fn end_attempt(
    next: &mut Task,
    effects: &mut Vec<Effect>,
    failure: Failure,
    end: LeaseEnd,
    ctx: &Ctx<'_>,
) {
    let reason = redact(&failure.reason);
    next.last_error = Some(reason.clone());
    if next.cancel_requested {
        cancel_now(next, effects, "issue no longer ready", ctx.now);
        next.lease_end = Some(end);
    } else if let Some(spent) = budget_spent(next, ctx.policy) {
        finish(next, TaskState::Failed, end, ctx.now);
        let reason = format!("{reason}; and {spent}");
        next.last_error = Some(reason.clone());
        let kind = EffectKind::Failed {
            reason,
            attempts: next.attempts,
        };
        effects.push(effect(next, kind));
    } else if next.review.is_some() {
        // Told to stop because the text awaits review: the attempt is not spent.
        back_to_review(next, end);
    } else if failure.retryable && next.attempts < next.max_attempts {
        let at = ctx
            .now
            .plus(ctx.policy.backoff.delay(next.attempts, ctx.jitter));
        next.state = TaskState::Pending;
        next.not_before = at;
        next.lease_end = Some(end);
        effects.push(effect(
            next,
            EffectKind::RetryScheduled {
                reason,
                next_attempt_at: at,
            },
        ));
    } else {
        finish(next, TaskState::Failed, end, ctx.now);
        let kind = EffectKind::Failed {
            reason,
            attempts: next.attempts,
        };
        effects.push(effect(next, kind));
    }
}

/// Why a run may have no further attempt: its attempts' reported cost reached the
/// issue's budget.
fn budget_spent(task: &Task, policy: &Policy) -> Option<String> {
    let budget = policy.issue_budget_usd?;
    let spent = task.cost_usd.filter(|usd| *usd >= budget)?;
    Some(format!(
        "its budget is spent: its attempts cost ${spent:.2} of ${budget:.2} \
         (ISSUE_BUDGET_USD), so it gets no further attempt"
    ))
}

/// A held task's holder stopped: the task waits, Pending and held, for a review,
/// and the attempt it was on is handed back.
fn back_to_review(next: &mut Task, end: LeaseEnd) {
    next.state = TaskState::Pending;
    next.attempt_refunded = true;
    next.lease_end = Some(end);
    next.not_before = Timestamp::NEVER;
}

fn cancel_now(next: &mut Task, effects: &mut Vec<Effect>, reason: &str, now: Timestamp) {
    finish(next, TaskState::Cancelled, LeaseEnd::Cancelled, now);
    effects.push(effect(
        next,
        EffectKind::Cancelled {
            reason: redact(reason),
        },
    ));
}

fn finish(next: &mut Task, state: TaskState, end: LeaseEnd, now: Timestamp) {
    next.state = state;
    next.finished_at = Some(now);
    next.cancel_requested = false;
    if next.lease.is_some() {
        next.lease_end = Some(end);
    }
}

fn new_run(next: &mut Task, effects: &mut Vec<Effect>, ctx: &Ctx<'_>) {
    next.state = TaskState::Pending;
    next.run += 1;
    next.attempts = 0;
    next.max_attempts = ctx.policy.max_attempts.max(1);
    next.attempt_refunded = false;
    next.not_before = ctx.now;
    next.cancel_requested = false;
    next.last_error = None;
    next.completion = None;
    next.enqueued_at = ctx.now;
    next.finished_at = None;
    next.effects_written_at = None;
    next.lease = None;
    next.lease_end = None;
    // A new run's text is approved anew (the engine records it after the enqueue).
    next.approval = None;
    next.review = None;
    next.cost_usd = None;
    next.tokens = None;
    next.blocked = None;
    next.locks = ctx.policy.locks.keys(&next.issue);
    next.rework = None;
    next.pull_mark = None;
    effects.push(effect(next, EffectKind::Queued));
}

/// Gives `task` the issue data `issue`, and the lock keys it declares under
/// `policy` ([`crate::locks`]): the one place a task's issue changes.
///
/// An in-progress task keeps the keys it was claimed with: its lock neither grows
/// under another holder's nor shrinks while its worker may still touch the paths.
/// The new keys take effect when it is pending again.
pub fn set_issue(task: &mut Task, issue: ReadyIssue, policy: &Policy) {
    if task.state != TaskState::InProgress {
        task.locks = policy.locks.keys(&issue);
    }
    task.issue = Arc::new(issue);
}

pub mod notify;
mod outbox;

pub use notify::{NotifyEvent, NotifyRoute};
pub use outbox::{EffectRetry, FailureClass, effect_failure};

#[cfg(test)]
mod tests;
