//! What the SQL and Redis backends share beyond scrum-core's building blocks
//! ([`scrum_core::store`], [`scrum_core::backend`]): the indexed columns a task is
//! stored with, and JSON encoding.

use scrum_core::{Error, ErrorKind, QueueCounts, Result, Task, TaskState, Timestamp};

/// The columns a task is indexed by, besides its id.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) state: &'static str,
    /// Ready or Scheduled: a claim may take it once `not_before` passed.
    pub(crate) claimable: bool,
    pub(crate) priority: i16,
    pub(crate) created_at: i64,
    pub(crate) not_before: i64,
    /// While in progress: when the lease lapses.
    pub(crate) lease_expires_at: Option<i64>,
    /// While in progress: who holds it.
    pub(crate) holder: Option<String>,
}

impl Columns {
    pub(crate) fn of(task: &Task) -> Columns {
        let claimable_from = task.claimable_from();
        Columns {
            state: task.state().as_str(),
            claimable: claimable_from.is_some(),
            priority: i16::from(task.issue.priority().rank()),
            created_at: task.issue.created_at.0,
            not_before: claimable_from.unwrap_or(Timestamp::NEVER).0,
            lease_expires_at: task.lease().map(|l| l.expires_at.0),
            holder: task.holder().map(|w| w.as_str().to_string()),
        }
    }
}

/// A task or effect as stored JSON.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode a task").with_source(e))
}

/// A task or effect read back from stored JSON.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| unreadable(what, e))
}

/// The error for a stored `what` that does not decode.
fn unreadable(what: &str, e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("a stored {what} is unreadable (written by a newer version?)"),
    )
    .with_source(e)
}

/// A task read back from stored JSON: the current form, or the form releases
/// before named states wrote ([`scrum_core::model::TaskV5`]), which reads as the
/// task it stood for.
pub(crate) fn task_from_json(json: &str) -> Result<Task> {
    match serde_json::from_str::<Task>(json) {
        Ok(task) => Ok(task),
        Err(e) => match serde_json::from_str::<scrum_core::model::TaskV5>(json) {
            Ok(old) => Ok(Task::from_v5(old)),
            Err(_) => Err(unreadable("task", e)),
        },
    }
}

/// An issue number as the signed 64-bit integer databases store.
pub(crate) fn number_column(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::invalid(format!("issue number {n} is too large to store")))
}

/// Records that `n` tasks are in `state`.
pub(crate) fn set_count(counts: &mut QueueCounts, state: TaskState, n: i64) {
    let n = u64::try_from(n).unwrap_or(0);
    match state {
        TaskState::Pending => counts.pending = n,
        TaskState::InProgress => counts.in_progress = n,
        TaskState::Completed => counts.completed = n,
        TaskState::Failed => counts.failed = n,
        TaskState::Cancelled => counts.cancelled = n,
        TaskState::Parked => counts.parked = n,
    }
}
