//! [`IssueSource`]: where work comes from and where outcomes go.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Person, ReadyIssue, TaskId};

/// The label names of the lifecycle (`docs/github.md`, "Labels and comments").
/// Configurable; the defaults are those of the Python orchestrator this project
/// replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// An issue carrying every one of these is ready.
    pub ready: Vec<String>,
    /// Added when queued.
    pub in_progress: String,
    /// Added when completed.
    pub completed: String,
    /// Added when failed for good.
    pub failed: String,
    /// Added when the task is parked for clarification (its questions posted); an
    /// issue carrying it is not ready, whatever else it carries, until a person
    /// removes it.
    #[serde(default = "needs_clarification")]
    pub needs_clarification: String,
    /// Added while a follow-up run works on the completed task's pull request
    /// (a failed check, a conflict, a comment: [`crate::follow_up`]).
    #[serde(default = "fixing")]
    pub fixing: String,
}

fn fixing() -> String {
    "ai-fixing".into()
}

fn needs_clarification() -> String {
    "needs-clarification".into()
}

impl Default for Labels {
    fn default() -> Labels {
        Labels {
            ready: vec!["ai-ready".into()],
            in_progress: "ai-in-progress".into(),
            completed: "ai-completed".into(),
            failed: "ai-failed".into(),
            needs_clarification: needs_clarification(),
            fixing: fixing(),
        }
    }
}

impl Labels {
    /// Whether `labels` include every ready label (case-insensitive, as GitHub
    /// matches) and not the needs-clarification label.
    pub fn is_ready<S: AsRef<str>>(&self, labels: &[S]) -> bool {
        let has = |want: &str| labels.iter().any(|l| l.as_ref().eq_ignore_ascii_case(want));
        self.ready.iter().all(|r| has(r)) && !has(&self.needs_clarification)
    }
}

/// An issue's current state, for reconciling a running task with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    /// Whether the issue is open.
    pub open: bool,
    /// Its labels.
    pub labels: Vec<String>,
    /// The [`crate::model::text_digest`] of its title and body, when the tracker
    /// read them: a claim compares it with the approved text's (see
    /// [`crate::engine::TrustMode`]). `None` skips that check.
    #[serde(default)]
    pub digest: Option<String>,
}

/// Who vouches for one issue's text, as [`IssueSource::provenance`] reads it for
/// the trust rules: the three answers of [`IssueSource::labelled_by`],
/// [`IssueSource::edited_by`] and [`IssueSource::opened_by`] in one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Who last applied a ready label.
    pub labelled_by: Person,
    /// Who last edited the title or body, if anyone did since it was opened.
    pub edited_by: Option<Person>,
    /// Who opened it, when it was asked for.
    pub opened_by: Option<Person>,
    /// Whether the issue is still open and ready as read now (it may have been
    /// closed or unlabelled since it was listed); `true` when the tracker does not
    /// say.
    pub still_ready: bool,
}

/// [`IssueSource::provenance`] of one issue, from the three methods.
async fn provenance_one<S: IssueSource + ?Sized>(
    src: &S,
    id: &TaskId,
    author: bool,
) -> Result<Provenance> {
    Ok(Provenance {
        still_ready: true,
        labelled_by: src.labelled_by(id).await?,
        edited_by: src.edited_by(id).await?,
        opened_by: match author {
            true => Some(src.opened_by(id).await?),
            false => None,
        },
    })
}

/// Whether a comment was posted or was already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Commented {
    /// Posted now.
    Posted,
    /// A comment with the same marker already existed; nothing was posted.
    AlreadyPresent,
    /// A comment with the same marker existed and now has the new body
    /// ([`IssueSource::upsert_comment`]).
    Updated,
}

