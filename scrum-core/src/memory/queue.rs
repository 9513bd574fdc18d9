//! [`MemoryQueue`]: the in-memory [`Store`] (so a [`crate::WorkQueue`]), for tests,
//! embedding and benchmarks.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{self, LiveIndex};
use crate::error::Result;
use crate::model::{Task, TaskId, TaskState, Timestamp, WorkerId};
use crate::queue::{OutboxEntry, QueueCounts, RepoHolds, TaskFilter};
use crate::state::{self, Jitter, Policy, Step};
use crate::store::{EffectQuery, Leader, Rules, Settle, Store, Version, Versioned, Write, Written};

use super::workers::Registry;

/// A [`WorkQueue`](crate::WorkQueue) that keeps everything in memory: nothing survives the process.
///
/// Claims cost O(log n) in the number of waiting tasks: pending tasks sit in an
/// ordered index by (priority, issue age), backing-off tasks in one by due time, and
/// leases in one by expiry, so neither a claim nor the reaper scans the queue.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use scrum_core::{memory::MemoryQueue, state::Policy, LeaseKind, ReadyIssue, Timestamp, WorkQueue, WorkerId};
/// let queue = MemoryQueue::new(Policy::default());
/// let issue = ReadyIssue {
///     id: "acme/widgets#1".parse().unwrap(),
///     title: "Add a widget".into(),
///     body: String::new(),
///     labels: vec!["ai-ready".into()],
///     created_at: Timestamp(0),
/// };
/// queue.enqueue(issue, Timestamp(1)).await.unwrap();
/// let worker = WorkerId::new("worker-1").unwrap();
/// let task = queue.claim(&worker, LeaseKind::Heartbeat, Timestamp(2)).await.unwrap().unwrap();
/// assert_eq!(task.attempts(), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryQueue {
    policy: Policy,
    jitter: Jitter,
    // A std Mutex: every critical section is short and never awaits.
    inner: Mutex<Inner>,
    /// The worker registry (`super::workers`), apart from the tasks: a worker's call
    /// never waits for a claim.
    registry: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Inner {
    // Task ids come from the configured repositories, not from an attacker, so a
    // fast unkeyed hash is safe here.
    tasks: HashMap<TaskId, Versioned, BuildHasherDefault<FxHasher>>,
    /// Beside `tasks`, so that a step can replace a task in its map slot (one hash
    /// lookup) while the indexes change.
    index: Index,
    /// The last version a write gave: every write takes the next.
    versions: Version,
}

/// The orders claims and the reaper walk, and the outbox.
#[derive(Debug, Default)]
struct Index {
    live: LiveIndex,
    outbox: Outbox,
    /// The tasks by state, kept as steps are stored: `/health` asks often.
    counts: QueueCounts,
}

impl MemoryQueue {
    /// An empty queue applying `policy`, with random backoff jitter.
    pub fn new(policy: Policy) -> MemoryQueue {
        MemoryQueue::with_jitter(policy, Jitter::random())
    }

    /// An empty queue with a chosen jitter source (deterministic tests).
    pub fn with_jitter(policy: Policy, jitter: Jitter) -> MemoryQueue {
        MemoryQueue {
            policy,
            jitter,
            inner: Mutex::new(Inner::default()),
            registry: Mutex::new(Registry::default()),
        }
    }

