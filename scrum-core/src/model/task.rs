//! A task, its named state and the record of its run: what the state machine
//! ([`crate::state`]) moves and every store keeps.
//!
//! A task's situation is one [`Status`], with the data that belongs to it inside
//! (a scheduled retry's time, a running task's lease, what holds a held task, a
//! completed task's report). What belongs to one run or one attempt is kept in the
//! run's record ([`Run`], [`Attempt`]), so `/queue` and the dashboard can show
//! every attempt with its worker, times, outcome, error and cost.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::deps::Blocked;
use crate::follow_up::FollowUp;
use crate::model::{
    Approval, Completion, EditReview, Lease, LeaseEnd, LeaseKind, LeaseToken, ReadyIssue, TaskId,
    TaskState, Timestamp, WorkerId,
};
use crate::pull_gate::PullState;

/// Where a task is in its life, with the data that only makes sense there.
///
/// Who moves a task out of each state is in [`crate::state`]'s table; in short:
/// a worker's claim takes a `Ready` (or due `Scheduled`) task to `Running`; the
/// worker's report, or the lease reaper, ends `Running`; the engine's poll holds
/// and releases (`Held`) and cancels; an operator retries the terminal ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a worker: the next claim may take it.
    Ready,
    /// Waiting for its next attempt after a failed one: claimable from `at`.
    Scheduled {
        /// When the backoff ends.
        at: Timestamp,
    },
    /// Not handed out until every reason it names lifts (at least one is set).
    Held(Holds),
    /// One worker holds it under a lease.
    Running {
        /// The lease: its token, holder, expiry and deadline.
        lease: Lease,
        /// Why the holder must stop, once it must: it is told on its next heartbeat.
        #[serde(default)]
        stop: Option<Stop>,
    },
    /// Finished successfully. Terminal.
    Completed {
        /// The worker's report.
        completion: Completion,
        /// An operator's word on the review state of its pull request
        /// (`POST /pr-review/{state}/{number}`), kept so that a restarted
        /// orchestrator counts it too.
        #[serde(default)]
        pull_mark: Option<PullState>,
        /// The follow-up rounds on its pull request were used up
        /// (`FOLLOW_UP_ROUNDS`): the follow-up that was not run, saying what is
        /// still wrong. The pull request is left for people.
        #[serde(default)]
        exhausted: Option<FollowUp>,
    },
    /// Failed for good. Terminal.
    Failed {
        /// Why (redacted).
        reason: String,
    },
    /// The issue was closed or lost its ready label. Terminal.
    Cancelled {
        /// Why (redacted).
        reason: String,
    },
    /// Waiting for a person to answer the worker's questions (posted on the issue,
    /// labelled needs-clarification). Terminal: the ready label, once back, starts
    /// a new run.
    Parked,
}

/// What holds a [`Status::Held`] task. Each reason is lifted by its own event, and
/// the task is ready once none is left.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Holds {
    /// Its text was edited, after its approval, by someone who may not approve: it
    /// waits for a maintainer to label it ready again.
    #[serde(default)]
    pub review: Option<EditReview>,
    /// Its blockers are not all closed, or its dependencies have a problem
    /// ([`crate::deps`]).
    #[serde(default)]
    pub blocked: Option<Blocked>,
}

/// Why a running task's holder must stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The issue was closed or unlabelled: the task ends Cancelled when the holder
    /// stops or its (shortened) lease lapses.
    Cancel {
        /// Why (redacted).
        reason: String,
    },
    /// Its text was edited by someone who may not approve: the task is held for
    /// review when the holder stops, and the attempt is not spent.
    Review(EditReview),
}

/// Why a run was queued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCause {
    /// The issue was seen with the ready label.
    #[default]
    Ready,
    /// An operator asked for a new run (`POST /admin/tasks/…/retry`).
    Retry,
    /// The pull request of the run before needs a follow-up (a failed check, a
    /// conflict, a request for changes, a collaborator's `/agent` comment): the
    /// run answers it on the same branch ([`crate::follow_up`]). Stored as
    /// `rework` by releases before follow-ups, which had only requests for changes.
    #[serde(alias = "rework")]
    FollowUp(FollowUp),
}

/// One run of an issue: from the moment it was queued to its terminal state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Which run of the issue this is: 1, then one more each time the issue is
    /// queued again after a terminal run.
    pub number: u32,
    /// Why it was queued.
    pub cause: RunCause,
    /// The most attempts it may spend.
    pub max_attempts: u32,
    /// Its attempts, in order. A released attempt is handed back: the next claim
    /// has the same number.
    pub attempts: Vec<Attempt>,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// When it reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// When the tracker effects of its terminal state were written. Only after
    /// that may a ready label seen on the issue start a new run.
    pub written_at: Option<Timestamp>,
}