/// Where ready issues come from and where outcomes are written.
///
/// # Contract
///
/// Errors are never read as "no issues": a listing either returns every ready issue
/// or fails. Rate limits fail with `RateLimited` and a `retry_after`. Writes are
/// idempotent so the outbox dispatcher can retry them after a crash.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IssueSource: Send + Sync + 'static {
    /// Every open issue that carries all ready labels, in every configured repository.
    ///
    /// # Behavior
    /// - Every open issue carrying all ready labels is listed, from every configured
    ///   repository, with its title, labels and creation time; closed issues and
    ///   issues missing a ready label are left out. The order is unspecified.
    /// - Ready labels match whatever their case (`AI-Ready` is `ai-ready`).
    /// - Pull requests are left out.
    /// - Every page is read: a backlog larger than one page is listed whole.
    /// - A failure is an error, never an empty or partial list: when one repository
    ///   cannot be read, the whole listing fails.
    /// - Issues are listed as they are now: one closed, relabelled or opened since
    ///   the last listing shows the change.
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>>;

    /// One issue's current state.
    ///
    /// # Behavior
    /// - An open issue reads as open with its labels, a closed one as closed.
    /// - When a digest is given, it is the digest of the title and body as they
    ///   are now.
    /// - The issue is read as it is now, with changes made since the last read.
    /// - An unknown issue fails with `NotFound`.
    async fn issue_state(&self, id: &TaskId) -> Result<IssueState>;

    /// Adds labels (creating a missing label once).
    ///
    /// # Behavior
    /// - The labels are added and the issue's other labels kept, also for a label
    ///   no issue of the repository had before.
    /// - Adding a label the issue has, in any case, is fine and changes nothing.
    /// - Labels with spaces or punctuation (`needs review`, `c++`, `area/api`) are
    ///   added like any other.
    /// - An unknown issue fails with `NotFound`.
    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()>;

    /// Removes a label.
    ///
    /// # Behavior
    /// - The label is removed whatever its case; the other labels are kept.
    /// - Removing a label the issue does not have (or that no issue has) is fine.
    /// - A label with spaces or punctuation (`needs review`, `c++`, `area/api`) is
    ///   removed like any other.
    /// - An unknown issue fails with `NotFound`.
    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()>;

    /// Adds `add` and removes `remove` in one change where the tracker allows it:
    /// the outbox writes each transition's labels with it, so a task costs as few
    /// writes as it can. By default, [`IssueSource::add_labels`] then
    /// [`IssueSource::remove_label`] for each.
    ///
    /// # Behavior
    /// - Afterwards the issue carries every label of `add` and none of `remove`
    ///   (whatever their case), and keeps its other labels.
    /// - When the issue already carries them so, nothing changes.
    /// - An unknown issue fails with `NotFound`.
    async fn set_labels(&self, id: &TaskId, add: &[String], remove: &[String]) -> Result<()> {
        if !add.is_empty() {
            self.add_labels(id, add).await?;
        }
        for label in remove {
            self.remove_label(id, label).await?;
        }
        Ok(())
    }

    /// Posts `body` with the hidden `marker`, unless a comment with that marker exists.
    ///
    /// # Behavior
    /// - The body is posted as one comment, and `Posted` is returned.
    /// - Posting the same marker twice posts once: the second call answers
    ///   `AlreadyPresent`.
    /// - Comments with different markers are all posted, also when one marker is the
    ///   start of another (`run-1`, `run-10`).
    /// - A marker is found however many comments the issue has.
    /// - An unknown issue fails with `NotFound`.
    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented>;

    /// Who last applied a ready label to the issue, when, and whether they may
    /// approve work for an agent (on GitHub: write, maintain or admin permission,
    /// or a GitHub App). The engine asks when it is about to queue an issue, and
    /// while a task is held for review. By default the tracker vouches for every
    /// issue ([`Person::tracker`]): a tracker without people or permissions is
    /// trusted whole.
    ///
    /// # Behavior
    /// - An issue labelled ready by a person who may approve names them, with
    ///   `may_approve`; one labelled by a person who may not names them without it.
    /// - When the label was applied more than once, the last application counts.
    /// - An unknown issue fails with `NotFound`.
    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        let _ = id;
        Ok(Person::tracker())
    }

    /// Who last edited the issue's title or body, when, and whether they may
    /// approve; `None` when it was not edited since it was opened (or the tracker
    /// does not say, and so vouches for the text). The engine asks when it queues an
    /// issue and when the text differs from the approved one. By default `None`.
    ///
    /// # Behavior
    /// - An issue never edited answers `None`.
    /// - After an edit by a person who may approve, names them with `may_approve`;
    ///   after a later edit by one who may not, names that one without it.
    /// - An unknown issue fails with `NotFound`.
    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        let _ = id;
        Ok(None)
    }

    /// Who opened the issue, and whether they may approve (`TRUST_MODE=author`
    /// queues only issues whose author may). By default the tracker vouches.
    ///
    /// # Behavior
    /// - Names the issue's author, with `may_approve` as their permission says.
    /// - An unknown issue fails with `NotFound`.
    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        let _ = id;
        Ok(Person::tracker())
    }

    /// What the trust rules need of each of `ids` (see [`Provenance`]), in as few
    /// requests as the tracker allows: the engine asks once per poll for the new
    /// issues it is about to queue. `opened_by` is read only when `author` is set
    /// (`TRUST_MODE=author`). By default, [`IssueSource::labelled_by`],
    /// [`IssueSource::edited_by`] and (with `author`) [`IssueSource::opened_by`]
    /// of each issue in turn.
    ///
    /// # Behavior
    /// - One answer per id, in the order given, each as the three methods answer
    ///   for that issue.
    /// - An unknown issue's answer is `NotFound`; the other issues are answered.
    /// - A failure to read one issue is that issue's answer; a failure of the
    ///   tracker as a whole (a rate limit, an outage) may fail the call instead.
    async fn provenance(&self, ids: &[TaskId], author: bool) -> Result<Vec<Result<Provenance>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(provenance_one(self, id, author).await);
        }
        Ok(out)
    }

    /// The issues the tracker itself records as blocking this one, open or closed
    /// (on GitHub: its issue dependencies, asked for only when the issue's
    /// `issue_dependencies_summary` counts open blockers). The engine adds those its
    /// body names ([`crate::deps::parse_blockers`]) and reads each one's state with
    /// [`IssueSource::issue_state`]. By default none: a tracker without
    /// dependencies of its own has only the body's.
    ///
    /// # Behavior
    /// - An issue with no recorded blockers answers an empty list.
    /// - Recorded blockers are named, also those in another repository, and a new
    ///   one shows at the next call.
    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        let _ = id;
        Ok(Vec::new())
    }

    /// The review state of pull request `number` of `repo` (open, approved, changes
    /// requested, merged, closed), for review gating ([`crate::pull_gate`]); `None`
    /// from a tracker without pull requests (the default), whose completions are
    /// then never gated.
    ///
    /// # Behavior
    /// - An open pull request reads as open; with a reviewer's latest review asking
    ///   for changes as changes requested, else approved once approved; merged and
    ///   closed ones as such.
    /// - An unknown pull request fails with `NotFound`.
    async fn pull_state(
        &self,
        repo: &crate::model::RepoName,
        number: u64,
    ) -> Result<Option<crate::pull_gate::PullState>> {
        let _ = (repo, number);
        Ok(None)
    }

    /// As [`IssueSource::pull_state`], with the request for changes behind a
    /// changes-requested state: the latest such review's id, author (and whether
    /// they may approve) and text, for follow-ups on changes requested
    /// ([`crate::follow_up`]). By default the state alone, with no request.
    ///
    /// # Behavior
    /// - Reads as [`IssueSource::pull_state`] does.
    /// - While changes are requested, names the latest review asking for them;
    ///   a later one (a new id) replaces it.
    /// - An unknown pull request fails with `NotFound`.
    async fn pull_review(
        &self,
        repo: &crate::model::RepoName,
        number: u64,
    ) -> Result<Option<crate::pull_gate::PullReview>> {
        let state = self.pull_state(repo, number).await?;
        Ok(state.map(|state| crate::pull_gate::PullReview {
            state,
            change_request: None,
        }))
    }

    /// What follow-ups need of pull request `number` of `repo` ([`crate::follow_up`]):
    /// its review state with the latest request for changes, its head commit,
    /// whether it can merge, the checks of its head commit that count (`checks`
    /// names them; empty: the base branch's required checks where the token can
    /// read branch protection, else every check), each failed one with its
    /// annotations and the tail of its job's log, and the comments on it that start
    /// with `/agent`, each with its author's permission. `None` from a tracker
    /// without pull requests. By default [`IssueSource::pull_review`] alone: no
    /// checks, no comments, mergeability unknown.
    ///
    /// # Behavior
    /// - Reads the review state as [`IssueSource::pull_review`] does.
    /// - A check still running reads as pending, none at all as none.
    /// - An unknown pull request fails with `NotFound`.
    async fn pull_status(
        &self,
        repo: &crate::model::RepoName,
        number: u64,
        checks: &[String],
    ) -> Result<Option<crate::follow_up::PullStatus>> {
        let _ = checks;
        let review = self.pull_review(repo, number).await?;
        Ok(review.map(crate::follow_up::PullStatus::of_review))
    }

    /// Posts `body` with the hidden `marker` or, when a comment with that marker
    /// exists, replaces that comment's body with it: one comment that follows a
    /// pull request through its follow-up rounds. By default
    /// [`IssueSource::comment`] (a tracker that cannot edit keeps the first body).
    ///
    /// # Behavior
    /// - The first call posts (`Posted`); a later one with the same marker edits
    ///   that comment (`Updated`), and the issue still has one comment with it.
    /// - An unknown issue fails with `NotFound`.
    async fn upsert_comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.comment(id, marker, body).await
    }
}
