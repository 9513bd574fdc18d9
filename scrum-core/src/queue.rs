//! [`WorkQueue`]: durable task state and the outbox of GitHub effects.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Clarification, Completion, Failure, HeartbeatReply, LeaseKind, LeaseToken, ReadyIssue, Task,
    TaskId, TaskState, Timestamp, WorkerId,
};
use crate::state::{Effect, Event, Policy};
use crate::workers::WorkerRegistry;

/// What [`WorkQueue::enqueue`] did with an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enqueued {
    /// A new task (run 1) was created.
    Created,
    /// A terminal task was queued again as a new run.
    Requeued,
    /// The issue already has a live task, or a terminal one whose labels were not yet
    /// written (or written after `observed_at`); nothing changed.
    Unchanged,
}

/// A claim's result: the task, now in progress under a fresh lease.
pub type Claimed = Task;

/// One recorded effect waiting to be applied to GitHub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Increasing in recording order; effects of one task are applied in this order.
    pub id: u64,
    /// What to apply.
    pub effect: Effect,
    /// How many times applying it failed so far.
    pub failures: u32,
    /// Not tried again before this time (0 for an effect that never failed).
    #[serde(default)]
    pub next_attempt_at: Timestamp,
    /// Set aside after a refusal a retry cannot fix: not tried again until an
    /// operator revives it ([`WorkQueue::revive_effects`]).
    #[serde(default)]
    pub dead: bool,
    /// The last failure was the tracker refusing the write (a token without write
    /// access): while a repository has such effects, its tasks are not handed out.
    #[serde(default)]
    pub refused: bool,
    /// Why the last attempt failed (redacted).
    #[serde(default)]
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// A new entry that never failed.
    pub fn new(id: u64, effect: Effect) -> OutboxEntry {
        OutboxEntry {
            id,
            effect,
            failures: 0,
            next_attempt_at: Timestamp(0),
            dead: false,
            refused: false,
            last_error: None,
        }
    }

    /// Records a failed attempt as `failure` says.
    pub fn record(&mut self, failure: &EffectFailure) {
        self.failures += 1;
        self.last_error = Some(failure.error.clone());
        self.refused = failure.refused;
        match failure.retry_at {
            Some(at) => self.next_attempt_at = at,
            None => self.dead = true,
        }
    }

    /// Makes the entry due at `now` again, as if it never failed (an operator fixed
    /// the cause).
    pub fn revive(&mut self, now: Timestamp) {
        *self = OutboxEntry {
            next_attempt_at: now,
            ..OutboxEntry::new(self.id, self.effect.clone())
        };
    }
}

/// What a failed attempt to apply an effect means for it, as the engine decided
/// ([`crate::state::effect_failure`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectFailure {
    /// Why it failed (redacted).
    pub error: String,
    /// The tracker refused the write (no write access).
    pub refused: bool,
    /// When to try again; `None` sets the effect aside (dead).
    pub retry_at: Option<Timestamp>,
}

/// Which set-aside effects [`WorkQueue::revive_effects`] brings back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectSelector {
    /// Every dead effect.
    All,
    /// The dead effects of one repository (`owner/name`).
    Repo(String),
    /// One effect, by id.
    Id(u64),
}

impl EffectSelector {
    /// Whether `entry` is a dead effect this selector names.
    pub fn selects(&self, entry: &OutboxEntry) -> bool {
        entry.dead
            && match self {
                EffectSelector::All => true,
                EffectSelector::Repo(r) => entry.effect.task.repo() == r,
                EffectSelector::Id(id) => entry.id == *id,
            }
    }
}

/// Repository holds: the repositories whose ready tasks a claim passes over,
/// because a claim gate holds them (GitHub refuses this orchestrator's writes
/// there, review gating, a spent budget: [`crate::engine`]'s gates). The tasks
/// stay ready, and are handed out once nothing holds their repository. (A task's
/// own holds, an edit awaiting review or open blockers, are its `Held` state.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoHolds {
    /// The held repositories (`owner/name`).
    pub repos: Vec<String>,
}

