//! [`IssueSource`]: where work comes from and where outcomes go.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ReadyIssue, TaskId};

/// The label names of the lifecycle (the README's "A task's life"). Configurable; the
/// defaults are those of the Python orchestrator this project replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// An issue carrying every one of these is ready.
    pub ready: Vec<String>,
    /// Added when queued.
    pub in_progress: String,
    /// Added when completed.
    pub completed: String,
    /// Added when failed for good.
    pub failed: String,
}

impl Default for Labels {
    fn default() -> Labels {
        Labels {
            ready: vec!["ai-ready".into()],
            in_progress: "ai-in-progress".into(),
            completed: "ai-completed".into(),
            failed: "ai-failed".into(),
        }
    }
}

impl Labels {
    /// Whether `labels` include every ready label (case-insensitive, as GitHub matches).
    pub fn is_ready<S: AsRef<str>>(&self, labels: &[S]) -> bool {
        self.ready
            .iter()
            .all(|r| labels.iter().any(|l| l.as_ref().eq_ignore_ascii_case(r)))
    }
}

/// An issue's current state, for reconciling a running task with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    /// Whether the issue is open.
    pub open: bool,
    /// Its labels.
    pub labels: Vec<String>,
}

/// Whether a comment was posted or was already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Commented {
    /// Posted now.
    Posted,
    /// A comment with the same marker already existed; nothing was posted.
    AlreadyPresent,
}

/// Where ready issues come from and where outcomes are written.
///
/// # Contract
///
/// Errors are never read as "no issues": a listing either returns every ready issue
/// or fails. Rate limits fail with `RateLimited` and a `retry_after`. Writes are
/// idempotent so the outbox dispatcher can retry them after a crash.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IssueSource: Send + Sync + 'static {
    /// Every open issue that carries all ready labels, in every configured repository.
    ///
    /// # Behavior
    /// - Pull requests are left out; every page is read.
    /// - A failure is an error, never an empty list.
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>>;

    /// One issue's current state.
    ///
    /// # Behavior
    /// - An unknown issue fails with `NotFound`.
    async fn issue_state(&self, id: &TaskId) -> Result<IssueState>;

    /// Adds labels (creating a missing label once).
    ///
    /// # Behavior
    /// - Adding a label the issue has is fine and changes nothing.
    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()>;

    /// Removes a label.
    ///
    /// # Behavior
    /// - Removing a label the issue does not have is fine.
    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()>;

    /// Posts `body` with the hidden `marker`, unless a comment with that marker exists.
    ///
    /// # Behavior
    /// - Posting the same marker twice posts once.
    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented>;
}
