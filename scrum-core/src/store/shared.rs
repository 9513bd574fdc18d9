//! Enqueue, claim, apply, expire and acknowledge, written once for every [`Store`]:
//! read with a version, decide in Rust ([`crate::state`], [`crate::backend`]),
//! write if the version still holds, and on a lost race decide again on the new
//! state, at most [`MAX_RETRIES`] times.

use std::time::Duration;

use async_trait::async_trait;

use super::{EffectQuery, Leader, Settle, Store, Versioned, Write, Written};
use crate::backend;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    LeaseKind, LeaseToken, ReadyIssue, Task, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::queue::{
    Claimed, EffectFailure, EffectSelector, Enqueued, OutboxEntry, QueueCounts, RepoHolds,
    TaskFilter, WorkQueue, unknown_task,
};
use crate::state::{self, Event, Policy, Refusal, Step};
use crate::workers::WorkerRegistry;

/// How many times a change is decided again after another writer changed the same
/// task between its read and its write.
pub const MAX_RETRIES: usize = 64;

/// The error when writes to task `id` kept losing to other writers.
fn contention(id: &TaskId) -> Error {
    Error::unavailable(format!(
        "store: task {id} kept changing under concurrent writers; try again"
    ))
}

/// Writes `step`, decided from `old`, at `now`.
async fn write<S: Store + ?Sized>(
    store: &S,
    step: &Step,
    old: Option<&Versioned>,
    now: Timestamp,
) -> Result<Written> {
    let write = Write {
        step,
        old,
        ack: None,
        now,
    };
    store.write(write).await
}

/// Stores a reserved task back as it was, which re-indexes it and ends its
/// reservation. A lost race needs nothing: the other write re-indexed it.
async fn put_back<S: Store + ?Sized>(
    store: &S,
    reserved: &Versioned,
    now: Timestamp,
) -> Result<()> {
    let back = Step::store(reserved.task.clone());
    write(store, &back, Some(reserved), now).await.map(drop)
}

#[async_trait]
impl<S: Store + Leader + WorkerRegistry> WorkQueue for S {
    fn policy(&self) -> &Policy {
        self.rules().policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.rules().ctx(observed_at);
        for _ in 0..MAX_RETRIES {
            let current = self.load(&issue.id).await?;
            let task = current.as_ref().map(|v| &v.task);
            let (step, answer) = backend::enqueue_step(task, issue.clone(), &ctx)?;
            let Some(step) = step else {
                return Ok(answer);
            };
            if let Written::Stored(_) = write(self, &step, current.as_ref(), observed_at).await? {
                return Ok(answer);
            }
        }
        Err(contention(&issue.id))
    }

    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &RepoHolds,
    ) -> Result<Option<Claimed>> {
        let ctx = self.rules().ctx(now);
        for _ in 0..MAX_RETRIES {
            let Some(reserved) = self.reserve(now, hold).await? else {
                return Ok(None);
            };
            let event = Event::Claim {
                worker: worker.clone(),
                token: LeaseToken::random(),
                lease,
            };
            let step = match state::transition(&reserved.task, event, &ctx) {
                Ok(step) => step,
                // Reserved at a later `now` than this call's: index it again as of
                // this call, and look for another.
                Err(Refusal::NotClaimable) => {
                    put_back(self, &reserved, now).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match write(self, &step, Some(&reserved), now).await? {
                Written::Stored(version) => {
                    if let Some(remembered) = self.remembered() {
                        remembered.remember(&step.task, version);
                    }
                    return Ok(Some(step.task));
                }
                // Another claimer took an overlapping lock since the reservation
                // looked: the next reservation passes over this task.
                Written::LockHeld => put_back(self, &reserved, now).await?,
                // Changed since the reservation (a cancel, a refresh): look again.
                Written::Conflict => {}
            }
        }
        Err(Error::unavailable(
            "store: claims kept colliding with other writers; try again",
        ))
    }

    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.rules().ctx(now);
        let remembered = self.remembered();
        let mut guess = remembered.and_then(|r| r.take(id));
        for _ in 0..MAX_RETRIES {
            let from_memory = guess.is_some();
            let current = match guess.take() {
                Some(known) => known,
                None => self.load(id).await?.ok_or_else(|| unknown_task(id))?,
            };
            let step = match state::transition(&current.task, event.clone(), &ctx) {
                Ok(step) if !step.unchanged => step,
                // Refused or repeated on a copy that may be stale: ask the store.
                _ if from_memory => continue,
                Ok(step) => return Ok(step.task),
                Err(e) => return Err(e.into()),
            };
            if let Written::Stored(version) = write(self, &step, Some(&current), now).await? {
                if let Some(remembered) = remembered {
                    remembered.remember(&step.task, version);
                }
                return Ok(step.task);
            }
        }
        Err(contention(id))
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let held = self
            .tasks(&TaskFilter::states([TaskState::InProgress]))
            .await?;
        let expiry = |t: &Task| t.lease().map(|l| l.expires_at);
        let mut lapsed: Vec<Task> = held
            .into_iter()
            .filter(|t| expiry(t).is_some_and(|at| at <= now))
            .collect();
        lapsed.sort_by(|a, b| (expiry(a), &a.id).cmp(&(expiry(b), &b.id)));
        let mut expired = Vec::with_capacity(lapsed.len());
        for task in lapsed {
            match self.apply(&task.id, Event::Expire, now).await {
                Ok(task) => expired.push(task),
                // Renewed, finished or expired by someone else since the scan.
                Err(e)
                    if matches!(e.kind(), ErrorKind::InvalidTransition | ErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.load(id).await?.map(|v| v.task))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.tasks(filter).await
    }

    async fn counts(&self) -> Result<QueueCounts> {
        self.state_counts().await
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.effects(EffectQuery::Pending(limit)).await
    }

    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.effects(EffectQuery::Due(now, limit)).await
    }

    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.effects(EffectQuery::Failing(limit)).await
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let Some(entry) = self.effects(EffectQuery::Id(id)).await?.pop() else {
            return Ok(());
        };
        let effect = &entry.effect;
        if effect.kind.is_terminal() {
            let ctx = self.rules().ctx(now);
            for _ in 0..MAX_RETRIES {
                let Some(current) = self.load(&effect.task).await? else {
                    break;
                };
                let Some(step) = backend::ack_step(&current.task, effect, &ctx) else {
                    break;
                };
                // The task's new state and the effect's deletion in one commit.
                let write = Write {
                    step: &step,
                    old: Some(&current),
                    ack: Some(id),
                    now,
                };
                if let Written::Stored(_) = self.write(write).await? {
                    return Ok(());
                }
            }
        }
        self.settle_effects(Settle::Ack(id)).await.map(drop)
    }

    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        self.settle_effects(Settle::Fail(id, failure))
            .await
            .map(drop)
    }

    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize> {
        self.settle_effects(Settle::Revive(which, now)).await
    }

    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool> {
        Leader::lead(self, holder, ttl, now).await
    }
}
