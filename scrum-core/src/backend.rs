//! Building blocks for [`WorkQueue`](crate::WorkQueue) backends: what every backend
//! does the same way around [`state::transition`], public so that a backend written
//! outside this repository does not write it again.
//!
//! - [`enqueue_step`] decides what an enqueue stores and answers;
//! - [`ack_step`] decides what acknowledging an effect changes on its task;
//! - [`admits`] says whether a claim may take a task (time, hold, locks);
//! - [`LiveIndex`] keeps the orders claims and the lease reaper walk, for a backend
//!   that holds its live tasks in memory;
//! - [`due_effects`] picks the effects to apply now from a scan of the outbox.
//!
//! The shared code of every [`Store`](crate::store::Store) uses them; the in-memory
//! queue ([`crate::memory::MemoryQueue`]) is the shortest backend to read.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::error::Result;
use crate::model::{ReadyIssue, Task, TaskId, TaskState, Timestamp};
use crate::queue::{Enqueued, OutboxEntry, RepoHolds};
use crate::state::{self, Ctx, Effect, Event, Refusal, Step};

/// What an enqueue of `issue` stores, if anything, and what it answers, given the
/// issue's current task (`None` when it has none).
///
/// - no task: a new Pending task of run 1 (`Created`);
/// - a live task: its issue data refreshed when it changed, else nothing (`Unchanged`);
/// - a terminal task: a new run when its terminal labels were written before
///   `ctx.now` (`Requeued`), else nothing (`Unchanged`).
pub fn enqueue_step(
    current: Option<&Task>,
    issue: ReadyIssue,
    ctx: &Ctx<'_>,
) -> Result<(Option<Step>, Enqueued)> {
    let Some(task) = current else {
        return Ok((
            Some(state::new_task(issue, ctx.now, ctx.policy)),
            Enqueued::Created,
        ));
    };
    if !task.state().is_terminal() {
        // A pending task's keys follow the lock rules, which may have changed since.
        if *task.issue == issue
            && (task.state() != TaskState::Pending || task.locks == ctx.policy.locks.keys(&issue))
        {
            return Ok((None, Enqueued::Unchanged));
        }
        let mut refreshed = task.clone();
        state::set_issue(&mut refreshed, issue, ctx.policy);
        return Ok((Some(Step::store(refreshed)), Enqueued::Unchanged));
    }
    let observed_at = ctx.now;
    match state::transition(task, Event::Requeue { issue, observed_at }, ctx) {
        Ok(step) => Ok((Some(step), Enqueued::Requeued)),
        Err(Refusal::NotRelabelled) => Ok((None, Enqueued::Unchanged)),
        Err(e) => Err(e.into()),
    }
}

/// The step acknowledging `effect` causes on `task`, if any: a terminal state's
/// labels were written, for the run that effect belongs to (so a ready label seen
/// afterwards may start a new run).
pub fn ack_step(task: &Task, effect: &Effect, ctx: &Ctx<'_>) -> Option<Step> {
    if !effect.kind.is_terminal() || task.run.number != effect.run {
        return None;
    }
    state::transition(task, Event::EffectsWritten, ctx).ok()
}

/// The effects to apply now among `pending`, every unapplied effect oldest first:
/// up to `limit` that are not set aside, whose time has come, and whose task has no
/// earlier effect still waiting (see [`crate::WorkQueue::due_effects`]).
pub fn due_effects<'a>(
    pending: impl IntoIterator<Item = &'a OutboxEntry>,
    now: Timestamp,
    limit: usize,
) -> Vec<OutboxEntry> {
    let mut waiting: HashSet<&TaskId> = HashSet::new();
    let mut due = Vec::new();
    for e in pending {
        if due.len() >= limit {
            break;
        }
        if e.dead || e.next_attempt_at > now {
            waiting.insert(&e.effect.task);
        } else if !waiting.contains(&e.effect.task) {
            due.push(e.clone());
        }
    }
    due
}

/// Whether a claim at `now` may take `task`: it waits for a worker and its time
/// has come, `hold` does not hold it, and no task of `held` (in-progress tasks:
/// id, lease expiry, lock keys) holds a lock its keys overlap
/// ([`crate::locks::lock_holder`]). Every store's reservation asks this.
pub fn admits<'a>(
    task: &Task,
    now: Timestamp,
    hold: &RepoHolds,
    held: impl IntoIterator<Item = (&'a TaskId, Timestamp, &'a [String])>,
) -> bool {
    task.claimable_from().is_some_and(|at| at <= now)
        && !hold.holds(&task.id)
        && crate::locks::lock_holder(&task.locks, held, now).is_none()
}

