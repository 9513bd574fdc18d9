//! The two handles beside the work API: [`Reads`] (what the dashboard, `/queue`,
//! `/health`, `/scaling` and the metrics show) and [`Operator`] (what an operator
//! does: pause, drain, retry, cancel, mark a pull request's review). Each borrows
//! the engine; get them with [`Orchestrator::reads`] and [`Orchestrator::operator`].

use super::{Inner, Orchestrator};
use crate::model::Timestamp;

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
