//! The GitHub poll: ready issues become tasks; tasks whose issue was closed or lost
//! its ready label are cancelled.

use std::collections::HashSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::step::{PollRound, PollStep};
use super::{Core, Orchestrator};
use crate::error::{ErrorKind, Result};
use crate::model::{ReadyIssue, Task, TaskId};
use crate::queue::{Enqueued, TaskFilter};
use crate::state::EffectKind;

/// The most waiting effects a poll looks through for runs being relabelled.
const RELABEL_SCAN: usize = 10_000;

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollReport {
    /// Ready issues listed.
    pub listed: usize,
    /// New tasks.
    pub created: usize,
    /// Terminal tasks queued again because the ready label was put back.
    pub requeued: usize,
    /// Tasks cancelled (or marked for cancellation) because their issue is no longer ready.
    pub cancelled: usize,
    /// Ready issues not queued: nobody who may approve applied the label.
    pub refused: usize,
    /// Tasks held (or still held) because their text changed after its approval.
    pub held: usize,
    /// Tasks whose changed text was approved, or whose hold was released.
    pub approved: usize,
    /// Pending tasks found blocked by dependencies (or blocked by something new).
    #[serde(default)]
    pub blocked: usize,
    /// Blocked tasks whose blockers are all closed now.
    #[serde(default)]
    pub unblocked: usize,
}

impl Orchestrator {
    /// Queues one ready issue now, without waiting for the next poll (a webhook said
    /// it is ready, or a tool queued it), and wakes workers waiting for work. The
    /// caller vouches for the issue's text: the task records no approval, and the
    /// next poll checks its ready label as it checks a new issue's (see
    /// [`super::TrustMode`]).
    pub async fn enqueue(&self, issue: ReadyIssue) -> Result<Enqueued> {
        let result = self.inner.queue.enqueue(issue, self.now()).await?;
        if result != Enqueued::Unchanged {
            self.inner.wake_for_one();
        }
        Ok(result)
    }

    /// Polls once: lists the ready issues, then runs every poll step over them
    /// (see the engine's poll steps): the trust rules queue them (a no-op for known ones),
    /// live tasks no longer listed are cancelled if their issue was closed or lost
    /// a ready label, then dependencies, pull-request reviews and this month's
    /// spend are read. A failed listing is an error and changes nothing: it is
    /// never read as "no issues".
    pub async fn poll_once(&self) -> Result<PollReport> {
        let observed_at = self.now();
        let listed = match self.inner.source.list_ready().await {
            Ok(l) => l,
            Err(e) => {
                self.update_status(|s| {
                    s.github_connected = false;
                    s.github_reason = Some(e.to_string());
                });
                return Err(e);
            }
        };
        self.update_status(|s| {
            s.github_connected = true;
            s.github_reason = None;
            s.last_poll = Some(observed_at);
        });
        let mut round = PollRound {
            report: PollReport {
                listed: listed.len(),
                ..PollReport::default()
            },
            listed,
            observed_at,
            again: false,
        };
        let steps = &self.inner.features.steps;
        steps.run(&self.inner.core, &mut round).await?;
        if round.again {
            self.inner.poll_requested.notify_one();
        }
        Ok(round.report)
    }
}

/// The poll's own step: a live task whose issue is no longer listed is cancelled
/// when its issue was closed, deleted, or lost its ready label.
#[derive(Debug, Default)]
pub(crate) struct Unlisted;

#[async_trait]
impl PollStep for Unlisted {
    async fn run(&self, core: &Core, round: &mut PollRound) -> Result<()> {
        let seen: HashSet<&TaskId> = round.listed.iter().map(|i| &i.id).collect();
        let live = core.queue.list(&TaskFilter::live()).await?;
        let unlisted: Vec<Task> = live
            .into_iter()
            .filter(|t| !seen.contains(&t.id) && !t.stop_requested())
            .collect();
        let relabelling = relabelling(core, &unlisted).await?;
        for task in unlisted
            .into_iter()
            .filter(|t| !relabelling.contains(&t.id))
        {
            let reason = match core.source.issue_state(&task.id).await {
                Ok(s) if !s.open => "issue closed",
                Ok(s) if !core.config.labels.is_ready(&s.labels) => "ready label removed",
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => "issue deleted",
                Err(e) => return Err(e),
            };
            tracing::info!(task = %task.id, reason, "cancelling");
            if core
                .queue
                .cancel(&task.id, reason.into(), core.now())
                .await?
                .is_some()
            {
                round.report.cancelled += 1;
            }
        }
        Ok(())
    }
}

/// A run an operator retried is not ready on the tracker until its `Queued`
/// effect puts the ready label back: until that lands, its missing label is ours
/// to write, not a person's removal. The tasks among `unlisted` in that case.
async fn relabelling(core: &Core, unlisted: &[Task]) -> Result<HashSet<TaskId>> {
    if unlisted.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(core
        .queue
        .pending_effects(RELABEL_SCAN)
        .await?
        .into_iter()
        .filter(|e| matches!(e.effect.kind, EffectKind::Queued) && e.effect.run > 1)
        .map(|e| e.effect.task)
        .collect())
}