/// One claim of a task by a worker, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The attempt's number (1-based). A handed-back attempt's number is used again
    /// by the next claim.
    pub number: u32,
    /// Who held it.
    pub worker: WorkerId,
    /// The lease's fencing token: a repeat of the call that ended the attempt,
    /// with this token, changes nothing.
    pub token: LeaseToken,
    /// When it was claimed.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<Outcome>,
    /// What went wrong, or why it was handed back (redacted).
    pub error: Option<String>,
    /// What it cost in US dollars, when the worker said.
    pub cost_usd: Option<f64>,
    /// Model tokens it used, when the worker said.
    pub tokens: Option<u64>,
    /// What the claimer asked for: heartbeats, or the whole run time (a client
    /// that never heartbeats).
    pub lease: LeaseKind,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The worker completed the task.
    Completed,
    /// The worker reported a failure.
    Failed,
    /// The lease lapsed: the worker stopped answering, or ran out of time.
    Lost,
    /// The worker handed the task back; the attempt is not spent.
    Released,
    /// The worker asked for clarification; the attempt is not spent.
    Parked,
    /// The task was cancelled while held; `by` is the call that ended the lease.
    Cancelled {
        /// The call.
        by: LeaseEnd,
    },
    /// The task's text awaited review when the holder stopped: the task is held,
    /// and the attempt is not spent. `by` is the call that ended the lease.
    Withdrawn {
        /// The call.
        by: LeaseEnd,
    },
}

impl Outcome {
    /// The call (or lapse) that ended the lease: a repeat of it with the same
    /// token succeeds and changes nothing.
    pub fn ended_by(self) -> LeaseEnd {
        match self {
            Outcome::Completed => LeaseEnd::Completed,
            Outcome::Failed => LeaseEnd::Failed,
            Outcome::Lost => LeaseEnd::Expired,
            Outcome::Released => LeaseEnd::Released,
            Outcome::Parked => LeaseEnd::Parked,
            Outcome::Cancelled { by } | Outcome::Withdrawn { by } => by,
        }
    }

    /// Whether the attempt counts against the run's attempts.
    pub fn spends(self) -> bool {
        !matches!(
            self,
            Outcome::Released | Outcome::Parked | Outcome::Withdrawn { .. }
        )
    }

    /// `completed`, `failed`, `lost`, `released`, `parked`, `cancelled`, `withdrawn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
            Outcome::Released => "released",
            Outcome::Parked => "parked",
            Outcome::Cancelled { .. } => "cancelled",
            Outcome::Withdrawn { .. } => "withdrawn",
        }
    }
}

/// One run of one issue. See [`crate::state`] for how it moves.
///
/// The SQLite store writes a task's fields by position: a new field goes last, with
/// `#[serde(default)]` (so do the fields of the structs inside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// `owner/repo#number`.
    pub id: TaskId,
    /// The issue as last seen. In an `Arc`: it is large and rarely changes.
    pub issue: Arc<ReadyIssue>,
    /// Where the task is.
    pub status: Status,
    /// The current (or last) run, with its attempts.
    pub run: Run,
    /// Who approved the text in `issue` (see `docs/trust.md`). `None` for a
    /// task queued with trust checks off.
    pub approval: Option<Approval>,
    /// The lock keys the issue declares ([`crate::locks`]): while the task is
    /// running, no task whose keys overlap these is handed out. Set with the issue
    /// ([`crate::state::set_issue`]).
    pub locks: Vec<String>,
    /// When the task last changed.
    pub updated_at: Timestamp,
}

impl Task {
    /// The coarse state the Python orchestrator's API groups tasks by: Ready,
    /// Scheduled and Held are `pending`, Running is `in_progress`.
    pub fn state(&self) -> TaskState {
        self.status.group()
    }

