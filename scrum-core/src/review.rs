//! Pull-request review gating: the pull requests workers open wait for people to
//! review them, and too many waiting at once (or one with changes requested)
//! pauses dispatch, as the Python orchestrator's `MAX_PENDING_PRS` and
//! `BLOCK_ON_CHANGES_REQUESTED` did, but keyed by repository and pull-request
//! number rather than by issue number.
//!
//! Pure: [`pull_from_url`] reads a completion's `pr_url`, [`gate`] decides what is
//! held from the tracked pull requests' states.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{RepoName, TaskId};

/// A pull request's review state, as the tracker tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullState {
    /// Open, not yet reviewed (or only commented on).
    Open,
    /// Open and approved.
    Approved,
    /// Open, and a reviewer asked for changes.
    ChangesRequested,
    /// Merged.
    Merged,
    /// Closed without being merged.
    Closed,
}

impl PullState {
    /// Whether it still waits for people (open, in any review state).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            PullState::Open | PullState::Approved | PullState::ChangesRequested
        )
    }

    /// `open`, `approved`, `changes_requested`, `merged`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullState::Open => "open",
            PullState::Approved => "approved",
            PullState::ChangesRequested => "changes_requested",
            PullState::Merged => "merged",
            PullState::Closed => "closed",
        }
    }
}

/// A pull request a worker opened, with its last known state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedPull {
    /// `owner/name`.
    pub repo: String,
    /// Its number.
    pub number: u64,
    /// Its page, as the worker reported it.
    pub url: String,
    /// The task whose completion reported it.
    pub task: TaskId,
    /// Its state.
    pub state: PullState,
}

/// The settings of the gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSettings {
    /// Open pull requests per repository at which its tasks wait (`MAX_PENDING_PRS`,
    /// default 5; 0 turns the limit off).
    pub max_pending: usize,
    /// Open pull requests across all repositories at which every task waits
    /// (`MAX_PENDING_PRS_TOTAL`; none by default).
    pub max_pending_total: Option<usize>,
    /// Whether a pull request with changes requested holds its repository's tasks
    /// (`BLOCK_ON_CHANGES_REQUESTED`, default true).
    pub block_on_changes_requested: bool,
}

impl Default for ReviewSettings {
    fn default() -> ReviewSettings {
        ReviewSettings {
            max_pending: 5,
            max_pending_total: None,
            block_on_changes_requested: true,
        }
    }
}

/// What the gate holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewGate {
    /// Repositories whose tasks are not handed out.
    pub repos: Vec<String>,
    /// No task is handed out (the total limit is reached).
    pub all: bool,
    /// Why, for people, one line per reason.
    pub reasons: Vec<String>,
}

impl ReviewGate {
    /// Whether anything is held.
    pub fn holds_anything(&self) -> bool {
        self.all || !self.repos.is_empty()
    }

    /// The reasons in one line.
    pub fn reason(&self) -> Option<String> {
        (!self.reasons.is_empty()).then(|| self.reasons.join("; "))
    }
}

/// The repository and number of a pull request from its page's URL
/// (`https://github.com/owner/name/pull/12`, on any host).
///
/// ```
/// use scrum_core::review::pull_from_url;
/// let (repo, n) = pull_from_url("https://github.com/acme/web/pull/12").unwrap();
/// assert_eq!((repo.as_str(), n), ("acme/web", 12));
/// assert!(pull_from_url("https://github.com/acme/web/issues/12").is_none());
/// ```
pub fn pull_from_url(url: &str) -> Option<(RepoName, u64)> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = seg.iter().rposition(|s| *s == "pull" || *s == "pulls")?;
    let number: u64 = seg.get(at + 1)?.parse().ok().filter(|n| *n > 0)?;
    let (owner, name) = (seg.get(at.checked_sub(2)?)?, seg.get(at - 1)?);
    let repo: RepoName = format!("{owner}/{name}").parse().ok()?;
    Some((repo, number))
}

