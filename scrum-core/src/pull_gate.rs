//! Pull-request review gating: the pull requests workers open wait for people to
//! review them, and too many waiting at once (or one with changes requested)
//! pauses dispatch, as the Python orchestrator's `MAX_PENDING_PRS` and
//! `BLOCK_ON_CHANGES_REQUESTED` did, but keyed by repository and pull-request
//! number rather than by issue number.
//!
//! Pure: [`pull_from_url`] reads a completion's `pr_url`, [`gate`] decides what is
//! held from the tracked pull requests' states.
//!
//! A pull request whose task is in a follow-up run ([`crate::follow_up`]) counts as
//! open; once a follow-up answering a request for changes completed, that request
//! no longer holds the repository (the reviewer's next review decides).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Person, RepoName, TaskId};

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

/// A reviewer's request for changes: the latest review that makes a pull request
/// read as changes requested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequest {
    /// The tracker's id of the review: one rework per review.
    pub id: String,
    /// Who asked, and whether they may approve work (only their text reaches an
    /// agent, as with an issue's text: see [`crate::engine::TrustMode`]).
    pub reviewer: Person,
    /// What they wrote (the review's body), as the tracker has it.
    pub body: String,
}

/// A pull request's review state with the request for changes behind it, when
/// there is one ([`crate::IssueSource::pull_review`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullReview {
    /// Its state.
    pub state: PullState,
    /// While changes are requested: the latest such review, when the tracker says.
    pub change_request: Option<ChangeRequest>,
}

/// Where a tracked pull request's follow-up stands, for the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpState {
    /// Its task is running again to answer a follow-up: the pull request counts
    /// as open, and not as changes requested (the run answers them).
    Running,
    /// The follow-up run completed: a request for changes it answered no longer
    /// holds the repository; the pull request still counts as awaiting review.
    Done,
    /// The follow-up rounds are used up (`FOLLOW_UP_ROUNDS`): left for people.
    Exhausted,
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
    /// Its follow-up, when one was sent back to an agent ([`crate::follow_up`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpState>,
}

impl TrackedPull {
    /// Whether the gate counts it as holding its repository for changes requested:
    /// not while a follow-up answers them, nor after one did.
    fn changes_requested(&self) -> bool {
        self.state == PullState::ChangesRequested
            && !matches!(
                self.follow_up,
                Some(FollowUpState::Running | FollowUpState::Done)
            )
    }
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
    /// Whether a request for changes, by a reviewer who may approve, on a completed
    /// task's pull request queues its issue again with the review as feedback
    /// (`REWORK_ON_CHANGES_REQUESTED`, default false).
    #[serde(default)]
    pub rework_on_changes_requested: bool,
}

impl Default for ReviewSettings {
    fn default() -> ReviewSettings {
        ReviewSettings {
            max_pending: 5,
            max_pending_total: None,
            block_on_changes_requested: true,
            rework_on_changes_requested: false,
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
/// (`https://github.com/owner/name/pull/12`, on any host), or of a GitLab merge
/// request (`https://gitlab.com/group/sub/project/-/merge_requests/5`, on any host:
/// `gitlab:group/sub/project`).
///
/// ```
/// use scrum_core::pull_gate::pull_from_url;
/// let (repo, n) = pull_from_url("https://github.com/acme/web/pull/12").unwrap();
/// assert_eq!((repo.as_str(), n), ("acme/web", 12));
/// assert!(pull_from_url("https://github.com/acme/web/issues/12").is_none());
/// let (repo, n) = pull_from_url("https://gitlab.example/g/sub/p/-/merge_requests/5").unwrap();
/// assert_eq!((repo.as_str(), n), ("gitlab:g/sub/p", 5));
/// ```
pub fn pull_from_url(url: &str) -> Option<(RepoName, u64)> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(dash) = seg.iter().position(|s| *s == "-") {
        if seg.get(dash + 1) == Some(&"merge_requests") {
            let number: u64 = seg.get(dash + 2)?.parse().ok().filter(|n| *n > 0)?;
            // The first segment is the host.
            let project = seg.get(1..dash)?.join("/");
            let repo: RepoName = format!("gitlab:{project}").parse().ok()?;
            return Some((repo, number));
        }
    }
    let at = seg.iter().rposition(|s| *s == "pull" || *s == "pulls")?;
    let number: u64 = seg.get(at + 1)?.parse().ok().filter(|n| *n > 0)?;
    let (owner, name) = (seg.get(at.checked_sub(2)?)?, seg.get(at - 1)?);
    let repo: RepoName = format!("{owner}/{name}").parse().ok()?;
    Some((repo, number))
}

/// What `settings` hold, given the tracked pull requests.
pub fn gate(pulls: &[TrackedPull], settings: &ReviewSettings) -> ReviewGate {
    let mut by_repo: BTreeMap<&str, Vec<&TrackedPull>> = BTreeMap::new();
    let counted = pulls.iter().filter(|p| p.state.is_pending());
    for p in counted {
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
            for p in open.iter().filter(|p| p.changes_requested()) {
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
            follow_up: None,
        }
    }

    #[test]
    fn a_pull_request_in_follow_up_counts_as_open_but_not_as_changes_requested() {
        let s = ReviewSettings {
            max_pending: 2,
            ..ReviewSettings::default()
        };
        let mut p = pull("a/b", 7, PullState::ChangesRequested);
        assert_eq!(gate(std::slice::from_ref(&p), &s).repos, ["a/b"]);
        for state in [FollowUpState::Running, FollowUpState::Done] {
            p.follow_up = Some(state);
            assert!(!gate(std::slice::from_ref(&p), &s).holds_anything());
            let q = pull("a/b", 8, PullState::Open);
            let g = gate(&[p.clone(), q], &s);
            assert_eq!(
                g.reason().unwrap(),
                "2 pull requests of a/b await review (MAX_PENDING_PRS=2)",
                "{state:?}: counted as open"
            );
        }
        p.follow_up = Some(FollowUpState::Exhausted);
        assert_eq!(gate(&[p], &s).repos, ["a/b"], "left for people: it holds");
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
