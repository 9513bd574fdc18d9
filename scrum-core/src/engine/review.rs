//! Review gating (see [`crate::review`]): the engine tracks the pull requests its
//! workers report (a completion's `pr_url`), reads their state on every poll (and
//! so on `pull_request` and `pull_request_review` webhooks, which start a poll),
//! and holds the repositories [`crate::review::gate`] says.
//!
//! What is tracked is derived from the store: the completed tasks of the last
//! [`TRACK_FOR`] and their `pr_url`, so a restarted orchestrator (or another one on
//! the same store) tracks the same pull requests, and reads their state from the
//! tracker again. An operator's word (`POST /pr-review/…`) is kept in this
//! process's memory until the tracker says the pull request was merged or closed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Orchestrator, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{RepoName, Task, TaskState};
use crate::queue::TaskFilter;
use crate::review::{PullState, ReviewGate, ReviewSettings, TrackedPull, gate, pull_from_url};

/// How long after its task completed a pull request is tracked.
pub const TRACK_FOR: Duration = Duration::from_secs(30 * 86_400);

/// How often the completed tasks are read from the store again (for pull requests
/// another orchestrator's workers reported); between two reads, only the tracked
/// pull requests still open are read from the tracker.
const RESCAN_EVERY: Duration = Duration::from_secs(600);

/// The tracked pull requests, by (repository, number).
#[derive(Debug, Default)]
pub(super) struct PullBook {
    pulls: BTreeMap<(String, u64), TrackedPull>,
    /// An operator's word on a pull request, until the tracker says it is over.
    overrides: BTreeMap<(String, u64), PullState>,
    /// When the completed tasks were last read from the store.
    scanned_at: Option<crate::model::Timestamp>,
}

impl PullBook {
    fn record(&mut self, pull: TrackedPull) {
        let key = (pull.repo.clone(), pull.number);
        if !pull.state.is_pending() {
            self.overrides.remove(&key);
        }
        self.pulls.insert(key, pull);
    }

    fn view(&self) -> Vec<TrackedPull> {
        self.pulls
            .iter()
            .map(|(key, p)| {
                let mut p = p.clone();
                if let Some(state) = self.overrides.get(key) {
                    p.state = *state;
                }
                p
            })
            .collect()
    }
}

/// What `GET /pr-review/status` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReviewStatus {
    /// The settings in force.
    pub settings: ReviewSettings,
    /// What they hold now.
    pub gate: ReviewGate,
    /// Every tracked pull request with its state.
    pub pulls: Vec<TrackedPull>,
}

/// The tracked pull request of a completed task, as it was reported.
fn reported(task: &Task) -> Option<TrackedPull> {
    let url = task.completion.as_ref()?.pr_url.clone()?;
    let (repo, number) = pull_from_url(&url)?;
    Some(TrackedPull {
        repo: repo.to_string(),
        number,
        url,
        task: task.id.clone(),
        state: PullState::Open,
    })
}

impl Orchestrator {
    /// The review settings in force.
    pub fn review_settings(&self) -> &ReviewSettings {
        &self.inner.config.review
    }

    /// What review gating holds now.
    pub fn review_gate(&self) -> ReviewGate {
        gate(&lock(&self.inner.pulls).view(), &self.inner.config.review)
    }

    /// The settings, the gate and every tracked pull request.
    pub fn review_status(&self) -> ReviewStatus {
        let pulls = lock(&self.inner.pulls).view();
        ReviewStatus {
            settings: self.inner.config.review.clone(),
            gate: gate(&pulls, &self.inner.config.review),
            pulls,
        }
    }