/// What `settings` hold, given the tracked pull requests.
pub fn gate(pulls: &[TrackedPull], settings: &ReviewSettings) -> ReviewGate {
    let mut by_repo: BTreeMap<&str, Vec<&TrackedPull>> = BTreeMap::new();
    for p in pulls.iter().filter(|p| p.state.is_pending()) {
        by_repo.entry(&p.repo).or_default().push(p);
    }
    let mut out = ReviewGate::default();
    let total: usize = by_repo.values().map(Vec::len).sum();
    if let Some(max) = settings.max_pending_total.filter(|m| *m > 0 && total >= *m) {
        out.all = true;
        out.reasons.push(format!(
            "{total} pull requests await review (MAX_PENDING_PRS_TOTAL={max})"
        ));
    }
    for (repo, open) in &by_repo {
        let max = settings.max_pending;
        let mut held = false;
        if max > 0 && open.len() >= max {
            held = true;
            out.reasons.push(format!(
                "{} pull requests of {repo} await review (MAX_PENDING_PRS={max})",
                open.len()
            ));
        }
        if settings.block_on_changes_requested {
            for p in open
                .iter()
                .filter(|p| p.state == PullState::ChangesRequested)
            {
                held = true;
                out.reasons.push(format!(
                    "pull request {repo}#{} has changes requested (BLOCK_ON_CHANGES_REQUESTED)",
                    p.number
                ));
            }
        }
        if held {
            out.repos.push(repo.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(repo: &str, number: u64, state: PullState) -> TrackedPull {
        TrackedPull {
            repo: repo.into(),
            number,
            url: format!("https://github.com/{repo}/pull/{number}"),
            task: TaskId::new(repo, number + 100).unwrap(),
            state,
        }
    }

    #[test]
    fn urls_on_any_host_name_the_pull_request() {
        let (r, n) = pull_from_url("http://127.0.0.1:9/acme/web/pull/3?x=1").unwrap();
        assert_eq!((r.as_str(), n), ("acme/web", 3));
        let (r, n) = pull_from_url("https://api.github.com/repos/acme/web/pulls/4").unwrap();
        assert_eq!((r.as_str(), n), ("acme/web", 4));
        for bad in [
            "",
            "https://github.com/pull/3",
            "https://github.com/acme/web/pull/0",
            "x/pull/y",
        ] {
            assert!(pull_from_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_repository_at_its_limit_is_held_and_merged_ones_do_not_count() {
        let s = ReviewSettings {
            max_pending: 2,
            ..ReviewSettings::default()
        };
        let pulls = [
            pull("a/b", 1, PullState::Open),
            pull("a/b", 2, PullState::Approved),
            pull("a/b", 3, PullState::Merged),
            pull("c/d", 1, PullState::Open),
            pull("c/d", 2, PullState::Closed),
        ];
        let g = gate(&pulls, &s);
        assert_eq!(g.repos, ["a/b"]);
        assert!(!g.all);
        assert_eq!(
            g.reason().unwrap(),
            "2 pull requests of a/b await review (MAX_PENDING_PRS=2)"
        );
        let off = ReviewSettings {
            max_pending: 0,
            ..s.clone()
        };
        assert!(!gate(&pulls, &off).holds_anything());
    }

    #[test]
    fn changes_requested_holds_its_repository_unless_told_not_to() {
        let pulls = [pull("a/b", 7, PullState::ChangesRequested)];
        let g = gate(&pulls, &ReviewSettings::default());
        assert_eq!(g.repos, ["a/b"]);
        assert!(g.reason().unwrap().contains("a/b#7 has changes requested"));
        let lenient = ReviewSettings {
            block_on_changes_requested: false,
            ..ReviewSettings::default()
        };
        assert!(!gate(&pulls, &lenient).holds_anything());
    }

    #[test]
    fn the_total_limit_holds_everything() {
        let s = ReviewSettings {
            max_pending_total: Some(2),
            ..ReviewSettings::default()
        };
        let pulls = [
            pull("a/b", 1, PullState::Open),
            pull("c/d", 1, PullState::Open),
        ];
        let g = gate(&pulls, &s);
        assert!(g.all && g.repos.is_empty());
        assert!(g.reason().unwrap().contains("MAX_PENDING_PRS_TOTAL=2"));
    }
}
