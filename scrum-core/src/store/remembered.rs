//! [`Remembered`]: the in-progress tasks this process wrote, with the version its
//! write gave them, so that a heartbeat or completion can skip reading the task back.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::{Task, TaskId, TaskState};

use super::{Version, Versioned};

/// At most this many tasks are remembered. Leases that end elsewhere (expired by
/// another orchestrator) are never taken back, so the map is emptied when it is
/// full instead of growing without bound; a forgotten task only costs one read.
const CAPACITY: usize = 4096;

/// The in-progress tasks as this process last wrote them, each with the version
/// its write produced: what a shared store ([`super::Store::remembered`]) keeps to
/// save the read before a heartbeat or a report.
///
/// A guess, never the truth: the shared code decides on a remembered task only to
/// save the read before a compare-and-set write. The write succeeds only while the
/// stored version is still the remembered one, so the stored task is then exactly
/// the remembered one and the decision is the one a fresh read would have given.
/// Anything else (a lost race, a refused or repeated event, which may be refused
/// or repeated only on the stale copy) falls back to reading the task.
#[derive(Debug, Default)]
pub struct Remembered {
    tasks: Mutex<HashMap<TaskId, Versioned>>,
}

impl Remembered {
    /// Remembers `task` as written at `version`, if it is in progress (the tasks a
    /// worker is about to heartbeat or finish); forgets it otherwise.
    pub fn remember(&self, task: &Task, version: Version) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if task.state() != TaskState::InProgress {
            tasks.remove(&task.id);
            return;
        }
        if tasks.len() >= CAPACITY {
            tasks.clear();
        }
        let task = task.clone();
        tasks.insert(task.id.clone(), Versioned { task, version });
    }

    /// The task `id` and its version as last written here, forgotten until the next
    /// [`Remembered::remember`].
    pub fn take(&self, id: &TaskId) -> Option<Versioned> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LeaseKind, LeaseToken, ReadyIssue, Timestamp, WorkerId};
    use crate::state::{self, Ctx, Event, Jitter, Policy};

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
        let cache = Remembered::default();
        let task = claimed(1);
        cache.remember(&task, 2);
        assert_eq!(cache.take(&task.id).map(|v| v.version), Some(2));
        assert!(cache.take(&task.id).is_none());
    }

    #[test]
    fn forgets_a_task_written_in_another_state() {
        let cache = Remembered::default();
        let task = claimed(1);
        cache.remember(&task, 2);
        let mut done = task.clone();
        done.status = crate::model::Status::Parked;
        cache.remember(&done, 3);
        assert!(cache.take(&task.id).is_none());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let cache = Remembered::default();
        for n in 1..=CAPACITY as u64 + 1 {
            cache.remember(&claimed(n), 1);
        }
        let len = cache.tasks.lock().unwrap().len();
        assert!((1..=CAPACITY).contains(&len), "{len}");
    }
}