impl RepoHolds {
    /// Whether the task `id` is held.
    pub fn holds(&self, id: &TaskId) -> bool {
        self.repos.iter().any(|r| r == id.repo())
    }
}

/// Which tasks [`WorkQueue::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only tasks in these states (all states when empty).
    pub states: Vec<TaskState>,
    /// Only tasks held by this worker.
    pub worker: Option<WorkerId>,
    /// Skip this many matching tasks (in id order).
    pub offset: usize,
    /// Return at most this many (no limit when `None`).
    pub limit: Option<usize>,
}

impl TaskFilter {
    /// Pending and in-progress tasks.
    pub fn live() -> TaskFilter {
        TaskFilter::states([TaskState::Pending, TaskState::InProgress])
    }

    /// Tasks in any of `states`.
    pub fn states(states: impl IntoIterator<Item = TaskState>) -> TaskFilter {
        TaskFilter {
            states: states.into_iter().collect(),
            ..TaskFilter::default()
        }
    }

    /// Whether `task` passes the state and worker conditions (not the paging).
    pub fn matches(&self, task: &Task) -> bool {
        (self.states.is_empty() || self.states.contains(&task.state()))
            && self
                .worker
                .as_ref()
                .is_none_or(|w| task.holder() == Some(w))
    }
}

/// How many tasks are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Waiting for a worker (including backoff).
    pub pending: u64,
    /// Held by a worker.
    pub in_progress: u64,
    /// Finished successfully.
    pub completed: u64,
    /// Failed for good.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Parked until a person answers the worker's questions.
    #[serde(default)]
    pub parked: u64,
}

impl QueueCounts {
    /// Adds one task in `state`.
    pub fn add(&mut self, state: TaskState) {
        *self.of(state) += 1;
    }

    /// Counts a task that moved from `from` (`None`: a new task) to `to`.
    pub fn moved(&mut self, from: Option<TaskState>, to: TaskState) {
        if let Some(from) = from {
            let n = self.of(from);
            *n = n.saturating_sub(1);
        }
        self.add(to);
    }

    fn of(&mut self, state: TaskState) -> &mut u64 {
        match state {
            TaskState::Pending => &mut self.pending,
            TaskState::InProgress => &mut self.in_progress,
            TaskState::Completed => &mut self.completed,
            TaskState::Failed => &mut self.failed,
            TaskState::Cancelled => &mut self.cancelled,
            TaskState::Parked => &mut self.parked,
        }
    }
}

/// The reply to a heartbeat that renewed `task`'s lease.
pub fn heartbeat_reply(task: &Task) -> HeartbeatReply {
    HeartbeatReply {
        lease_expires_at: task
            .lease()
            .as_ref()
            .map_or(task.updated_at, |l| l.expires_at),
        cancel: task.stop_requested(),
    }
}

/// The error for a task the queue does not know.
pub fn unknown_task(id: &TaskId) -> Error {
    Error::not_found(format!("no task {id}"))
}

