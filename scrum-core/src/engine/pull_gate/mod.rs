//! Review gating (see [`crate::pull_gate`]): the engine tracks the pull requests its
//! workers report (a completion's `pr_url`), reads their state on every poll (and
//! so on `pull_request` and `pull_request_review` webhooks, which start a poll),
//! and holds the repositories [`crate::pull_gate::gate`] says.
//!
//! What is tracked is derived from the store: the completed tasks of the last
//! [`TRACK_FOR`] and their `pr_url`, so a restarted orchestrator (or another one on
//! the same store) tracks the same pull requests, and reads their state from the
//! tracker again. An operator's word (`POST /pr-review/…`) counts until the tracker
//! says the pull request was merged or closed; it is recorded on the task too
//! ([`crate::state::Event::MarkPull`], `Task::pull_mark`), so a restarted
//! orchestrator (or another on the store, at its next read of the completed tasks)
//! counts it as well.
//!
//! With `REWORK_ON_CHANGES_REQUESTED`, each read of a pull request with changes
//! requested also looks at its task: a completed task whose latest rework does
//! not answer that review (by id) gets a new run carrying it
//! ([`crate::state::Event::Rework`]), when the reviewer may approve work (or
//! `TRUST_MODE=off`); an operator's `changes-requested` does the same with the
//! text it is given. While that run is live its pull request is not counted, and
//! once it completed, the review it answered holds nothing
//! ([`crate::pull_gate::ReworkState`]).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::gate::{ClaimCtx, ClaimGate, Gate};
use super::step::{PollRound, PollStep};
use super::trust::TrustMode;
use super::{Core, Operator, Reads, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Person, RepoName, Task, TaskState};
use crate::pull_gate::{
    ChangeRequest, PullReview, PullState, ReviewGate, ReviewSettings, Rework, ReworkState,
    TrackedPull, gate,
};
use crate::queue::TaskFilter;
use crate::state::Event;

mod book;

use book::{PullBook, names, reported, rework_on};

/// How long after its task completed a pull request is tracked.
pub const TRACK_FOR: Duration = Duration::from_secs(30 * 86_400);

/// How often the completed tasks are read from the store again (for pull requests
/// another orchestrator's workers reported); between two reads, only the tracked
/// pull requests still open are read from the tracker.
const RESCAN_EVERY: Duration = Duration::from_secs(600);

