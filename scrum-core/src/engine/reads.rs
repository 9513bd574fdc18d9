//! Reads for an operator's view of the fleet (the dashboard): tasks found by
//! repository and title, the outcomes of the last hour, one task's waiting effects.
//! Each is built on the queue's own reads ([`crate::WorkQueue::list`],
//! [`crate::WorkQueue::pending_effects`]), so every backend answers them unchanged.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Reads;
use crate::error::Result;
use crate::model::{Task, TaskId, TaskState, Timestamp};
use crate::queue::{OutboxEntry, TaskFilter};

/// The most waiting effects [`Reads::task_effects`] looks through.
const EFFECT_SCAN: usize = 10_000;

/// Which tasks [`Reads::find_tasks`] returns: the queue's filter, narrowed by
/// repository, by words of the title, and to blocked tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSearch {
    /// Only tasks in these states (all states when empty).
    pub states: Vec<TaskState>,
    /// Only tasks of this repository (`owner/name`).
    pub repository: Option<String>,
    /// Only tasks whose title contains this text, ignoring case (or whose id is it).
    pub text: Option<String>,
    /// Skip this many matching tasks (in id order).
    pub offset: usize,
    /// Return at most this many.
    pub limit: usize,
    /// Only tasks blocked by their dependencies ([`Task::blocked`]; pending ones).
    pub blocked: bool,
}

impl TaskSearch {
    fn narrows(&self) -> bool {
        self.repository.is_some() || self.text.is_some() || self.blocked
    }

    /// Whether `task` passes the repository and title conditions.
    pub fn matches(&self, task: &Task) -> bool {
        let repo = self
            .repository
            .as_deref()
            .is_none_or(|r| task.id.repo() == r);
        let text = self.text.as_deref().is_none_or(|t| {
            let t = t.to_lowercase();
            task.issue.title.to_lowercase().contains(&t)
                || task.id.to_string().eq_ignore_ascii_case(&t)
        });
        repo && text && (!self.blocked || task.blocked().is_some())
    }
}

/// One page of [`Reads::find_tasks`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPage {
    /// The tasks of the page, in id order.
    pub tasks: Vec<Task>,
    /// How many tasks match in all, when known without reading them all (it is
    /// when the search names a repository, a text or blocked tasks, or no state).
    pub total: Option<usize>,
}

/// Tasks that finished in a span of time, by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Tasks completed in the span.
    pub completed: u64,
    /// Tasks failed for good in the span.
    pub failed: u64,
}

impl Reads<'_> {
    /// One page of the tasks `search` names. Without a repository or text this is
    /// one read of the queue's page; with them the states' tasks are read and
    /// narrowed here, which every backend can answer.
    pub async fn find_tasks(self, search: &TaskSearch) -> Result<TaskPage> {
        let mut filter = TaskFilter::states(search.states.iter().copied());
        if !search.narrows() {
            filter.offset = search.offset;
            filter.limit = Some(search.limit);
            let tasks = self.inner.queue.list(&filter).await?;
            return Ok(TaskPage { tasks, total: None });
        }
        let mut all = self.inner.queue.list(&filter).await?;
        all.retain(|t| search.matches(t));
        let total = all.len();
        let tasks = all
            .into_iter()
            .skip(search.offset)
            .take(search.limit)
            .collect();
        Ok(TaskPage {
            tasks,
            total: Some(total),
        })
    }

    /// How many tasks completed and failed for good within `span` before now.
    pub async fn outcomes_within(self, span: Duration) -> Result<Outcomes> {
        let since = Timestamp(self.now().0.saturating_sub(span.as_millis() as i64));
        let done = self
            .inner
            .queue
            .list(&TaskFilter::states([
                TaskState::Completed,
                TaskState::Failed,
            ]))
            .await?;
        let mut out = Outcomes::default();
        for t in done.iter().filter(|t| t.finished_at() >= Some(since)) {
            match t.state() {
                TaskState::Completed => out.completed += 1,
                _ => out.failed += 1,
            }
        }
        Ok(out)
    }

    /// How many effects are not yet applied to the tracker (due, backing off or
    /// set aside), counting at most `limit`.
    pub async fn outbox_backlog(self, limit: usize) -> Result<usize> {
        Ok(self.inner.queue.pending_effects(limit).await?.len())
    }

    /// The effects of task `id` not yet applied to the tracker (due, backing off or
    /// set aside), oldest first. An effect that is not here has landed.
    pub async fn task_effects(self, id: &TaskId) -> Result<Vec<OutboxEntry>> {
        let mut waiting = self.inner.queue.pending_effects(EFFECT_SCAN).await?;
        waiting.retain(|e| &e.effect.task == id);
        Ok(waiting)
    }
}