    /// Records an operator's word on pull request `number` (in `repo`, needed when
    /// several tracked repositories have that number): the gate counts it so until
    /// the tracker says it was merged or closed.
    pub fn mark_pull(
        &self,
        repo: Option<&str>,
        number: u64,
        state: PullState,
    ) -> Result<TrackedPull> {
        let mut book = lock(&self.inner.pulls);
        let mut found = book
            .pulls
            .keys()
            .filter(|(r, n)| *n == number && repo.is_none_or(|want| want.eq_ignore_ascii_case(r)))
            .cloned();
        let key = match (found.next(), found.next()) {
            (Some(k), None) => k,
            (Some(_), Some(_)) => {
                return Err(Error::invalid(format!(
                    "several tracked repositories have pull request #{number}; say which with `repository`"
                )));
            }
            (None, _) => {
                return Err(Error::not_found(format!(
                    "no tracked pull request #{number}{}",
                    repo.map(|r| format!(" in {r}")).unwrap_or_default()
                )));
            }
        };
        tracing::info!(repository = %key.0, pull = key.1, state = state.as_str(), "an operator set a pull request's review state");
        if state.is_pending() {
            book.overrides.insert(key.clone(), state);
        } else {
            book.overrides.remove(&key);
            if let Some(p) = book.pulls.get_mut(&key) {
                p.state = state;
            }
        }
        drop(book);
        self.inner.work_ready.notify_waiters();
        Ok(self
            .review_status()
            .pulls
            .into_iter()
            .find(|p| (p.repo.as_str(), p.number) == (key.0.as_str(), key.1))
            .expect("just recorded"))
    }

    /// Starts tracking the pull request a completion reported, as open, so the
    /// gate counts it before the next poll reads it.
    pub(super) fn track_completed(&self, task: &Task) {
        if let Some(pull) = reported(task) {
            let mut book = lock(&self.inner.pulls);
            let key = (pull.repo.clone(), pull.number);
            book.pulls.entry(key).or_insert(pull);
        }
    }

    /// Reads the state of every tracked pull request that may still be open (see
    /// the module docs). A pull request the tracker cannot read for a moment keeps
    /// its last state; one it does not have (or a tracker without pull requests)
    /// is not tracked.
    pub(super) async fn refresh_pulls(&self) -> Result<()> {
        let now = self.now();
        let since = now.0 - i64::try_from(TRACK_FOR.as_millis()).unwrap_or(i64::MAX);
        let rescan = lock(&self.inner.pulls)
            .scanned_at
            .is_none_or(|at| now >= at.plus(RESCAN_EVERY));
        let candidates: Vec<TrackedPull> = if rescan {
            let completed = self
                .inner
                .queue
                .list(&TaskFilter::states([TaskState::Completed]))
                .await?;
            lock(&self.inner.pulls).scanned_at = Some(now);
            completed
                .iter()
                .filter(|t| t.finished_at.is_some_and(|at| at.0 >= since))
                .filter_map(reported)
                .collect()
        } else {
            lock(&self.inner.pulls).pulls.values().cloned().collect()
        };
        let mut changed = false;
        for mut pull in candidates {
            let key = (pull.repo.clone(), pull.number);
            let known = lock(&self.inner.pulls).pulls.get(&key).map(|p| p.state);
            if known.is_some_and(|s| !s.is_pending()) {
                continue;
            }
            let repo: RepoName = pull.repo.parse()?;
            match self.inner.source.pull_state(&repo, pull.number).await {
                Ok(Some(state)) => {
                    changed |= known != Some(state);
                    pull.state = state;
                    lock(&self.inner.pulls).record(pull);
                }
                Ok(None) => {
                    lock(&self.inner.pulls).pulls.remove(&key);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::warn!(repository = %pull.repo, pull = pull.number, "the tracker has no such pull request: not tracked");
                    lock(&self.inner.pulls).pulls.remove(&key);
                }
                Err(e) => {
                    tracing::warn!(repository = %pull.repo, pull = pull.number, error = %e, "could not read a pull request's review state; its last one stands");
                }
            }
        }
        if changed {
            self.inner.work_ready.notify_waiters();
        }
        Ok(())
    }
}
