//! The GitHub poll: ready issues become tasks; tasks whose issue was closed or lost
//! its ready label are cancelled.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::Orchestrator;
use super::deps::Graph;
use super::trust::{Admitted, TrustMode};
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
    /// [`TrustMode`]).
    pub async fn enqueue(&self, issue: ReadyIssue) -> Result<Enqueued> {
        let result = self.inner.queue.enqueue(issue, self.now()).await?;
        if result != Enqueued::Unchanged {
            self.inner.work_ready.notify_waiters();
        }
        Ok(result)
    }

    /// Polls once: every ready issue is enqueued (a no-op for known ones); every live
    /// task not in the listing is checked and cancelled if its issue was closed or
    /// lost a ready label. A failed listing is an error and changes nothing: it is
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
        let mut report = PollReport {
            listed: listed.len(),
            ..PollReport::default()
        };
        let seen: HashSet<_> = listed.iter().map(|i| i.id.clone()).collect();
        let bodies = listed
            .iter()
            .map(|i| (i.id.clone(), i.body.clone()))
            .collect();
        let trust = self.inner.config.trust;
        for issue in listed {
            let admitted = if trust == TrustMode::Off {
                Admitted::Queued(self.inner.queue.enqueue(issue, observed_at).await?)
            } else {
                self.admit(issue, observed_at).await?
            };
            match admitted {
                Admitted::Queued(Enqueued::Created) => report.created += 1,
                Admitted::Queued(Enqueued::Requeued) => report.requeued += 1,
                Admitted::Queued(Enqueued::Unchanged) => {}
                Admitted::Refused => report.refused += 1,
                Admitted::Held => report.held += 1,
                Admitted::Approved => report.approved += 1,
            }
        }
        if report.created + report.requeued > 0 {
            tracing::info!(
                created = report.created,
                requeued = report.requeued,
                "queued ready issues"
            );
            self.inner.work_ready.notify_waiters();
        }
        let live = self.inner.queue.list(&TaskFilter::live()).await?;
        let unlisted: Vec<Task> = live
            .into_iter()
            .filter(|t| !seen.contains(&t.id) && !t.stop_requested())
            .collect();
        // A run an operator retried is not ready on the tracker until its `Queued`
        // effect puts the ready label back: until that lands, its missing label
        // is ours to write, not a person's removal.
        let relabelling: HashSet<TaskId> = if unlisted.is_empty() {
            HashSet::new()
        } else {
            self.inner
                .queue
                .pending_effects(RELABEL_SCAN)
                .await?
                .into_iter()
                .filter(|e| matches!(e.effect.kind, EffectKind::Queued) && e.effect.run > 1)
                .map(|e| e.effect.task)
                .collect()
        };
        for task in unlisted
            .into_iter()
            .filter(|t| !relabelling.contains(&t.id))
        {
            let reason = match self.inner.source.issue_state(&task.id).await {
                Ok(s) if !s.open => "issue closed",
                Ok(s) if !self.inner.config.labels.is_ready(&s.labels) => "ready label removed",
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => "issue deleted",
                Err(e) => return Err(e),
            };
            tracing::info!(task = %task.id, reason, "cancelling");
            if self
                .inner
                .queue
                .cancel(&task.id, reason.into(), self.now())
                .await?
                .is_some()
            {
                report.cancelled += 1;
            }
        }
        let checked = self.check_dependencies(&mut Graph::listed(bodies)).await?;
        report.blocked = checked.blocked;
        report.unblocked = checked.unblocked;
        if let Err(e) = self.refresh_pulls().await {
            tracing::warn!(error = %e, "could not read the tracked pull requests");
        }
        if let Err(e) = self.refresh_month_spend().await {
            tracing::warn!(error = %e, "could not read this month's spend");
        }
        Ok(report)
    }
}
