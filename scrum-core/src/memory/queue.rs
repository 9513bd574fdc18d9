//! [`MemoryQueue`]: the in-memory [`WorkQueue`], for tests, embedding and benchmarks.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{self, LiveIndex};
use crate::error::Result;
use crate::model::{
    LeaseKind, LeaseToken, ReadyIssue, Task, TaskId, TaskState, Timestamp, WorkerId,
};
use crate::queue::{
    Claimed, EffectFailure, EffectSelector, Enqueued, Hold, OutboxEntry, QueueCounts, TaskFilter,
    WorkQueue, unknown_task,
};
use crate::state::{self, Ctx, Event, Jitter, Policy, Step};

use super::workers::Registry;

/// A [`WorkQueue`] that keeps everything in memory: nothing survives the process.
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
    tasks: HashMap<TaskId, Task, BuildHasherDefault<FxHasher>>,
    /// Beside `tasks`, so that a step can replace a task in its map slot (one hash
    /// lookup) while the indexes change.
    index: Index,
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
            .lapsed(Timestamp(i64::MAX))
            .filter_map(|id| inner.tasks.get(id)?.holder().cloned())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied step: steps are
        // computed first and stored with plain inserts.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx::sample(now, &self.policy, &self.jitter)
    }
}

impl Inner {
    /// Stores a new task (one not in the map) and its effects.
    fn insert(&mut self, step: Step, now: Timestamp) {
        self.index.counts.moved(None, step.task.state());
        self.index.live.insert(&step.task, now);
        self.index.outbox.extend(step.effects);
        self.tasks.insert(step.task.id.clone(), step.task);
    }
}

impl Index {
    /// Stores a step of the task in `slot`: the task replaces it, the indexes and
    /// the outbox follow. Returns the stored task.
    fn replace(&mut self, slot: &mut Task, step: Step, now: Timestamp) -> Task {
        if step.unchanged {
            return step.task;
        }
        let old = std::mem::replace(slot, step.task);
        self.counts.moved(Some(old.state()), slot.state());
        self.live.remove(&old);
        self.live.insert(slot, now);
        self.outbox.extend(step.effects);
        slot.clone()
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
    fn extend(&mut self, effects: Vec<state::Effect>) {
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

#[async_trait]
impl WorkQueue for MemoryQueue {
    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.ctx(observed_at);
        let mut guard = self.lock();
        let Inner { tasks, index } = &mut *guard;
        let id = issue.id.clone();
        let slot = tasks.get_mut(&id);
        let (step, answer) = backend::enqueue_step(slot.as_deref(), issue, &ctx)?;
        match (step, slot) {
            (Some(step), Some(slot)) => drop(index.replace(slot, step, observed_at)),
            (Some(step), None) => guard.insert(step, observed_at),
            (None, _) => {}
        }
        Ok(answer)
    }

    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &Hold,
    ) -> Result<Option<Claimed>> {
        let ctx = self.ctx(now);
        let mut guard = self.lock();
        let Inner { tasks, index } = &mut *guard;
        index.live.promote_due(now);
        // A caller that read the clock before waiting for the lock can hold an older
        // `now` than a task enqueued meanwhile: that task is not claimable at this
        // `now` yet, so skip it instead of failing the claim.
        let Some(id) = index
            .live
            .ready()
            .find(|id| {
                !hold.holds(id)
                    && tasks.get(*id).is_some_and(|t| {
                        t.claimable_from().is_some_and(|at| at <= now)
                            && index.live.lock_holder(&t.locks, now).is_none()
                    })
            })
            .cloned()
        else {
            return Ok(None);
        };
        let slot = tasks.get_mut(&id).expect("found above");
        let event = Event::Claim {
            worker: worker.clone(),
            token: LeaseToken::random(),
            lease,
        };
        let step = state::transition(slot, event, &ctx)?;
        Ok(Some(index.replace(slot, step, now)))
    }

    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.ctx(now);
        let mut guard = self.lock();
        let Inner { tasks, index } = &mut *guard;
        let slot = tasks.get_mut(id).ok_or_else(|| unknown_task(id))?;
        let step = state::transition(slot, event, &ctx)?;
        Ok(index.replace(slot, step, now))
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let ctx = self.ctx(now);
        let mut guard = self.lock();
        let Inner { tasks, index } = &mut *guard;
        let mut expired = Vec::new();
        while let Some(id) = index.live.first_lapsed(now).cloned() {
            let slot = tasks.get_mut(&id).expect("indexed tasks exist");
            let step = state::transition(slot, Event::Expire, &ctx)?;
            expired.push(index.replace(slot, step, now));
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.lock().tasks.get(id).cloned())
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let inner = self.lock();
        let mut tasks: Vec<&Task> = match filter.states.as_slice() {
            // The in-progress tasks (`/workers` asks) are the held ones of the index.
            [TaskState::InProgress] => inner.index.live.held().map(|id| &inner.tasks[id]).collect(),
            _ => inner.tasks.values().collect(),
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

    async fn counts(&self) -> Result<QueueCounts> {
        Ok(self.lock().index.counts)
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .lock()
            .index
            .outbox
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let ctx = self.ctx(now);
        let mut guard = self.lock();
        let Inner { tasks, index } = &mut *guard;
        let Some(entry) = index.outbox.remove(id) else {
            return Ok(());
        };
        if let Some(slot) = tasks.get_mut(&entry.effect.task) {
            if let Some(step) = backend::ack_step(slot, &entry.effect, &ctx) {
                index.replace(slot, step, now);
            }
        }
        Ok(())
    }

    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(backend::due_effects(
            self.lock().index.outbox.iter(),
            now,
            limit,
        ))
    }

    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let inner = self.lock();
        let outbox = &inner.index.outbox;
        let failing = outbox.failing.iter().filter_map(|id| outbox.get(*id));
        Ok(failing.take(limit).cloned().collect())
    }

    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        let mut inner = self.lock();
        if let Some(e) = inner.index.outbox.get_mut(id) {
            e.record(failure);
            inner.index.outbox.failing.insert(id);
        }
        Ok(())
    }

    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize> {
        let mut inner = self.lock();
        let outbox = &mut inner.index.outbox;
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