    /// The worker registry, locked.
    pub(super) fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workers holding an in-progress task.
    pub(super) fn holders(&self) -> std::collections::HashSet<WorkerId> {
        let inner = self.lock();
        inner
            .index
            .live
            .held()
            .filter_map(|id| inner.tasks.get(id)?.task.holder().cloned())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied step: steps are
        // computed first and stored with plain inserts.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Index {
    /// Stores a step: the task replaces `old` (`None`: a new task), the indexes and
    /// the outbox follow.
    fn store(&mut self, old: Option<&Task>, step: &Step, now: Timestamp) {
        self.counts.moved(old.map(Task::state), step.task.state());
        if let Some(old) = old {
            self.live.remove(old);
        }
        self.live.insert(&step.task, now);
        self.outbox.extend(step.effects.iter().cloned());
    }
}

/// The effects waiting to be applied, in recording order. Ids increase by one per
/// effect and are mostly acknowledged oldest first, so a ring of slots beats an
/// ordered map: recording and acknowledging cost O(1).
#[derive(Debug, Default)]
struct Outbox {
    /// The id of `slots[0]`, less one.
    before: u64,
    /// `None` where an effect was acknowledged out of order.
    slots: VecDeque<Option<OutboxEntry>>,
    /// The ids of the effects that failed at least once (`/health` and claims ask,
    /// and they are few).
    failing: std::collections::BTreeSet<u64>,
}

impl Outbox {
    fn extend(&mut self, effects: impl IntoIterator<Item = state::Effect>) {
        for effect in effects {
            let id = self.before + self.slots.len() as u64 + 1;
            self.slots.push_back(Some(OutboxEntry::new(id, effect)));
        }
    }

    fn slot(&mut self, id: u64) -> Option<&mut Option<OutboxEntry>> {
        let i = usize::try_from(id.checked_sub(self.before + 1)?).ok()?;
        self.slots.get_mut(i)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut OutboxEntry> {
        self.slot(id)?.as_mut()
    }

    fn get(&self, id: u64) -> Option<&OutboxEntry> {
        let i = usize::try_from(id.checked_sub(self.before + 1)?).ok()?;
        self.slots.get(i)?.as_ref()
    }

    fn remove(&mut self, id: u64) -> Option<OutboxEntry> {
        self.failing.remove(&id);
        let entry = self.slot(id)?.take();
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.before += 1;
        }
        entry
    }

    fn iter(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.slots.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut OutboxEntry> {
        self.slots.iter_mut().flatten()
    }
}

/// The multiply-rotate hash of rustc's `FxHasher`: a few cycles per word.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How long a claim's reservation hides a task from other claims.
const RESERVATION: Timestamp = Timestamp(30_000);

#[async_trait]
impl Store for MemoryQueue {
    fn rules(&self) -> Rules<'_> {
        Rules::new(&self.policy, &self.jitter)
    }

    async fn load(&self, id: &TaskId) -> Result<Option<Versioned>> {
        Ok(self.lock().tasks.get(id).cloned())
    }

    async fn write(&self, write: Write<'_>) -> Result<Written> {
        let mut guard = self.lock();
        let Inner {
            tasks,
            index,
            versions,
        } = &mut *guard;
        let id = &write.step.task.id;
        let slot = tasks.get_mut(id);
        if slot.as_ref().map(|s| s.version) != write.old.map(|o| o.version) {
            return Ok(Written::Conflict);
        }
        if write.claims_locks()
            && index
                .live
                .lock_holder(&write.step.task.locks, write.now)
                .is_some()
        {
            return Ok(Written::LockHeld);
        }
        *versions += 1;
        let stored = Versioned {
            task: write.step.task.clone(),
            version: *versions,
        };
        match slot {
            Some(slot) => {
                let old = std::mem::replace(slot, stored);
                index.store(Some(&old.task), write.step, write.now);
            }
            None => {
                index.store(None, write.step, write.now);
                tasks.insert(id.clone(), stored);
            }
        }
        if let Some(ack) = write.ack {
            index.outbox.remove(ack);
        }
        Ok(Written::Stored(*versions))
    }

