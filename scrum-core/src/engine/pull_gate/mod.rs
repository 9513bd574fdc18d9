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
//! Follow-ups ([`crate::follow_up`]): with any cause on (`FOLLOW_UP_ON`), each read
//! of a pull request is its whole status (checks, mergeability, `/agent`
//! comments, the request for changes), and a completed task whose pull request
//! has something wrong that no round of it answered yet gets a follow-up run
//! ([`crate::state::Event::FollowUp`]) for the first such cause, in
//! [`FollowUpCause::ALL`] order; only the words of people who may approve work
//! (or any, with `TRUST_MODE=off`) count. An operator's `changes-requested` does
//! the same with the text it is given, when changes requested is on
//! (`REWORK_ON_CHANGES_REQUESTED`). While that run is live its pull request counts
//! as open but not as changes requested, and once it completed, a review it
//! answered holds nothing ([`crate::pull_gate::FollowUpState`]). Past
//! `FOLLOW_UP_ROUNDS` the pull request is left for people, and holds its
//! repository as a request for changes would.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::gate::{ClaimCtx, ClaimGate, Gate};
use super::step::{PollRound, PollStep};
use super::trust::TrustMode;
use super::{Core, Operator, Reads, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::follow_up::{FollowUp, FollowUpCause, FollowUpSettings, PullStatus, problems};
use crate::model::{Person, RepoName, Task, TaskState};
use crate::pull_gate::{
    ChangeRequest, FollowUpState, PullReview, PullState, ReviewGate, ReviewSettings, TrackedPull,
    gate,
};
use crate::queue::TaskFilter;
use crate::state::Event;

mod book;

use book::{PullBook, follow_up_on, names, reported};

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
    follow_ups: FollowUpSettings,
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
    /// gate counts it before the next poll reads it. A follow-up run's completion
    /// marks its pull request's follow-up done: a request for changes it answered
    /// holds nothing.
    pub(super) fn track_completed(&self, task: &Task) {
        if let Some(mut pull) = reported(task) {
            pull.follow_up = follow_up_on(task, &pull).map(|_| FollowUpState::Done);
            let mut book = lock(&self.book);
            let key = (pull.repo.clone(), pull.number);
            if pull.follow_up.is_some() {
                book.overrides.remove(&key);
            }
            let follow_up = pull.follow_up;
            book.pulls
                .entry(key)
                .and_modify(|p| p.follow_up = follow_up)
                .or_insert(pull);
        }
    }

    /// A pull request's status: with follow-ups on, its checks, mergeability and
    /// `/agent` comments too ([`crate::IssueSource::pull_status`]); else its review
    /// state alone.
    async fn read_pull(
        &self,
        core: &Core,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<PullStatus>> {
        let src = &core.source;
        if self.follow_ups.any() {
            return src.pull_status(repo, number, &self.follow_ups.checks).await;
        }
        Ok(src.pull_state(repo, number).await?.map(|state| {
            PullStatus::of_review(PullReview {
                state,
                change_request: None,
            })
        }))
    }

    /// Where `pull`'s follow-up stands, given its latest `status`; sends a
    /// completed task a follow-up ([`Event::FollowUp`]) when something on its pull
    /// request is wrong that no round answered yet (see the module docs). `None`:
    /// no follow-up, the gate counts the state as it is.
    async fn follow_up_of(
        &self,
        core: &Core,
        pull: &TrackedPull,
        status: &PullStatus,
    ) -> Result<Option<FollowUpState>> {
        if !self.follow_ups.any() {
            return Ok(None);
        }
        let Some(task) = core.queue.get(&pull.task).await? else {
            return Ok(None);
        };
        let ours = follow_up_on(&task, pull);
        if !task.state().is_terminal() {
            return Ok(ours.map(|_| FollowUpState::Running));
        }
        let reported_here = task
            .completion()
            .as_ref()
            .and_then(|c| c.pr_url.as_deref())
            .is_some_and(|url| names(url, pull));
        if task.state() != TaskState::Completed || !reported_here {
            return Ok(None);
        }
        if task.follow_ups_exhausted().is_some() {
            return Ok(Some(FollowUpState::Exhausted));
        }
        let since = ours.map_or(task.run.queued_at, FollowUp::comments_since);
        let trusted = self.trust == TrustMode::Off;
        let due = problems(status, &self.follow_ups, since, trusted)
            .into_iter()
            .find(|p| ours.is_none_or(|f| !f.answered(&p.answers)));
        let Some(problem) = due else {
            return Ok(ours.map(|_| FollowUpState::Done));
        };
        let now = core.now();
        let follow_up = FollowUp::new(
            problem.cause,
            &pull.url,
            problem.answers,
            &problem.author,
            &problem.feedback,
            0,
            now,
        );
        match core
            .queue
            .apply(&task.id, Event::FollowUp { follow_up }, now)
            .await
        {
            Ok(next) => {
                let exhausted = next.follow_ups_exhausted().is_some();
                core.observer
                    .get()
                    .follow_up(&next, problem.cause, exhausted);
                if exhausted {
                    tracing::warn!(task = %task.id, repository = %pull.repo, pull = pull.number, cause = problem.cause.as_str(), "the follow-up rounds are used up: the pull request is left for people");
                    return Ok(Some(FollowUpState::Exhausted));
                }
                tracing::info!(task = %task.id, repository = %pull.repo, pull = pull.number, cause = problem.cause.as_str(), author = %problem.author, "a follow-up: the issue is queued again on the same branch");
                core.wake_for_one();
                Ok(Some(FollowUpState::Running))
            }
            // Queued again by another way since it was read: no follow-up.
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
                .map(|p| (p.state, p.follow_up));
            if known.is_some_and(|(s, _)| !s.is_pending()) {
                continue;
            }
            let repo: RepoName = pull.repo.parse()?;
            match self.read_pull(core, &repo, pull.number).await {
                Ok(Some(status)) => {
                    pull.state = status.review.state;
                    pull.follow_up = match self.follow_up_of(core, &pull, &status).await {
                        Ok(follow_up) => follow_up,
                        Err(e) => {
                            tracing::warn!(repository = %pull.repo, pull = pull.number, error = %e, "could not read or requeue a pull request's task; its last follow-up state stands");
                            known.and_then(|(_, r)| r)
                        }
                    };
                    changed |= known != Some((pull.state, pull.follow_up));
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
        if state != PullState::ChangesRequested
            || !self.follow_ups.on(FollowUpCause::ChangesRequested)
        {
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
        let status = PullStatus::of_review(PullReview {
            state,
            change_request: Some(request),
        });
        let follow_up = self.follow_up_of(core, &pull, &status).await?;
        let key = (pull.repo.clone(), pull.number);
        let mut book = lock(&self.book);
        if follow_up.is_some() {
            book.overrides.remove(&key);
        }
        let Some(tracked) = book.pulls.get_mut(&key) else {
            return Ok(pull);
        };
        tracked.follow_up = follow_up;
        drop(book);
        core.wake();
        Ok(self.status_of(&key).unwrap_or(pull))
    }

    /// The gate for `settings`, following pull requests up as `follow_ups` say
    /// (`REWORK_ON_CHANGES_REQUESTED` adds changes requested); with trust checks
    /// on (`trust`), only the words of people who may approve work reach an agent.
    pub(crate) fn new(
        settings: ReviewSettings,
        mut follow_ups: FollowUpSettings,
        trust: TrustMode,
    ) -> PullGate {
        if settings.rework_on_changes_requested {
            follow_ups.on.insert(FollowUpCause::ChangesRequested);
        }
        PullGate {
            settings,
            follow_ups,
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