/// Durable task state: the queue of issues, the leases on them and the outbox of
/// GitHub effects.
///
/// # Contract
///
/// Every method that changes a task applies [`crate::state::transition`] (or
/// [`crate::state::new_task`]) and persists the resulting task together with its
/// effects, atomically: after a crash either both are stored or neither is. A
/// backend does not implement this trait: it implements the few primitives of
/// [`crate::store::Store`] (and [`crate::store::Leader`], [`WorkerRegistry`]), and
/// gets every method here from code written once, so it cannot get them subtly
/// wrong. The per-event methods (heartbeat, complete, fail, release, cancel, retry)
/// are provided on top of [`WorkQueue::apply`]; a wrapper (fault injection, a mock)
/// implements the rest.
/// Methods take `now` instead of reading a clock. A backend is done when the
/// conformance suite (`scrum_core::conformance`, feature `testkit`) passes unchanged;
/// each `# Behavior` bullet below is one test there.
///
/// Implementations are `Send + Sync + 'static` and object safe: the engine holds an
/// `Arc<dyn WorkQueue>`. Every queue also keeps the worker registry
/// ([`WorkerRegistry`], a supertrait), so the store remembers the fleet as it
/// remembers the tasks.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WorkQueue: WorkerRegistry + Send + Sync + 'static {
    /// The policy this queue applies (attempts, leases, backoff).
    fn policy(&self) -> &Policy;

    /// Records an issue seen ready at `observed_at` (the time the listing started).
    ///
    /// # Behavior
    /// - An issue with no task gets a Pending task of run 1 with a `Queued` effect.
    /// - Enqueuing an issue that has a live task changes nothing and returns `Unchanged`.
    /// - A live task's issue data (title, body, labels) is refreshed by a new enqueue.
    /// - A terminal task is queued again as a new run only when its terminal effects
    ///   were written before `observed_at`; otherwise `Unchanged`.
    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued>;

    /// Hands the first claimable task that `hold` does not hold to `worker`, under a
    /// new lease.
    ///
    /// # Behavior
    /// - An empty queue returns `None`.
    /// - Claims follow priority labels (critical, high, medium, low, none), then the
    ///   oldest issue.
    /// - A claim counts an attempt and returns a lease with a token no other claim had.
    /// - A task backing off after a failure is not claimable before its time.
    /// - A task is never handed to two claimers, even when they claim concurrently.
    /// - `LeaseKind::RunTime` leases last the maximum run time.
    /// - Tasks `hold` holds are passed over, however old or urgent, and are
    ///   claimed once the hold lifts.
    /// - A task whose declared paths overlap those of an in-progress task is
    ///   passed over, and claimed once that task ends ([`crate::locks`]).
    /// - A lock ends with its task's lease, or a release.
    /// - Concurrent claimers never hold two tasks whose paths overlap.
    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &RepoHolds,
    ) -> Result<Option<Claimed>>;

    /// [`WorkQueue::claim_where`] with nothing held.
    async fn claim(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
    ) -> Result<Option<Claimed>> {
        self.claim_where(worker, lease, now, &RepoHolds::default())
            .await
    }

    /// Applies one event to the task `id` and stores the resulting task together with
    /// its effects, atomically: the one primitive the per-event methods below are
    /// built on, so a backend implements each rule once.
    ///
    /// # Behavior
    /// - An unknown task fails with `NotFound`; an event that does not apply fails
    ///   with its [`crate::state::Refusal`] as `LeaseLost` or `InvalidTransition` and
    ///   changes nothing.
    /// - A repeat of the call that ended a lease ([`crate::state::Step::unchanged`])
    ///   succeeds and stores nothing.
    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task>;

    /// Renews the lease `token` holds.
    ///
    /// # Behavior
    /// - A heartbeat with the live token extends the lease by one lease period.
    /// - A heartbeat with a stale token fails with `LeaseLost` and changes nothing.
    /// - A heartbeat on a task being cancelled answers `cancel: true`.
    /// - An unknown task fails with `NotFound`.
    async fn heartbeat(
        &self,
        id: &TaskId,
        token: LeaseToken,
        now: Timestamp,
    ) -> Result<HeartbeatReply> {
        let task = self.apply(id, Event::Heartbeat { token }, now).await?;
        Ok(heartbeat_reply(&task))
    }

    /// Completes the task `token` holds.
    ///
    /// # Behavior
    /// - Completing with the live token makes the task Completed with a `Completed` effect.
    /// - The same completion sent twice with the same token succeeds twice and takes
    ///   effect once.
    /// - Completing with a stale token fails with `LeaseLost` and changes nothing.
    async fn complete(
        &self,
        id: &TaskId,
        token: LeaseToken,
        completion: Completion,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Complete { token, completion }, now)
            .await
    }

    /// Reports that the attempt `token` holds failed.
    ///
    /// # Behavior
    /// - A retryable failure with attempts left puts the task back to Pending after a
    ///   backoff, with a `RetryScheduled` effect and no `Failed` effect.
    /// - A failure on the last attempt, or a non-retryable one, makes the task Failed
    ///   with one `Failed` effect.
    /// - Failing with a stale token fails with `LeaseLost` and changes nothing.
    async fn fail(
        &self,
        id: &TaskId,
        token: LeaseToken,
        failure: Failure,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Fail { token, failure }, now).await
    }

    /// Hands the task `token` holds back without spending an attempt.
    ///
    /// # Behavior
    /// - A released task is Pending at once, and its next claim has the same attempt number.
    /// - Releasing with a stale token fails with `LeaseLost`.
    async fn release(
        &self,
        id: &TaskId,
        token: LeaseToken,
        reason: String,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Release { token, reason }, now).await
    }

    /// Parks the task `token` holds: the issue needs a person's answers first.
    ///
    /// # Behavior
    /// - The task is Parked (terminal) with one `ClarificationRequested` effect
    ///   carrying the questions, and the attempt is handed back (`attempt_refunded`).
    /// - Repeating the call with the same token succeeds and changes nothing.
    /// - Parking with a stale token fails with `LeaseLost`.
    async fn clarify(
        &self,
        id: &TaskId,
        token: LeaseToken,
        clarification: Clarification,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(
            id,
            Event::Clarify {
                token,
                clarification,
            },
            now,
        )
        .await
    }

    /// Cancels the task of an issue that was closed or lost its ready label.
    ///
    /// # Behavior
    /// - A pending task becomes Cancelled at once with a `Cancelled` effect.
    /// - An in-progress task is marked for cancellation, its holder is told on its next
    ///   heartbeat, and it becomes Cancelled when the holder releases or fails it, or
    ///   when the lease lapses.
    /// - Cancelling a terminal or unknown task returns `None` and changes nothing.
    async fn cancel(&self, id: &TaskId, reason: String, now: Timestamp) -> Result<Option<Task>> {
        match self.apply(id, Event::Cancel { reason }, now).await {
            Ok(task) => Ok(Some(task)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidTransition) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a new run of a Failed or Cancelled task (an operator action).
    ///
    /// # Behavior
    /// - A failed task is Pending again with attempts from zero and a `Queued` effect.
    /// - Retrying a live or completed task fails with `InvalidTransition`.
    async fn retry(&self, id: &TaskId, now: Timestamp) -> Result<Task> {
        self.apply(id, Event::Retry, now).await
    }

    /// Ends every lease that lapsed by `now`, each as a failed attempt ("worker lost").
    ///
    /// # Behavior
    /// - A lapsed lease counts as a failed attempt: retried while attempts remain,
    ///   then Failed.
    /// - Leases that have not lapsed are left alone, and a lapsed token is refused
    ///   afterwards with `LeaseLost`.
    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>>;

    /// Gives every in-progress lease at least one lease period from `now`, never past
    /// its deadline, and returns the tasks whose lease it extended. An orchestrator
    /// calls it when it starts, before serving workers: during an outage no heartbeat
    /// or report could arrive, and without it the workers that kept running would
    /// lose their tasks to the first reap (or have their finished work refused).
    ///
    /// # Behavior
    /// - A lapsed lease that is not yet reaped is live again for one lease period: its
    ///   holder's heartbeat and completion succeed, and `expire` leaves it alone until
    ///   that period passed.
    /// - Leases that already run longer, and tasks not in progress, are unchanged.
    async fn resume_leases(&self, now: Timestamp) -> Result<Vec<Task>> {
        let held = self
            .list(&TaskFilter::states([TaskState::InProgress]))
            .await?;
        let mut resumed = Vec::new();
        for task in held {
            let expiry = |t: &Task| t.lease().map(|l| l.expires_at);
            let after = self.apply(&task.id, Event::Resume, now).await?;
            if expiry(&after) > expiry(&task) {
                resumed.push(after);
            }
        }
        Ok(resumed)
    }

    /// The task of an issue, in any state.
    async fn get(&self, id: &TaskId) -> Result<Option<Task>>;

    /// Tasks that pass `filter`, ordered by id.
    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>>;

    /// How many tasks are in each state.
    async fn counts(&self) -> Result<QueueCounts>;

    /// Up to `limit` effects not yet applied, oldest first, whatever their state
    /// (due, backing off or set aside).
    ///
    /// # Behavior
    /// - Effects come back in the order they were recorded, and stay until acknowledged.
    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Up to `limit` effects to apply now, oldest first: not set aside, their next
    /// attempt time reached, and no earlier effect of the same task still waiting
    /// (backing off or set aside), so each task's effects apply in recording order
    /// while failing effects hold back nothing else.
    ///
    /// # Behavior
    /// - An effect backing off is not due before its time, and neither are the later
    ///   effects of its task; the effects of other tasks are.
    /// - A dead effect is never due, and holds back the later effects of its task.
    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Up to `limit` effects that failed at least once and are not applied yet
    /// (backing off or set aside), oldest first: what `/health` and operators see.
    ///
    /// # Behavior
    /// - Failing and dead effects are listed with their failure count and last error;
    ///   effects that never failed are not.
    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Marks an effect applied. Acknowledging a task's terminal effect records when its
    /// labels were written (see [`WorkQueue::enqueue`]).
    ///
    /// # Behavior
    /// - An acknowledged effect is not returned again; acknowledging twice is fine.
    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()>;

    /// Records that applying an effect failed ([`OutboxEntry::record`]): its error,
    /// and when to try again or that it is set aside. Durable, like the effect.
    ///
    /// # Behavior
    /// - The failure count, error and next attempt time are stored; a failure
    ///   without a retry time sets the effect aside (dead).
    /// - Recording a failure of an unknown (already applied) effect changes nothing.
    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()>;

    /// Brings the dead effects `which` names back: due at `now`, failure count from
    /// zero. Returns how many it revived.
    ///
    /// # Behavior
    /// - Revived effects are due again, in their order; effects not named, and
    ///   effects that are not dead, are unchanged.
    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize>;

    /// Takes or renews the leader lease for `holder` until `now + ttl`, and says
    /// whether `holder` leads. Only the leader polls GitHub, reaps leases and applies
    /// the outbox; every orchestrator serves workers.
    ///
    /// # Behavior
    /// - A store one process owns (memory, SQLite) always answers `true`.
    /// - A shared store grants the lease to one holder at a time; another holder gets
    ///   it once the lease has lapsed without renewal.
    ///
    /// Required, with no default: a shared backend (or a wrapper) that forgot it
    /// would let every orchestrator lead at once.
    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool>;

    /// Gives up the leader lease `holder` holds, so that another orchestrator takes
    /// over at its next round instead of when the lease lapses (an orchestrator
    /// that stops cleanly). A holder that does not lead changes nothing.
    ///
    /// # Behavior
    /// - Once the leader resigned, another holder gets the lease at once.
    async fn resign(&self, holder: &str, now: Timestamp) -> Result<()> {
        // A lease that ends now is free for the next holder that asks.
        self.lead(holder, Duration::ZERO, now).await.map(drop)
    }
}

/// `MockWorkQueue` mocks [`WorkQueue`]'s own methods (mockall's `automock` does not
/// mock a supertrait's). Its registry is that of a store that keeps nothing: it
/// records nothing and lists nobody, so a test of the task methods needs no
/// registry expectations.
#[cfg(feature = "mock")]
#[async_trait]
impl WorkerRegistry for MockWorkQueue {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<crate::workers::WorkerRecord> {
        let mut record = crate::workers::WorkerRecord::unseen(worker.clone());
        record.seen_at(address, now);
        Ok(record)
    }
    async fn worker_finished(&self, _: &WorkerId, _: bool, _: Timestamp) -> Result<()> {
        Ok(())
    }
    async fn set_draining(&self, _: &WorkerId, _: bool) -> Result<()> {
        Ok(())
    }
    async fn set_sandbox(&self, _: &WorkerId, _: crate::workers::AgentSandbox) -> Result<()> {
        Ok(())
    }
    async fn workers(&self) -> Result<Vec<crate::workers::WorkerRecord>> {
        Ok(Vec::new())
    }
    async fn forget_workers(&self, _: Timestamp) -> Result<u64> {
        Ok(0)
    }
    async fn record_probe(&self, _: crate::workers::HostReport) -> Result<()> {
        Ok(())
    }
    async fn probes(&self) -> Result<Vec<crate::workers::HostReport>> {
        Ok(Vec::new())
    }
}