    async fn reserve(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<Versioned>> {
        let mut guard = self.lock();
        let Inner { tasks, index, .. } = &mut *guard;
        let until = Timestamp(now.0.saturating_add(RESERVATION.0));
        let found = index
            .live
            .reserve(now, until, hold, |id| tasks.get(id).map(|v| &v.task));
        Ok(found.and_then(|id| tasks.get(&id).cloned()))
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let inner = self.lock();
        let mut tasks: Vec<&Task> = match filter.states.as_slice() {
            // The in-progress tasks (`/workers` asks) are the held ones of the index.
            [TaskState::InProgress] => (inner.index.live.held())
                .map(|id| &inner.tasks[id].task)
                .collect(),
            _ => inner.tasks.values().map(|v| &v.task).collect(),
        };
        tasks.retain(|t| filter.matches(t));
        tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(tasks
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn state_counts(&self) -> Result<QueueCounts> {
        Ok(self.lock().index.counts)
    }

    async fn effects(&self, query: EffectQuery) -> Result<Vec<OutboxEntry>> {
        let inner = self.lock();
        let outbox = &inner.index.outbox;
        Ok(match query {
            EffectQuery::Pending(limit) => outbox.iter().take(limit).cloned().collect(),
            EffectQuery::Due(now, limit) => backend::due_effects(outbox.iter(), now, limit),
            EffectQuery::Failing(limit) => {
                let failing = outbox.failing.iter().filter_map(|id| outbox.get(*id));
                failing.take(limit).cloned().collect()
            }
            EffectQuery::Id(id) => outbox.get(id).cloned().into_iter().collect(),
        })
    }

    async fn settle_effects(&self, settle: Settle<'_>) -> Result<usize> {
        let mut inner = self.lock();
        let outbox = &mut inner.index.outbox;
        match settle {
            Settle::Ack(id) => Ok(usize::from(outbox.remove(id).is_some())),
            Settle::Fail(id, failure) => {
                let Some(e) = outbox.get_mut(id) else {
                    return Ok(0);
                };
                e.record(failure);
                outbox.failing.insert(id);
                Ok(1)
            }
            Settle::Revive(which, now) => {
                let mut revived = Vec::new();
                for e in outbox.iter_mut().filter(|e| which.selects(e)) {
                    e.revive(now);
                    revived.push(e.id);
                }
                for id in &revived {
                    outbox.failing.remove(id);
                }
                Ok(revived.len())
            }
        }
    }
}

#[async_trait]
impl Leader for MemoryQueue {
    /// One process owns this store: it always leads.
    async fn lead(&self, _holder: &str, _ttl: Duration, _now: Timestamp) -> Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_ids_keep_increasing_when_acknowledged_out_of_order() {
        let effect = |n: u64| state::Effect {
            task: format!("acme/widgets#{n}").parse().unwrap(),
            run: 1,
            attempt: 0,
            kind: state::EffectKind::Queued,
        };
        let ids = |o: &Outbox| o.iter().map(|e| e.id).collect::<Vec<_>>();
        let mut outbox = Outbox::default();
        outbox.extend(vec![effect(1), effect(2), effect(3)]);
        assert_eq!(outbox.remove(2).unwrap().effect, effect(2));
        assert!(outbox.remove(2).is_none(), "acknowledged once");
        assert_eq!(ids(&outbox), [1, 3]);
        outbox.remove(1);
        outbox.extend(vec![effect(4)]);
        assert_eq!(ids(&outbox), [3, 4]);
        outbox.get_mut(4).unwrap().failures += 1;
        assert_eq!(outbox.iter_mut().count(), 2);
        assert!(outbox.get_mut(1).is_none() && outbox.get_mut(9).is_none());
        outbox.remove(3);
        outbox.remove(4);
        assert_eq!(ids(&outbox), [] as [u64; 0]);
        outbox.extend(vec![effect(5)]);
        assert_eq!(ids(&outbox), [5]);
    }

    use crate::model::{LeaseKind, ReadyIssue};
    use crate::queue::WorkQueue;

    #[tokio::test]
    async fn a_claim_with_an_older_clock_reading_than_the_enqueue_takes_the_task() {
        let q = MemoryQueue::new(Policy::default());
        let issue = ReadyIssue {
            id: "acme/widgets#1".parse().unwrap(),
            title: "t".into(),
            body: String::new(),
            labels: vec![],
            created_at: Timestamp(0),
        };
        q.enqueue(issue, Timestamp(10)).await.unwrap();
        let w = WorkerId::new("w").unwrap();
        // A ready task waits for no time: a claimer whose clock read earlier
        // takes it rather than failing.
        let early = q.claim(&w, LeaseKind::Heartbeat, Timestamp(9)).await;
        assert!(matches!(early, Ok(Some(_))), "{early:?}");
    }
}
