//! The pull requests the gate tracks, with the operators' word on them.

use std::collections::BTreeMap;

use crate::follow_up::FollowUp;
use crate::model::Task;
use crate::pull_gate::{PullState, TrackedPull, pull_from_url};

/// The tracked pull requests, by (repository, number).
#[derive(Debug, Default)]
pub(super) struct PullBook {
    pub(super) pulls: BTreeMap<(String, u64), TrackedPull>,
    /// An operator's word on a pull request, until the tracker says it is over.
    pub(super) overrides: BTreeMap<(String, u64), PullState>,
    /// When the completed tasks were last read from the store.
    pub(super) scanned_at: Option<crate::model::Timestamp>,
}

impl PullBook {
    pub(super) fn record(&mut self, pull: TrackedPull) {
        let key = (pull.repo.clone(), pull.number);
        if !pull.state.is_pending() {
            self.overrides.remove(&key);
        }
        self.pulls.insert(key, pull);
    }

    /// Takes up the operator's word recorded on a completed task
    /// (`Task::pull_mark`), unless the tracker said since that its pull request was
    /// merged or closed: a pending state counts as an override, merged or closed
    /// as the pull request's state.
    pub(super) fn recall_mark(&mut self, task: &Task) {
        let (Some(state), Some(pull)) = (task.pull_mark(), reported(task)) else {
            return;
        };
        let key = (pull.repo.clone(), pull.number);
        if self.pulls.get(&key).is_some_and(|p| !p.state.is_pending()) {
            return;
        }
        self.take_word(pull, state);
    }

    /// Counts an operator's word `state` on `pull`: a pending state overrides what
    /// the tracker says, merged or closed becomes the pull request's state.
    pub(super) fn take_word(&mut self, mut pull: TrackedPull, state: PullState) {
        if state.is_pending() {
            self.overrides.insert((pull.repo, pull.number), state);
        } else {
            pull.state = state;
            self.record(pull);
        }
    }

    pub(super) fn view(&self) -> Vec<TrackedPull> {
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

/// The tracked pull request of a completed task, as it was reported.
pub(super) fn reported(task: &Task) -> Option<TrackedPull> {
    let url = task.completion()?.pr_url.clone()?;
    let (repo, number) = pull_from_url(&url)?;
    Some(TrackedPull {
        repo: repo.to_string(),
        number,
        url,
        task: task.id.clone(),
        state: PullState::Open,
        follow_up: None,
    })
}

/// Whether `url` is the page of `pull`.
pub(super) fn names(url: &str, pull: &TrackedPull) -> bool {
    pull_from_url(url)
        .is_some_and(|(repo, n)| n == pull.number && repo.as_str().eq_ignore_ascii_case(&pull.repo))
}

/// The task's follow-up, when it is one of `pull`.
pub(super) fn follow_up_on<'a>(task: &'a Task, pull: &TrackedPull) -> Option<&'a FollowUp> {
    task.follow_up().filter(|f| names(&f.pr_url, pull))
}
