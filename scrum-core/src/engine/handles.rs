//! The two handles beside the work API: [`Reads`] (what the dashboard, `/queue`,
//! `/health`, `/scaling` and the metrics show) and [`Operator`] (what an operator
//! does: pause, drain, retry, cancel, mark a pull request's review). Each borrows
//! the engine; get them with [`Orchestrator::reads`] and [`Orchestrator::operator`].

use super::{EngineStatus, Inner, Orchestrator, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Task, TaskId, Timestamp};
use crate::queue::{QueueCounts, TaskFilter};

/// Reads of the queue, the fleet and the gates, for operators' views.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    pub(super) engine: &'a Orchestrator,
    pub(super) inner: &'a Inner,
}

/// Operator actions: pause, resume, drain, retry, cancel, revive effects, mark
/// pull requests.
#[derive(Clone, Copy)]
pub struct Operator<'a> {
    pub(super) engine: &'a Orchestrator,
    pub(super) inner: &'a Inner,
}

impl std::fmt::Debug for Reads<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reads").field(self.engine).finish()
    }
}

impl std::fmt::Debug for Operator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Operator").field(self.engine).finish()
    }
}

impl Orchestrator {
    /// Reads for operators' views (tasks, workers, gates, health).
    pub fn reads(&self) -> Reads<'_> {
        Reads {
            engine: self,
            inner: &self.inner,
        }
    }

    /// Operator actions (pause, drain, retry, cancel…).
    pub fn operator(&self) -> Operator<'_> {
        Operator {
            engine: self,
            inner: &self.inner,
        }
    }
}

impl Reads<'_> {
    /// The current time on the engine's clock.
    pub fn now(self) -> Timestamp {
        self.inner.clock.now()
    }
}

impl Operator<'_> {
    pub(super) fn now(self) -> Timestamp {
        self.inner.clock.now()
    }
}

impl Reads<'_> {
    /// The task of an issue, in any state; `NotFound` when there is none.
    pub async fn task(self, id: &TaskId) -> Result<Task> {
        self.inner.task(id).await
    }

    /// Tasks that pass `filter`, ordered by id.
    pub async fn tasks(self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.inner.queue.list(filter).await
    }

    /// How many tasks are in each state.
    pub async fn counts(self) -> Result<QueueCounts> {
        self.inner.queue.counts().await
    }

    /// The engine's own health.
    pub fn status(self) -> EngineStatus {
        let mut s = lock(&self.inner.status).clone();
        s.paused = self.inner.features.pause.is_paused();
        s
    }
}

impl Operator<'_> {
    /// Stops handing out work (workers asking get none); running tasks go on.
    pub fn pause(self) {
        self.inner.features.pause.set(self.inner, true);
    }

    /// Hands out work again.
    pub fn resume(self) {
        self.inner.features.pause.set(self.inner, false);
    }

    /// Starts a new run of a failed or cancelled task (an operator action).
    pub async fn retry(self, id: &TaskId) -> Result<Task> {
        let task = self.inner.queue.retry(id, self.now()).await?;
        self.inner.wake_for_one();
        Ok(task)
    }

    /// Cancels a task (an operator action): at once when pending; a holder is told on
    /// its next heartbeat. An unknown task fails with `NotFound`, a finished one with
    /// `InvalidTransition`.
    pub async fn cancel(self, id: &TaskId, reason: &str) -> Result<Task> {
        let q = &self.inner.queue;
        match q.cancel(id, reason.to_string(), self.now()).await? {
            Some(task) => Ok(task),
            None => {
                let task = self.engine.reads().task(id).await?;
                Err(Error::new(
                    ErrorKind::InvalidTransition,
                    format!("task {id} is already {}", task.state().as_str()),
                ))
            }
        }
    }
}