    /// The live lease, while running.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.status {
            Status::Running { lease, .. } => Some(lease),
            _ => None,
        }
    }

    /// The worker holding the task, while it is running.
    pub fn holder(&self) -> Option<&WorkerId> {
        self.lease().map(|l| &l.worker)
    }

    /// Why the holder must stop, while it must.
    pub fn stop(&self) -> Option<&Stop> {
        match &self.status {
            Status::Running { stop, .. } => stop.as_ref(),
            _ => None,
        }
    }

    /// Whether the holder should stop: the task is being cancelled, or its text
    /// changed and awaits review.
    pub fn stop_requested(&self) -> bool {
        self.stop().is_some()
    }

    /// The edit awaiting review, while it holds the task or stops its holder.
    pub fn review(&self) -> Option<&EditReview> {
        match &self.status {
            Status::Held(h) => h.review.as_ref(),
            Status::Running {
                stop: Some(Stop::Review(r)),
                ..
            } => Some(r),
            _ => None,
        }
    }

    /// What blocks the task, while its dependencies hold it.
    pub fn blocked(&self) -> Option<&Blocked> {
        match &self.status {
            Status::Held(h) => h.blocked.as_ref(),
            _ => None,
        }
    }

    /// The latest attempt of the run, running or ended.
    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.run.attempts.last()
    }

    /// Attempts the run spent: counted at claim and never decreasing. An attempt
    /// handed back ([`Task::handed_back`]) still counts until the next claim,
    /// which takes its number again.
    pub fn attempts(&self) -> u32 {
        self.last_attempt().map_or(0, |a| a.number)
    }

    /// Whether the last attempt was handed back (released, parked with questions,
    /// or withdrawn for review): the next claim does not spend another.
    pub fn handed_back(&self) -> bool {
        self.last_attempt()
            .and_then(|a| a.outcome)
            .is_some_and(|o| !o.spends())
    }

    /// The attempt a lease-holding worker is on (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempts().max(1)
    }

    /// The most attempts the run may spend.
    pub fn max_attempts(&self) -> u32 {
        self.run.max_attempts
    }

    /// What a follow-up run answers.
    pub fn follow_up(&self) -> Option<&FollowUp> {
        match &self.run.cause {
            RunCause::FollowUp(f) => Some(f),
            _ => None,
        }
    }

    /// The follow-up rounds were used up on the completed run's pull request: what
    /// was still wrong then.
    pub fn follow_ups_exhausted(&self) -> Option<&FollowUp> {
        match &self.status {
            Status::Completed { exhausted, .. } => exhausted.as_ref(),
            _ => None,
        }
    }

    /// The worker's report, once completed.
    pub fn completion(&self) -> Option<&Completion> {
        match &self.status {
            Status::Completed { completion, .. } => Some(completion),
            _ => None,
        }
    }

    /// An operator's word on the completed run's pull request.
    pub fn pull_mark(&self) -> Option<PullState> {
        match &self.status {
            Status::Completed { pull_mark, .. } => *pull_mark,
            _ => None,
        }
    }

    /// What went wrong last, for people: a terminal state's reason, a stop's, or
    /// the last attempt's error.
    pub fn last_error(&self) -> Option<&str> {
        match &self.status {
            Status::Failed { reason } | Status::Cancelled { reason } => Some(reason),
            Status::Running {
                stop: Some(Stop::Cancel { reason }),
                ..
            } => Some(reason),
            _ => self.last_attempt().and_then(|a| a.error.as_deref()),
        }
    }

    /// When a task waiting for a worker may be claimed: `Ready` now (the epoch),
    /// `Scheduled` at its time; `None` for any other state.
    pub fn claimable_from(&self) -> Option<Timestamp> {
        match self.status {
            Status::Ready => Some(Timestamp(0)),
            Status::Scheduled { at } => Some(at),
            _ => None,
        }
    }

    /// When this run was queued.
    pub fn enqueued_at(&self) -> Timestamp {
        self.run.queued_at
    }

    /// When the run reached a terminal state.
    pub fn finished_at(&self) -> Option<Timestamp> {
        self.run.finished_at
    }

    /// When the run's terminal effects were written.
    pub fn effects_written_at(&self) -> Option<Timestamp> {
        self.run.written_at
    }

    /// What the run's attempts cost so far.
    pub fn spend(&self) -> crate::Spend {
        let mut spend = crate::Spend::default();
        for a in &self.run.attempts {
            spend.add(crate::Spend {
                cost_usd: a.cost_usd,
                tokens: a.tokens,
            });
        }
        spend
    }

    /// The key claims are ordered by: priority, then the oldest issue, then the id.
    pub fn order_key(&self) -> (u8, Timestamp, TaskId) {
        (
            self.issue.priority().rank(),
            self.issue.created_at,
            self.id.clone(),
        )
    }
}

impl Status {
    /// The coarse state this one is grouped under.
    pub fn group(&self) -> TaskState {
        match self {
            Status::Ready | Status::Scheduled { .. } | Status::Held(_) => TaskState::Pending,
            Status::Running { .. } => TaskState::InProgress,
            Status::Completed { .. } => TaskState::Completed,
            Status::Failed { .. } => TaskState::Failed,
            Status::Cancelled { .. } => TaskState::Cancelled,
            Status::Parked => TaskState::Parked,
        }
    }

    /// The state's name: `ready`, `scheduled`, `held`, `running`, `completed`,
    /// `failed`, `cancelled`, `parked`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::Scheduled { .. } => "scheduled",
            Status::Held(_) => "held",
            Status::Running { .. } => "running",
            Status::Completed { .. } => "completed",
            Status::Failed { .. } => "failed",
            Status::Cancelled { .. } => "cancelled",
            Status::Parked => "parked",
        }
    }

    /// Held by `holds`, or Ready when nothing holds.
    pub fn held(holds: Holds) -> Status {
        if holds.review.is_none() && holds.blocked.is_none() {
            Status::Ready
        } else {
            Status::Held(holds)
        }
    }

    /// Whether no event but a new run leaves it.
    pub fn is_terminal(&self) -> bool {
        self.group().is_terminal()
    }
}
