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
        /// The pull request's rounds, this one last, when follow-ups ran on it
        /// ([`crate::follow_up`]); empty for the run that opened it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rounds: Vec<crate::follow_up::Round>,
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
    /// A follow-up run answers the pull request's cause ([`crate::follow_up`]):
    /// adds the fixing label, removes completed, and updates the completion's
    /// comment in place with the rounds. `rework_requested` in releases before
    /// follow-ups, which had only requests for changes.
    #[serde(alias = "rework_requested")]
    FollowUpRequested {
        /// Who asked (a reviewer, a commenter; `checks` or `forge`).
        #[serde(alias = "reviewer")]
        author: String,
        /// The pull request.
        pr_url: String,
        /// Why.
        #[serde(default)]
        cause: crate::follow_up::FollowUpCause,
        /// The pull request's rounds, this one last (running).
        #[serde(default)]
        rounds: Vec<crate::follow_up::Round>,
        /// The most follow-up rounds ([`super::Policy::follow_up_rounds`]).
        #[serde(default)]
        max_rounds: u32,
    },
    /// The follow-up rounds are used up: one comment says what is still wrong, and
    /// the pull request is left for people. No label.
    FollowUpsExhausted {
        /// The pull request.
        pr_url: String,
        /// What is still wrong.
        cause: crate::follow_up::FollowUpCause,
        /// Its feedback (redacted, capped).
        feedback: String,
        /// The rounds that ran.
        rounds: Vec<crate::follow_up::Round>,
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
            EffectKind::FollowUpRequested { .. } => "follow_up_requested",
            EffectKind::FollowUpsExhausted { .. } => "follow_ups_exhausted",
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
    /// twice: unique per task, run, attempt and event. A completion and the
    /// follow-ups of its pull request share one: the comment the run that opened
    /// the pull request posted, updated in place each round.
    pub fn marker(&self) -> String {
        let opened = match &self.kind {
            EffectKind::Completed {
                rounds,
                pr_url: Some(_),
                ..
            } => Some(rounds.first().map_or(self.run, |r| r.run)),
            EffectKind::FollowUpRequested { rounds, .. } => rounds.first().map(|r| r.run),
            _ => None,
        };
        if let Some(run) = opened {
            return format!("scrum-orchestrator:{}:run-{run}:pull", self.task);
        }
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
