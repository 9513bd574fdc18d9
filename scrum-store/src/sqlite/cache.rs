//! The live tasks of a SQLite store, kept in memory by the one process that owns the
//! file, so that a claim or a report reads nothing from disk and writes one
//! statement.

use std::collections::{BTreeSet, HashMap};

use scrum_core::{Task, TaskId, TaskState, Timestamp};

/// Pending and in-progress tasks with the indexes claims and the reaper walk.
///
/// It mirrors the file: it is changed only after the statement that stored the
/// same change succeeded, and it is dropped (to be rebuilt from the file) when a
/// write's outcome is unknown.
#[derive(Debug, Default)]
pub(super) struct Live {
    tasks: HashMap<TaskId, Task>,
    /// Pending tasks that may be claimed now, in claim order.
    ready: BTreeSet<(u8, Timestamp, TaskId)>,
    /// Pending tasks backing off, by the time they become claimable.
    delayed: BTreeSet<(Timestamp, TaskId)>,
    /// In-progress tasks by lease expiry.
    leases: BTreeSet<(Timestamp, TaskId)>,
}

impl Live {
    /// The live tasks `tasks` (terminal ones are skipped), indexed as of `now`.
    pub(super) fn build(tasks: impl IntoIterator<Item = Task>, now: Timestamp) -> Live {
        let mut live = Live::default();
        for task in tasks {
            live.put(task, now);
        }
        live
    }

    /// The live task `id`, if it is live.
    pub(super) fn get(&self, id: &TaskId) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// Records `task` as stored: replaces its old version and re-indexes it; a
    /// terminal task leaves the cache.
    pub(super) fn put(&mut self, task: Task, now: Timestamp) {
        if let Some(old) = self.tasks.remove(&task.id) {
            self.unindex(&old);
        }
        if task.state.is_terminal() {
            return;
        }
        self.index(&task, now);
        self.tasks.insert(task.id.clone(), task);
    }

    /// The first task a claim at `now` may take.
    pub(super) fn first_ready(&mut self, now: Timestamp) -> Option<&Task> {
        while let Some((at, _)) = self.delayed.first() {
            if *at > now {
                break;
            }
            let (_, id) = self.delayed.pop_first().expect("checked non-empty");
            if let Some(task) = self.tasks.get(&id) {
                self.ready.insert(task.order_key());
            }
        }
        let (_, _, id) = self.ready.first()?;
        self.tasks.get(id)
    }

    /// The ids of in-progress tasks whose lease lapsed by `now`, earliest first.
    pub(super) fn lapsed(&self, now: Timestamp) -> Vec<TaskId> {
        self.leases
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn index(&mut self, task: &Task, now: Timestamp) {
        match task.state {
            TaskState::Pending if !task.cancel_requested => {
                if task.not_before <= now {
                    self.ready.insert(task.order_key());
                } else {
                    self.delayed.insert((task.not_before, task.id.clone()));
                }
            }
            TaskState::InProgress => {
                if let Some(l) = &task.lease {
                    self.leases.insert((l.expires_at, task.id.clone()));
                }
            }
            _ => {}
        }
    }

    fn unindex(&mut self, task: &Task) {
        self.ready.remove(&task.order_key());
        self.delayed.remove(&(task.not_before, task.id.clone()));
        if let Some(l) = &task.lease {
            self.leases.remove(&(l.expires_at, task.id.clone()));
        }
    }
}