/// The pull-request gate: its settings and the pull requests it tracks.
#[derive(Debug, Default)]
pub(crate) struct PullGate {
    settings: ReviewSettings,
    trust: TrustMode,
    book: Mutex<PullBook>,
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

impl PullGate {
    /// The tracked pull request `number` (in `repo`, needed when several tracked
    /// repositories have that number).
    fn tracked_pull(&self, repo: Option<&str>, number: u64) -> Result<TrackedPull> {
        let book = lock(&self.book);
        let mut found = book
            .pulls
            .values()
            .filter(|p| {
                p.number == number && repo.is_none_or(|want| want.eq_ignore_ascii_case(&p.repo))
            })
            .cloned();
        match (found.next(), found.next()) {
            (Some(p), None) => Ok(p),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "several tracked repositories have pull request #{number}; say which with `repository`"
            ))),
            (None, _) => Err(Error::not_found(format!(
                "no tracked pull request #{number}{}",
                repo.map(|r| format!(" in {r}")).unwrap_or_default()
            ))),
        }
    }

    /// [`Operator::mark_pull`] of a pull request already found.
    fn take_word(&self, core: &Core, pull: TrackedPull, state: PullState) -> TrackedPull {
        let key = (pull.repo.clone(), pull.number);
        tracing::info!(repository = %key.0, pull = key.1, state = state.as_str(), "an operator set a pull request's review state");
        let mut book = lock(&self.book);
        // As tracked now: a poll may have read it since it was found.
        let pull = book.pulls.get(&key).cloned().unwrap_or(pull);
        book.take_word(pull, state);
        drop(book);
        core.wake();
        self.status_of(&key).expect("just recorded")
    }

    /// Pull request `key` (repository, number) as [`Reads::pull_gate_status`]
    /// shows it, if tracked.
    fn status_of(&self, key: &(String, u64)) -> Option<TrackedPull> {
        self.status()
            .pulls
            .into_iter()
            .find(|p| (p.repo.as_str(), p.number) == (key.0.as_str(), key.1))
    }

    /// Starts tracking the pull request a completion reported, as open, so the
    /// gate counts it before the next poll reads it. A rework run's completion
    /// marks its pull request's rework done: the review it answered holds nothing.
    pub(super) fn track_completed(&self, task: &Task) {
        if let Some(mut pull) = reported(task) {
            pull.rework = rework_on(task, &pull).map(|_| ReworkState::Done);
            let mut book = lock(&self.book);
            let key = (pull.repo.clone(), pull.number);
            if pull.rework.is_some() {
                book.overrides.remove(&key);
            }
            let rework = pull.rework;
            book.pulls
                .entry(key)
                .and_modify(|p| p.rework = rework)
                .or_insert(pull);
        }
    }

    /// A pull request's review state; with `REWORK_ON_CHANGES_REQUESTED`, with the
    /// request for changes behind it (which may cost the tracker a read of the
    /// reviewer's permission).
    async fn read_pull(
        &self,
        core: &Core,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<PullReview>> {
        let src = &core.source;
        if self.settings.rework_on_changes_requested {
            return src.pull_review(repo, number).await;
        }
        Ok(src.pull_state(repo, number).await?.map(|state| PullReview {
            state,
            change_request: None,
        }))
    }

    /// Where `pull`'s rework stands, given the tracker's latest `request` for
    /// changes on it; sends a completed task back for rework when the request is
    /// new, its author may approve work and `REWORK_ON_CHANGES_REQUESTED` is on
    /// (see the module docs). `None`: no rework, the gate counts the state as it is.
    async fn rework_of(
        &self,
        core: &Core,
        pull: &TrackedPull,
        request: Option<&ChangeRequest>,
    ) -> Result<Option<ReworkState>> {
        if !self.settings.rework_on_changes_requested {
            return Ok(None);
        }
        let Some(task) = core.queue.get(&pull.task).await? else {
            return Ok(None);
        };
        let answered = rework_on(&task, pull);
        if !task.state().is_terminal() {
            return Ok(answered.map(|_| ReworkState::Running));
        }
        let Some(request) = request else {
            return Ok(None);
        };
        if answered.is_some_and(|r| r.review_id == request.id) {
            return Ok((task.state() == TaskState::Completed).then_some(ReworkState::Done));
        }
        let reported_here = task
            .completion()
            .as_ref()
            .and_then(|c| c.pr_url.as_deref())
            .is_some_and(|url| names(url, pull));
        if task.state() != TaskState::Completed || !reported_here {
            return Ok(None);
        }
        if self.trust != TrustMode::Off && !request.reviewer.may_approve {
            if lock(&self.book).untrusted.insert(request.id.clone()) {
                tracing::warn!(task = %task.id, pull = pull.number, reviewer = %request.reviewer.login, "changes requested by a reviewer without write access: not sent back to an agent");
            }
            return Ok(None);
        }
        let now = core.now();
        let rework = Rework::answering(&pull.url, request, now);
        match core
            .queue
            .apply(&task.id, Event::Rework { rework }, now)
            .await
        {
            Ok(_) => {
                tracing::info!(task = %task.id, repository = %pull.repo, pull = pull.number, reviewer = %request.reviewer.login, "changes requested: the issue is queued again with the review");
                core.wake();
                Ok(Some(ReworkState::Running))
            }
            // Queued again by another way since it was read: no rework.
            Err(e) if e.kind() == ErrorKind::InvalidTransition => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the state of every tracked pull request that may still be open (see
    /// the module docs). A pull request the tracker cannot read for a moment keeps
    /// its last state; one it does not have (or a tracker without pull requests)
    /// is not tracked.
    pub(super) async fn refresh(&self, core: &Core) -> Result<()> {
        let now = core.now();
        let since = now.0 - i64::try_from(TRACK_FOR.as_millis()).unwrap_or(i64::MAX);
        let rescan = lock(&self.book)
            .scanned_at
            .is_none_or(|at| now >= at.plus(RESCAN_EVERY));
        let candidates: Vec<TrackedPull> = if rescan {
            let completed = core
                .queue
                .list(&TaskFilter::states([TaskState::Completed]))
                .await?;
            let recent: Vec<&Task> = completed
                .iter()
                .filter(|t| t.finished_at().is_some_and(|at| at.0 >= since))
                .collect();
            let mut book = lock(&self.book);
            book.scanned_at = Some(now);
            recent.iter().for_each(|t| book.recall_mark(t));
            drop(book);
            recent.into_iter().filter_map(reported).collect()
        } else {
            lock(&self.book).pulls.values().cloned().collect()
        };
        let mut changed = false;
        for mut pull in candidates {
            let key = (pull.repo.clone(), pull.number);
            let known = lock(&self.book)
                .pulls
                .get(&key)
                .map(|p| (p.state, p.rework));
            if known.is_some_and(|(s, _)| !s.is_pending()) {
                continue;
            }
            let repo: RepoName = pull.repo.parse()?;
            match self.read_pull(core, &repo, pull.number).await {
                Ok(Some(review)) => {
                    pull.state = review.state;
                    let request = review
                        .change_request
                        .as_ref()
                        .filter(|_| review.state == PullState::ChangesRequested);
                    pull.rework = match self.rework_of(core, &pull, request).await {
                        Ok(rework) => rework,
                        Err(e) => {
                            tracing::warn!(repository = %pull.repo, pull = pull.number, error = %e, "could not read or requeue a pull request's task; its last rework state stands");
                            known.and_then(|(_, r)| r)
                        }
                    };
                    changed |= known != Some((pull.state, pull.rework));
                    lock(&self.book).record(pull);
                }
                Ok(None) => {
                    lock(&self.book).pulls.remove(&key);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::warn!(repository = %pull.repo, pull = pull.number, "the tracker has no such pull request: not tracked");
                    lock(&self.book).pulls.remove(&key);
                }
                Err(e) => {
                    tracing::warn!(repository = %pull.repo, pull = pull.number, error = %e, "could not read a pull request's review state; its last one stands");
                }
            }
        }
        if changed {
            core.wake();
        }
        Ok(())
    }

    /// See [`Operator::mark_pull`].
    pub(crate) fn mark(
        &self,
        core: &Core,
        repo: Option<&str>,
        number: u64,
        state: PullState,
    ) -> Result<TrackedPull> {
        let found = self.tracked_pull(repo, number)?;
        Ok(self.take_word(core, found, state))
    }

    /// See [`Operator::mark_pull_review`].
    pub(crate) async fn mark_review(
        &self,
        core: &Core,
        repo: Option<&str>,
        number: u64,
        state: PullState,
        feedback: Option<&str>,
    ) -> Result<TrackedPull> {
        let found = self.tracked_pull(repo, number)?;
        let event = Event::MarkPull { state };
        match core.queue.apply(&found.task, event, core.now()).await {
            Ok(_) => {}
            // Its task is running again (a rework) or was queued again since: the
            // word stands in this process only, until that run ends.
            Err(e) if e.kind() == ErrorKind::InvalidTransition => {
                tracing::info!(task = %found.task, pull = number, "the pull request's task is not completed: the operator's word is kept in memory only");
            }
            Err(e) => return Err(e),
        }
        let pull = self.take_word(core, found, state);
        if state != PullState::ChangesRequested || !self.settings.rework_on_changes_requested {
            return Ok(pull);
        }
        let now = core.now();
        let request = ChangeRequest {
            id: format!("operator-{}", now.0),
            reviewer: Person {
                login: "operator".into(),
                may_approve: true,
                at: Some(now),
            },
            body: feedback
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .unwrap_or("An operator asked for changes on this pull request.")
                .to_string(),
        };
        let rework = self.rework_of(core, &pull, Some(&request)).await?;
        let key = (pull.repo.clone(), pull.number);
        let mut book = lock(&self.book);
        if rework.is_some() {
            book.overrides.remove(&key);
        }
        let Some(tracked) = book.pulls.get_mut(&key) else {
            return Ok(pull);
        };
        tracked.rework = rework;
        drop(book);
        core.wake();
        Ok(self.status_of(&key).unwrap_or(pull))
    }

    /// The gate for `settings`; with trust checks on (`trust`), only reviewers who
    /// may approve work send a pull request back for rework.
    pub(crate) fn new(settings: ReviewSettings, trust: TrustMode) -> PullGate {
        PullGate {
            settings,
            trust,
            book: Mutex::default(),
        }
    }

    /// What the gate holds now.
    pub(crate) fn gate(&self) -> ReviewGate {
        gate(&lock(&self.book).view(), &self.settings)
    }

    /// The settings, the gate and every tracked pull request.
    pub(crate) fn status(&self) -> ReviewStatus {
        let pulls = lock(&self.book).view();
        ReviewStatus {
            settings: self.settings.clone(),
            gate: gate(&pulls, &self.settings),
            pulls,
        }
    }
}

#[async_trait]
impl ClaimGate for PullGate {
    fn name(&self) -> &'static str {
        "pull_gate"
    }

    async fn check(&self, _core: &Core, _ctx: &ClaimCtx<'_>) -> Result<Gate> {
        let gate = self.gate();
        let Some(reason) = gate.reason() else {
            return Ok(Gate::Open);
        };
        if gate.all {
            return Ok(Gate::Tasks(reason));
        }
        Ok(Gate::Repos(
            gate.repos
                .into_iter()
                .map(|r| (r, reason.clone()))
                .collect(),
        ))
    }
}

/// The poll's part: the tracked pull requests' review states, read again.
#[async_trait]
impl PollStep for PullGate {
    async fn run(&self, core: &Core, _round: &mut PollRound) -> Result<()> {
        if let Err(e) = self.refresh(core).await {
            tracing::warn!(error = %e, "could not read the tracked pull requests");
        }
        Ok(())
    }
}

impl Reads<'_> {
    /// What review gating holds now.
    pub fn pull_gate(self) -> ReviewGate {
        self.inner.features.pulls.gate()
    }

    /// The settings, the gate and every tracked pull request.
    pub fn pull_gate_status(self) -> ReviewStatus {
        self.inner.features.pulls.status()
    }
}

impl Operator<'_> {
    /// Records an operator's word on pull request `number` (in `repo`, needed when
    /// several tracked repositories have that number) in this process: the gate
    /// counts it so until the tracker says it was merged or closed.
    /// [`Operator::mark_pull_review`] also records it on the store.
    pub fn mark_pull(
        self,
        repo: Option<&str>,
        number: u64,
        state: PullState,
    ) -> Result<TrackedPull> {
        self.inner
            .features
            .pulls
            .mark(self.inner, repo, number, state)
    }

    /// Records an operator's word on pull request `number` as [`Operator::mark_pull`]
    /// does, and on its task in the store (`Task::pull_mark`), so a restart keeps
    /// it; with `REWORK_ON_CHANGES_REQUESTED`, `changes-requested` on a completed
    /// task's pull request also queues the issue again with `feedback` (the
    /// operator's text, or a sentence saying an operator asked) as its review. Its
    /// word then stands no longer: once the rework is done, the tracker's state
    /// counts again.
    pub async fn mark_pull_review(
        self,
        repo: Option<&str>,
        number: u64,
        state: PullState,
        feedback: Option<&str>,
    ) -> Result<TrackedPull> {
        let pulls = &self.inner.features.pulls;
        pulls
            .mark_review(self.inner, repo, number, state, feedback)
            .await
    }
}