/// The claim order of a pending task: priority, then the oldest issue, then the id.
pub type OrderKey = (u8, Timestamp, TaskId);

/// The orders over a queue's live tasks that claims and the lease reaper walk, so
/// that neither scans the queue: pending tasks claimable now in claim order, pending
/// tasks backing off by the time they become claimable, and in-progress tasks by
/// lease expiry. Each operation costs O(log n).
///
/// The index holds keys, not tasks: the backend keeps the tasks and calls
/// [`LiveIndex::remove`] with a task's old version and [`LiveIndex::insert`] with
/// its new one whenever it stores a change.
#[derive(Debug, Default)]
pub struct LiveIndex {
    ready: BTreeSet<OrderKey>,
    delayed: BTreeSet<(Timestamp, OrderKey)>,
    leases: BTreeSet<(Timestamp, TaskId)>,
    /// Claimable tasks a claim reserved, out of the claim order until the time
    /// given (a claimer that vanished in between does not keep them).
    reserved: BTreeMap<OrderKey, Timestamp>,
    /// In-progress tasks that declare paths: their lease's expiry and lock keys.
    locked: BTreeMap<TaskId, (Timestamp, Vec<String>)>,
}

impl LiveIndex {
    /// Indexes `task` as stored at `now`: a task waiting for a worker by when it
    /// may be claimed, a running one by its lease. Held and terminal tasks are not
    /// indexed.
    pub fn insert(&mut self, task: &Task, now: Timestamp) {
        if let Some(at) = task.claimable_from() {
            if at <= now {
                self.ready.insert(task.order_key());
            } else {
                self.delayed.insert((at, task.order_key()));
            }
        } else if let Some(l) = task.lease() {
            self.leases.insert((l.expires_at, task.id.clone()));
            if !task.locks.is_empty() {
                let locked = (l.expires_at, task.locks.clone());
                self.locked.insert(task.id.clone(), locked);
            }
        }
    }

    /// Drops the entries of `task`, the version last passed to [`LiveIndex::insert`].
    pub fn remove(&mut self, task: &Task) {
        if let Some(at) = task.claimable_from() {
            let key = task.order_key();
            if !self.ready.remove(&key) && self.reserved.remove(&key).is_none() {
                self.delayed.remove(&(at, key));
            }
        } else if let Some(l) = task.lease() {
            self.leases.remove(&(l.expires_at, task.id.clone()));
            if !task.locks.is_empty() {
                self.locked.remove(&task.id);
            }
        }
    }

    /// The in-progress tasks that hold locks: id, lease expiry, lock keys.
    pub fn locks(&self) -> impl Iterator<Item = (&TaskId, Timestamp, &[String])> {
        self.locked
            .iter()
            .map(|(id, (at, k))| (id, *at, k.as_slice()))
    }

