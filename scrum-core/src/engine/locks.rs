//! Locks: a task that declares paths ([`crate::locks`]) waits while another task
//! in progress holds an overlapping lock. The store's claim passes such a task
//! over itself; this gate says why, for `/queue` ("waiting for a lock held by …")
//! and `/scaling`.

use async_trait::async_trait;

use super::Reads;
use super::gate::ClaimGate;
use crate::error::Result;
use crate::model::{Task, TaskId, TaskState, Timestamp};
use crate::queue::TaskFilter;

/// The lock gate (its state is the tasks' locks, in the store).
#[derive(Debug, Default)]
pub(crate) struct Locks;

impl Locks {
    /// The task among `live` (other than `task`) whose lock `task` waits for.
    fn holder<'a>(task: &Task, live: &'a [Task], now: Timestamp) -> Option<&'a TaskId> {
        if task.locks.is_empty() {
            return None;
        }
        let held = crate::locks::held_locks(live);
        let others = held.into_iter().filter(|(id, _, _)| **id != task.id);
        crate::locks::lock_holder(&task.locks, others, now)
    }
}

#[async_trait]
impl ClaimGate for Locks {
    fn name(&self) -> &'static str {
        "locks"
    }

    fn why(&self, task: &Task, live: &[Task], now: Timestamp) -> Option<String> {
        Locks::holder(task, live, now).map(|h| format!("waiting for a lock held by {h}"))
    }
}

impl Reads<'_> {
    /// For each of `tasks`, the in-progress task whose lock it waits for, if any
    /// ([`crate::locks`]): what `/queue` shows as "waiting for a lock held by …".
    pub async fn lock_holders(self, tasks: &[Task]) -> Result<Vec<Option<TaskId>>> {
        if tasks.iter().all(|t| t.locks.is_empty()) {
            return Ok(vec![None; tasks.len()]);
        }
        let held = self
            .inner
            .queue
            .list(&TaskFilter::states([TaskState::InProgress]))
            .await?;
        let now = self.now();
        Ok(tasks
            .iter()
            .map(|t| Locks::holder(t, &held, now).cloned())
            .collect())
    }
}
