//! The live tasks of a SQLite store, kept in memory by the one process that owns the
//! file, so that a claim or a report reads nothing from disk and writes one
//! statement.

use std::collections::HashMap;

use scrum_core::backend::LiveIndex;
use scrum_core::store::{Version, Versioned};
use scrum_core::{RepoHolds, Task, TaskFilter, TaskId, TaskState, Timestamp};

/// A task as stored, with its row's rowid (a write finds the row by it, one b-tree
/// descent by integer instead of two by repository name and number) and, while it
/// is live, its version (0: as the file has it).
#[derive(Clone, Debug)]
pub(super) struct Stored {
    pub(super) row: i64,
    pub(super) task: Task,
    pub(super) version: Version,
}

impl Stored {
    /// A task as read from its row.
    pub(super) fn new(row: i64, task: Task) -> Stored {
        Stored {
            row,
            task,
            version: 0,
        }
    }

    /// The task with its version.
    pub(super) fn versioned(&self) -> Versioned {
        Versioned {
            task: self.task.clone(),
            version: self.version,
        }
    }
}

/// Pending and in-progress tasks with the indexes claims and the reaper walk.
///
/// It mirrors the file: it is changed only after the statement that stored the
/// same change succeeded, and it is dropped (to be rebuilt from the file) when a
/// write's outcome is unknown.
#[derive(Debug, Default)]
pub(super) struct Live {
    tasks: HashMap<TaskId, Stored>,
    index: LiveIndex,
}

impl Live {
    /// The live tasks `tasks` (terminal ones are skipped), indexed as of `now`,
    /// each with a version `next` gives.
    pub(super) fn build(
        tasks: impl IntoIterator<Item = Stored>,
        now: Timestamp,
        mut next: impl FnMut() -> Version,
    ) -> Live {
        let mut live = Live::default();
        for mut task in tasks {
            task.version = next();
            live.put(task, now);
        }
        live
    }

    /// The live task `id`, if it is live.
    pub(super) fn get(&self, id: &TaskId) -> Option<&Stored> {
        self.tasks.get(id)
    }

    /// Records `task` as stored: replaces its old version and re-indexes it; a
    /// terminal task leaves the cache.
    pub(super) fn put(&mut self, stored: Stored, now: Timestamp) {
        if let Some(old) = self.tasks.remove(&stored.task.id) {
            self.index.remove(&old.task);
        }
        if stored.task.state().is_terminal() {
            return;
        }
        self.index.insert(&stored.task, now);
        self.tasks.insert(stored.task.id.clone(), stored);
    }

    /// Reserves the first task a claim at `now` may take
    /// ([`scrum_core::backend::admits`]) until `until`.
    pub(super) fn reserve(
        &mut self,
        now: Timestamp,
        until: Timestamp,
        hold: &RepoHolds,
    ) -> Option<&Stored> {
        let tasks = &self.tasks;
        let id = (self.index).reserve(now, until, hold, |id| tasks.get(id).map(|s| &s.task))?;
        self.tasks.get(&id)
    }

    /// Whether an in-progress task with a live lease at `now` holds a lock that
    /// overlaps `keys`.
    pub(super) fn locked(&self, keys: &[String], now: Timestamp) -> bool {
        self.index.lock_holder(keys, now).is_some()
    }

    /// The live tasks that pass `filter`, in id order, paged as it says.
    pub(super) fn matching(&self, filter: &TaskFilter) -> Vec<Task> {
        let mut tasks: Vec<&Task> = match filter.states.as_slice() {
            // The in-progress tasks (`/workers` asks) are the held ones of the index.
            [TaskState::InProgress] => self.index.held().map(|id| &self.tasks[id].task).collect(),
            _ => self.tasks.values().map(|s| &s.task).collect(),
        };
        tasks.retain(|t| filter.matches(t));
        tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let page = tasks.into_iter().skip(filter.offset);
        page.take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// The workers that hold a task.
    pub(super) fn holders(&self) -> Vec<String> {
        let holders = self.tasks.values().filter_map(|s| s.task.holder());
        holders.map(|w| w.as_str().to_string()).collect()
    }
}