    /// Reserves the first pending task a claim at `now` may take ([`admits`];
    /// `task` finds a task by id) until `until`: it leaves the claim order until
    /// it is stored again ([`LiveIndex::remove`]) or `until` passes.
    pub fn reserve<'a>(
        &mut self,
        now: Timestamp,
        until: Timestamp,
        hold: &RepoHolds,
        task: impl Fn(&TaskId) -> Option<&'a Task>,
    ) -> Option<TaskId> {
        self.promote_due(now);
        let key = self
            .ready
            .iter()
            .find(|(_, _, id)| task(id).is_some_and(|t| admits(t, now, hold, self.locks())))?
            .clone();
        self.ready.remove(&key);
        let id = key.2.clone();
        self.reserved.insert(key, until);
        Some(id)
    }

    /// The in-progress task, with a live lease at `now`, whose lock keys overlap
    /// `keys`: a pending task with `keys` is not handed out while there is one
    /// ([`crate::locks`]).
    pub fn lock_holder(&self, keys: &[String], now: Timestamp) -> Option<&TaskId> {
        crate::locks::lock_holder(keys, self.locks(), now)
    }

    /// Moves backing-off tasks whose time has come by `now`, and reservations that
    /// lapsed by then, into the claim order.
    pub fn promote_due(&mut self, now: Timestamp) {
        // Reservations are few: the claims in flight.
        if self.reserved.values().any(|until| *until <= now) {
            let lapsed: Vec<OrderKey> = (self.reserved.iter())
                .filter(|(_, until)| **until <= now)
                .map(|(key, _)| key.clone())
                .collect();
            for key in lapsed {
                self.reserved.remove(&key);
                self.ready.insert(key);
            }
        }
        while self.delayed.first().is_some_and(|(at, _)| *at <= now) {
            let (_, key) = self.delayed.pop_first().expect("checked non-empty");
            self.ready.insert(key);
        }
    }

    /// The pending tasks a claim may take, in claim order (call
    /// [`LiveIndex::promote_due`] first).
    pub fn ready(&self) -> impl Iterator<Item = &TaskId> {
        self.ready.iter().map(|(_, _, id)| id)
    }

    /// The in-progress task whose lease lapsed first, if one lapsed by `now`.
    pub fn first_lapsed(&self, now: Timestamp) -> Option<&TaskId> {
        self.leases
            .first()
            .filter(|(at, _)| *at <= now)
            .map(|(_, id)| id)
    }

    /// The ids of every in-progress task, earliest lease expiry first.
    pub fn held(&self) -> impl Iterator<Item = &TaskId> {
        self.leases.iter().map(|(_, id)| id)
    }

    /// Every in-progress task whose lease lapsed by `now`, earliest first.
    pub fn lapsed(&self, now: Timestamp) -> impl Iterator<Item = &TaskId> {
        self.leases
            .iter()
            .take_while(move |(at, _)| *at <= now)
            .map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LeaseKind, LeaseToken, WorkerId};
    use crate::state::{Jitter, Policy};

    fn issue(n: u64, labels: &[&str]) -> ReadyIssue {
        ReadyIssue {
            id: TaskId::new("acme/widgets", n).unwrap(),
            title: format!("Issue {n}"),
            body: String::new(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            created_at: Timestamp(n as i64),
        }
    }

    #[test]
    fn the_index_orders_claims_backoffs_and_leases() {
        let (policy, jitter) = (Policy::default(), Jitter::fixed(0.5));
        let ctx = |now| Ctx::sample(Timestamp(now), &policy, &jitter);
        let mut index = LiveIndex::default();
        let low = state::new_task(issue(1, &[]), Timestamp(0), &policy).task;
        let urgent = state::new_task(issue(2, &["priority:critical"]), Timestamp(0), &policy).task;
        index.insert(&low, Timestamp(0));
        index.insert(&urgent, Timestamp(0));
        let order: Vec<_> = index.ready().map(|id| id.number()).collect();
        assert_eq!(order, [2, 1], "priority before age");

        let claim = Event::Claim {
            worker: WorkerId::new("w").unwrap(),
            token: LeaseToken(7),
            lease: LeaseKind::Heartbeat,
        };
        let held = state::transition(&urgent, claim, &ctx(0)).unwrap().task;
        index.remove(&urgent);
        index.insert(&held, Timestamp(0));
        assert_eq!(index.ready().count(), 1);
        assert_eq!(index.first_lapsed(Timestamp(0)), None);
        let expiry = held.lease().as_ref().unwrap().expires_at;
        assert_eq!(index.first_lapsed(expiry), Some(&held.id));
        assert_eq!(index.lapsed(expiry).count(), 1);

        // A lapsed lease backs off; the task is claimable again only when it is due.
        let backing_off = state::transition(&held, Event::Expire, &ctx(expiry.0))
            .unwrap()
            .task;
        index.remove(&held);
        index.insert(&backing_off, expiry);
        assert_eq!(index.lapsed(expiry).count(), 0);
        index.promote_due(expiry);
        assert_eq!(index.ready().count(), 1, "not due yet");
        index.promote_due(backing_off.claimable_from().unwrap());
        let order: Vec<_> = index.ready().map(|id| id.number()).collect();
        assert_eq!(order, [2, 1]);
    }

    #[test]
    fn a_reservation_hides_a_task_until_it_is_stored_or_lapses() {
        let policy = Policy::default();
        let mut index = LiveIndex::default();
        let task = state::new_task(issue(1, &[]), Timestamp(0), &policy).task;
        index.insert(&task, Timestamp(0));
        let (hold, find) = (RepoHolds::default(), |_: &TaskId| Some(&task));
        let reserved = index.reserve(Timestamp(1), Timestamp(30), &hold, find);
        assert_eq!(reserved.as_ref(), Some(&task.id));
        assert_eq!(
            index.reserve(Timestamp(2), Timestamp(31), &hold, find),
            None
        );
        // A claimer that vanished: the task is back once the reservation lapsed.
        assert_eq!(
            index.reserve(Timestamp(30), Timestamp(60), &hold, find),
            Some(task.id.clone())
        );
        // Stored again (put back): out of the reservations, into the claim order.
        index.remove(&task);
        index.insert(&task, Timestamp(31));
        assert_eq!(index.ready().count(), 1);
        let held = RepoHolds {
            repos: vec!["acme/widgets".into()],
        };
        assert_eq!(
            index.reserve(Timestamp(31), Timestamp(61), &held, find),
            None
        );
    }
}
