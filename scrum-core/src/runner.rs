//! [`WorkflowRunner`]: what a worker does with an assignment.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::model::{Assignment, Clarification, Completion, Failure};

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The work is done (usually with a pull request).
    Success(Completion),
    /// The attempt failed.
    Failure(Failure),
    /// The runner hands the task back without spending an attempt (needs
    /// clarification, out of credits, shutting down).
    Release(String),
    /// The issue needs a person's answers first: the questions go on the issue and
    /// the task is parked, spending no attempt.
    Clarify(Clarification),
}

/// What a worker does with an assignment: prepare an isolated workspace, run the AI
/// workflow, push, open the pull request.
///
/// # Contract
///
/// `run` stops promptly when `cancel` fires (the task was cancelled, the lease was
/// lost, or the worker is shutting down) and then returns `Release`. It never panics
/// on a failing workflow: failures are outcomes, classified retryable or not, with a
/// reason free of secrets.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WorkflowRunner: Send + Sync + 'static {
    /// Runs one attempt.
    ///
    /// # Behavior
    /// - A cancelled run returns `Release` promptly.
    async fn run(&self, assignment: &Assignment, cancel: CancellationToken) -> RunOutcome;
}
