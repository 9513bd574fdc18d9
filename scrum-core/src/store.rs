//! [`Store`]: the few primitives a queue backend implements. Enqueue, claim, apply,
//! expire and acknowledge are written once, on top of them (`shared`): every type
//! that is a [`Store`], a [`Leader`] and a [`WorkerRegistry`] is a [`WorkQueue`].
//!
//! A backend keeps tasks with a [`Version`] that every write changes, writes a
//! step only while the version it read still holds (compare and set), reserves
//! the next task a claim may take, and keeps the outbox. What a step is, when a
//! task may be claimed, and when two lock paths overlap ([`crate::locks`]) are
//! decided in Rust, here and in [`crate::state`], never by the backend.
//!
//! [`WorkQueue`]: crate::WorkQueue

mod remembered;
mod shared;

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Task, TaskId, TaskState, Timestamp};
use crate::queue::{
    EffectFailure, EffectSelector, OutboxEntry, QueueCounts, RepoHolds, TaskFilter,
};
use crate::state::{Ctx, Jitter, Policy, Step};
#[cfg(doc)]
use crate::workers::WorkerRegistry;

pub use remembered::Remembered;
pub use shared::MAX_RETRIES;

/// A task's version: changes with every write of the task. Opaque: only compared.
pub type Version = u64;

/// A task as read, with the version a write of a step decided from it must match.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The task.
    pub task: Task,
    /// Its version when read.
    pub version: Version,
}

/// What a queue applies: the policy and where backoff jitter comes from.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// Attempts, leases, backoff, lock rules.
    pub policy: &'a Policy,
    /// Backoff jitter.
    pub jitter: &'a Jitter,
}

impl<'a> Rules<'a> {
    /// The rules of `policy` with jitter from `jitter`.
    pub fn new(policy: &'a Policy, jitter: &'a Jitter) -> Rules<'a> {
        Rules { policy, jitter }
    }

    /// The context of one step at `now`.
    pub fn ctx(&self, now: Timestamp) -> Ctx<'a> {
        Ctx::sample(now, self.policy, self.jitter)
    }
}

/// One write: a step decided from `old`, stored only while `old` is current.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    /// The task and effects to store, atomically.
    pub step: &'a Step,
    /// The task as read, at its version; `None` for a new task (the write must
    /// then find no task with its id).
    pub old: Option<&'a Versioned>,
    /// An effect to delete in the same commit (it was acknowledged).
    pub ack: Option<u64>,
    /// The time of the step: a task waiting for a worker is indexed as ready or
    /// backing off as of it.
    pub now: Timestamp,
}

impl Write<'_> {
    /// Whether this write claims a task that declares paths: such writes are
    /// serialised with each other, and refused with [`Written::LockHeld`] when
    /// [`crate::locks::lock_holder`] finds an in-progress task with a live lease
    /// whose keys overlap (the task's own old version aside).
    pub fn claims_locks(&self) -> bool {
        self.step.task.state() == TaskState::InProgress
            && !self.step.task.locks.is_empty()
            && self
                .old
                .is_none_or(|o| o.task.state() != TaskState::InProgress)
    }
}

/// What a [`Store::write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Stored; the task's new version.
    Stored(Version),
    /// Not stored: the task changed (or was created) since it was read.
    Conflict,
    /// Not stored: a claim of a task whose lock keys overlap a lock another
    /// in-progress task holds ([`Write::claims_locks`]).
    LockHeld,
}

/// Which outbox entries [`Store::effects`] reads, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectQuery {
    /// Up to `limit` of every unapplied effect (`WorkQueue::pending_effects`).
    Pending(usize),
    /// Up to `limit` effects to apply at the time (`WorkQueue::due_effects`,
    /// [`crate::backend::due_effects`]).
    Due(Timestamp, usize),
    /// Up to `limit` effects that failed at least once (`WorkQueue::failing_effects`).
    Failing(usize),
    /// The effect with this id, if it is still in the outbox.
    Id(u64),
}

/// A change to outbox entries that is no task's step.
#[derive(Clone, Copy, Debug)]
pub enum Settle<'a> {
    /// The effect was applied: delete it (an unknown id changes nothing).
    Ack(u64),
    /// Applying it failed ([`OutboxEntry::record`]; an unknown id changes nothing).
    Fail(u64, &'a EffectFailure),
    /// Bring the dead effects the selector names back, due at the time
    /// ([`OutboxEntry::revive`]).
    Revive(&'a EffectSelector, Timestamp),
}

/// The primitives of a queue backend: tasks with versions, compare-and-set writes,
/// claim reservations, and the outbox.
///
/// # Contract
///
/// - A write stores the step's task and effects (and deletes the acknowledged
///   effect) atomically, and only while the task's version is the one read.
/// - Writes that claim a task with lock keys ([`Write::claims_locks`]) are
///   serialised, so two of them never both see the other's paths free.
/// - Reads see every write that returned.
///
/// The backend is done when the conformance suite (`scrum_core::conformance`,
/// feature `testkit`) passes unchanged on the [`crate::WorkQueue`] this trait gives
/// it. `scrum_core::memory::MemoryQueue` is the shortest backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The policy and jitter the queue applies.
    fn rules(&self) -> Rules<'_>;

    /// The task `id` with its version, as stored now.
    async fn load(&self, id: &TaskId) -> Result<Option<Versioned>>;

    /// Stores `write.step` if `write.old` is still current ([`Written`]).
    async fn write(&self, write: Write<'_>) -> Result<Written>;

    /// The first task a claim at `now` may take, in claim order (priority, then
    /// the oldest issue, then the id): claimable at `now`, not held by `hold`, and
    /// waiting for no lock ([`crate::backend::admits`]). A shared store hides it from
    /// other reservations for a short while, until it is written or that lapses.
    async fn reserve(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<Versioned>>;

    /// Tasks that pass `filter`, ordered by id (`WorkQueue::list`).
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;

    /// How many tasks are in each state.
    async fn state_counts(&self) -> Result<QueueCounts>;

    /// The outbox entries `query` names.
    async fn effects(&self, query: EffectQuery) -> Result<Vec<OutboxEntry>>;

    /// Changes outbox entries as `settle` says; returns how many it changed.
    async fn settle_effects(&self, settle: Settle<'_>) -> Result<usize>;

    /// The tasks this process wrote last, when the backend keeps them to save a
    /// read before a heartbeat or a report ([`Remembered`]). None by default.
    fn remembered(&self) -> Option<&Remembered> {
        None
    }
}

/// The leader lease of a store ([`crate::WorkQueue::lead`]): only the leader polls
/// the tracker, reaps leases and applies the outbox.
#[async_trait]
pub trait Leader: Send + Sync {
    /// Takes or renews the leader lease for `holder` until `now + ttl`; says
    /// whether `holder` leads. A store one process owns always answers `true`.
    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool>;
}
