//! The tracker effects a step records in its outbox.

use serde::{Deserialize, Serialize};

use super::NotifyEvent;
use crate::model::{TaskId, Timestamp, WorkerId};

/// A GitHub effect of a step, recorded in the same transaction as the step (the
/// outbox) and applied later by the dispatcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The task it is about.
    pub task: TaskId,
    /// The task's run.
    pub run: u32,
    /// The attempt it concerns (0 before the first claim).
    pub attempt: u32,
    /// What to write.
    pub kind: EffectKind,
}

/// What an [`Effect`] writes to GitHub (the label lifecycle is in `docs/github.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EffectKind {
    /// Add the in-progress label (and clear a previous run's outcome labels).
    Queued,
    /// An attempt failed and another will follow: an optional short note, no label.
    RetryScheduled {
        /// The redacted reason.
        reason: String,
        /// When the next attempt may start.
        next_attempt_at: Timestamp,
    },
    /// Remove ready and in-progress, add completed, comment with the PR link.
    Completed {
        /// The pull request.
        pr_url: Option<String>,
        /// Who did it.
        worker: WorkerId,
        /// Attempts spent.
        attempts: u32,
        /// From queueing to completion, in milliseconds.
        duration_ms: u64,
        /// The run's cost in US dollars (every attempt's), when known.
        cost_usd: Option<f64>,
        /// The run's model tokens, when known.
        #[serde(default)]
        tokens: Option<u64>,
        /// Times the review sent the work back, when the workflow had one.
        #[serde(default)]
        revisions: Option<u32>,
    },
    /// Remove ready and in-progress, add failed, comment with the reason.
    Failed {
        /// The redacted, length-capped reason.
        reason: String,
        /// Attempts spent.
        attempts: u32,
    },
    /// Remove in-progress.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The issue needs answers: comment with the questions, add needs-clarification,
    /// remove ready and in-progress.
    ClarificationRequested {
        /// The questions (redacted).
        questions: Vec<String>,
        /// Why (redacted).
        reasoning: String,
    },
    /// The text changed after its approval: comment asking a maintainer to review
    /// the edit and apply the ready label again. No label.
    ReviewRequested {
        /// Who edited it.
        editor: String,
        /// The edited text's digest (one comment per edit).
        digest: String,
    },
    /// The task is blocked by a dependency cycle or a blocker that cannot be read:
    /// comment saying so, once per problem. No label.
    DependencyProblem {
        /// What is wrong (a cycle's path, or which blocker could not be read).
        problem: String,
    },
    /// A new run answers a request for changes on the pull request: comment
    /// naming the reviewer and the pull request. No label (`Queued` before it
    /// writes them).
    ReworkRequested {
        /// Who asked for changes.
        reviewer: String,
        /// The pull request.
        pr_url: String,
    },
    /// Tell the notification targets (Slack, Discord, a webhook) of the step
    /// before it. Sent in the background to every configured target; never holds
    /// back the task's labels ([`super::notify`]).
    Notify {
        /// One target's name (`slack`, `discord`, `webhook`) on a notification
        /// recorded by releases that stored one per target; `None` (every target)
        /// on those recorded now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// What happened.
        event: NotifyEvent,
        /// The title.
        title: String,
        /// The pull request of a completion, or the reason of a failure.
        detail: Option<String>,
        /// Attempts spent.
        attempts: u32,
        /// The most attempts the run may spend.
        max_attempts: u32,
    },
}

impl EffectKind {
    /// A short name: `queued`, `retry_scheduled`, `completed`, `failed`, `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            EffectKind::Queued => "queued",
            EffectKind::RetryScheduled { .. } => "retry_scheduled",
            EffectKind::Completed { .. } => "completed",
            EffectKind::Failed { .. } => "failed",
            EffectKind::Cancelled { .. } => "cancelled",
            EffectKind::ReviewRequested { .. } => "review_requested",
            EffectKind::ClarificationRequested { .. } => "clarification_requested",
            EffectKind::DependencyProblem { .. } => "dependency_problem",
            EffectKind::ReworkRequested { .. } => "rework_requested",
            EffectKind::Notify { .. } => "notify",
        }
    }

    /// Whether this effect writes a terminal state's labels.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EffectKind::Completed { .. }
                | EffectKind::Failed { .. }
                | EffectKind::Cancelled { .. }
                | EffectKind::ClarificationRequested { .. }
        )
    }
}

impl Effect {
    /// The hidden marker a comment for this effect carries, so it is never posted
    /// twice: unique per task, run, attempt and event.
    pub fn marker(&self) -> String {
        let marker = format!(
            "scrum-orchestrator:{}:run-{}:attempt-{}:{}",
            self.task,
            self.run,
            self.attempt,
            self.kind.name()
        );
        match &self.kind {
            // One comment per edit, however many edits one attempt sees.
            EffectKind::ReviewRequested { digest, .. } => {
                let short = digest.strip_prefix("sha256:").unwrap_or(digest);
                format!("{marker}:{}", &short[..short.len().min(16)])
            }
            // One comment per problem.
            EffectKind::DependencyProblem { problem } => {
                let digest = crate::model::text_digest(problem, "");
                format!("{marker}:{}", &digest[7..23])
            }
            _ => marker,
        }
    }
}
