//! A task as releases before named states stored it (SQLite schema version 5 and
//! earlier, PostgreSQL and Redis rows written by them), and how it reads as a
//! [`Task`] now. Stores read a row as a [`Task`] first and, when that fails, as a
//! [`TaskV5`] ([`Task::from_v5`]); the SQLite store rewrites its rows on open.
//!
//! Those releases kept only a run's last lease: a task read from them has one
//! attempt record, the last, with the run's whole cost on it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::deps::Blocked;
use crate::follow_up::FollowUp;
use crate::model::{
    Approval, Attempt, Completion, EditReview, Holds, Lease, LeaseEnd, Outcome, ReadyIssue, Run,
    RunCause, Status, Stop, Task, TaskId, TaskState, Timestamp,
};
use crate::pull_gate::PullState;

/// The task of schema version 5, field for field (the SQLite store wrote it by
/// position, so the order is part of the format).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskV5 {
    pub id: TaskId,
    pub issue: Arc<ReadyIssue>,
    pub state: TaskState,
    pub run: u32,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default)]
    pub attempt_refunded: bool,
    pub lease: Option<Lease>,
    pub lease_end: Option<LeaseEnd>,
    pub not_before: Timestamp,
    #[serde(default)]
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub completion: Option<Completion>,
    pub enqueued_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub effects_written_at: Option<Timestamp>,
    #[serde(default)]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub review: Option<EditReview>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default)]
    pub blocked: Option<Blocked>,
    #[serde(default)]
    pub locks: Vec<String>,
    #[serde(default)]
    pub rework: Option<FollowUp>,
    #[serde(default)]
    pub pull_mark: Option<PullState>,
}

impl Task {
    /// The task a version-5 row stood for.
    pub fn from_v5(old: TaskV5) -> Task {
        let status = v5_status(&old);
        let attempts = v5_attempt(&old).into_iter().collect();
        Task {
            id: old.id,
            issue: old.issue,
            status,
            run: Run {
                number: old.run,
                cause: old.rework.map_or(RunCause::Ready, RunCause::FollowUp),
                max_attempts: old.max_attempts,
                attempts,
                queued_at: old.enqueued_at,
                finished_at: old.finished_at,
                written_at: old.effects_written_at,
            },
            approval: old.approval,
            locks: old.locks,
            updated_at: old.updated_at,
        }
    }
}

fn v5_status(old: &TaskV5) -> Status {
    let reason = || old.last_error.clone().unwrap_or_default();
    match old.state {
        TaskState::Pending if old.review.is_some() || old.blocked.is_some() => {
            Status::Held(Holds {
                review: old.review.clone(),
                blocked: old.blocked.clone(),
            })
        }
        TaskState::Pending if old.not_before > old.updated_at => {
            Status::Scheduled { at: old.not_before }
        }
        TaskState::Pending => Status::Ready,
        TaskState::InProgress => match &old.lease {
            Some(lease) => Status::Running {
                lease: lease.clone(),
                stop: if old.cancel_requested {
                    Some(Stop::Cancel { reason: reason() })
                } else {
                    old.review.clone().map(Stop::Review)
                },
            },
            None => Status::Ready,
        },
        TaskState::Completed => Status::Completed {
            completion: old.completion.clone().unwrap_or_default(),
            pull_mark: old.pull_mark,
            exhausted: None,
        },
        TaskState::Failed => Status::Failed { reason: reason() },
        TaskState::Cancelled => Status::Cancelled { reason: reason() },
        TaskState::Parked => Status::Parked,
    }
}

/// The one attempt a version-5 row knows of: its last lease.
fn v5_attempt(old: &TaskV5) -> Option<Attempt> {
    let lease = old.lease.as_ref()?;
    let outcome = old.lease_end.map(|end| {
        let handed_back = old.attempt_refunded || old.state == TaskState::Parked;
        match end {
            LeaseEnd::Released | LeaseEnd::Parked if handed_back => {
                if old.review.is_some() {
                    Outcome::Withdrawn { by: end }
                } else if end == LeaseEnd::Parked {
                    Outcome::Parked
                } else {
                    Outcome::Released
                }
            }
            _ if handed_back => Outcome::Withdrawn { by: end },
            _ if old.state == TaskState::Cancelled => Outcome::Cancelled { by: end },
            LeaseEnd::Completed => Outcome::Completed,
            LeaseEnd::Expired => Outcome::Lost,
            _ => Outcome::Failed,
        }
    });
    Some(Attempt {
        number: old.attempts.max(1),
        worker: lease.worker.clone(),
        token: lease.token,
        started_at: lease.claimed_at,
        ended_at: outcome.map(|_| old.finished_at.unwrap_or(old.updated_at)),
        outcome,
        error: old.last_error.clone(),
        cost_usd: old.cost_usd,
        tokens: old.tokens,
        lease: lease.kind,
    })
}
