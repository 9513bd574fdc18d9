//! [`LastWritten`]: the in-progress tasks this process wrote, with the version its
//! write gave them, so that a heartbeat or completion can skip reading the task back.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::state::{self, Ctx, Event, Step};
use scrum_core::{Result, Task, TaskId, TaskState};

use crate::logic::{MAX_RETRIES, contention};

/// At most this many tasks are remembered. Leases that end elsewhere (expired by
/// another orchestrator) are never taken back, so the map is emptied when it is
/// full instead of growing without bound; a forgotten task only costs one read.
const CAPACITY: usize = 4096;

/// A shared store whose task rows carry a version that every write changes.
#[async_trait]
pub(crate) trait VersionedRows: Send + Sync {
    /// The task `id` and its version.
    async fn load_versioned(&self, id: &TaskId) -> Result<Option<(Task, i64)>>;

    /// Stores `step`, decided from `old`, if the row is still at `version`; says
    /// whether it did.
    async fn write_if_at(&self, old: &Task, step: &Step, version: i64) -> Result<bool>;
}

/// The in-progress tasks as this process last wrote them, each with the version
/// its write produced.
///
/// A guess, never the truth: a backend decides on a remembered task only to save
/// the read before a compare-and-set write. The write succeeds only while the
/// stored version is still the remembered one, and every write changes the
/// version, so the stored task is then exactly the remembered one and the decision
/// is the one a fresh read would have given. Anything else (a lost race, a refused
/// or repeated event, which may be refused or repeated only on the stale copy)
/// falls back to reading the task.
#[derive(Debug, Default)]
pub(crate) struct LastWritten {
    tasks: Mutex<HashMap<TaskId, (Task, i64)>>,
}

impl LastWritten {
    /// Remembers `task` as written at `version`, if it is in progress (the tasks a
    /// worker is about to heartbeat or finish); forgets it otherwise.
    pub(crate) fn remember(&self, task: &Task, version: i64) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if task.state() != TaskState::InProgress {
            tasks.remove(&task.id);
            return;
        }
        if tasks.len() >= CAPACITY {
            tasks.clear();
        }
        tasks.insert(task.id.clone(), (task.clone(), version));
    }

    /// The task `id` and its version as last written here, forgotten until the next
    /// [`LastWritten::remember`].
    pub(crate) fn take(&self, id: &TaskId) -> Option<(Task, i64)> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.remove(id)
    }

    /// Applies `event` to the task `id` of `rows` with compare-and-set writes:
    /// starts from the task as this process last wrote it, if it did, and reads it
    /// only when that copy is missing or out of date. A lost race is retried on the
    /// new state.
    pub(crate) async fn apply(
        &self,
        rows: &(impl VersionedRows + ?Sized),
        id: &TaskId,
        event: Event,
        ctx: &Ctx<'_>,
    ) -> Result<Task> {
        let mut remembered = self.take(id);
        for _ in 0..MAX_RETRIES {
            let from_memory = remembered.is_some();
            let (task, version) = match remembered.take() {
                Some(known) => known,
                None => rows
                    .load_versioned(id)
                    .await?
                    .ok_or_else(|| scrum_core::queue::unknown_task(id))?,
            };
            let step = match state::transition(&task, event.clone(), ctx) {
                Ok(step) if !step.unchanged => step,
                // Refused or repeated on a copy that may be stale: ask the store.
                _ if from_memory => continue,
                Ok(step) => return Ok(step.task),
                Err(e) => return Err(e.into()),
            };
            if rows.write_if_at(&task, &step, version).await? {
                self.remember(&step.task, version + 1);
                return Ok(step.task);
            }
        }
        Err(contention(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrum_core::state::{self, Ctx, Event, Jitter, Policy};
    use scrum_core::{LeaseKind, LeaseToken, ReadyIssue, Timestamp, WorkerId};

    fn claimed(n: u64) -> Task {
        let issue = ReadyIssue {
            id: format!("a/b#{n}").parse().unwrap(),
            title: "t".into(),
            body: String::new(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(0),
        };
        let policy = Policy::default();
        let jitter = Jitter::fixed(0.5);
        let ctx = Ctx::sample(Timestamp(1), &policy, &jitter);
        let task = state::new_task(issue, Timestamp(1), &policy).task;
        let claim = Event::Claim {
            worker: WorkerId::new("w").unwrap(),
            token: LeaseToken::random(),
            lease: LeaseKind::Heartbeat,
        };
        state::transition(&task, claim, &ctx).unwrap().task
    }

    #[test]
    fn keeps_in_progress_tasks_until_taken() {
        let cache = LastWritten::default();
        let task = claimed(1);
        cache.remember(&task, 2);
        assert_eq!(cache.take(&task.id).map(|(_, v)| v), Some(2));
        assert!(cache.take(&task.id).is_none());
    }

    #[test]
    fn forgets_a_task_written_in_another_state() {
        let cache = LastWritten::default();
        let task = claimed(1);
        cache.remember(&task, 2);
        let mut done = task.clone();
        done.status = scrum_core::Status::Parked;
        cache.remember(&done, 3);
        assert!(cache.take(&task.id).is_none());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let cache = LastWritten::default();
        for n in 1..=CAPACITY as u64 + 1 {
            cache.remember(&claimed(n), 1);
        }
        let len = cache.tasks.lock().unwrap().len();
        assert!((1..=CAPACITY).contains(&len), "{len}");
    }
}
