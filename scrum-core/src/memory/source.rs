//! [`MemoryIssueSource`]: an in-memory [`IssueSource`] that records every write.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::follow_up::PullStatus;
use crate::model::{Person, ReadyIssue, RepoName, TaskId, Timestamp};
use crate::pull_gate::{PullReview, PullState};
use crate::source::{Commented, IssueSource, IssueState, Labels};

/// One write a [`MemoryIssueSource`] received, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A label was added that the issue did not have.
    LabelAdded(TaskId, String),
    /// A label was removed that the issue had.
    LabelRemoved(TaskId, String),
    /// A comment was posted.
    Commented(TaskId, String),
    /// The comment with this marker got a new body ([`IssueSource::upsert_comment`]).
    CommentUpdated(TaskId, String),
}

/// An issue held by a [`MemoryIssueSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryIssue {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Open or closed.
    pub open: bool,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Comments, as (marker, body).
    pub comments: Vec<(String, String)>,
    /// Who last applied its labels ([`MemoryIssueSource::label_as`]); `None`: the
    /// tracker vouches.
    pub labelled_by: Option<Person>,
    /// Who last edited its text ([`MemoryIssueSource::edit_as`]).
    pub edited_by: Option<Person>,
    /// Who opened it; `None`: the tracker vouches.
    pub opened_by: Option<Person>,
}

/// An [`IssueSource`] in memory: issues added by the test or embedder, and a log of
/// every label and comment written, to check that each is written exactly once.
#[derive(Debug, Default)]
pub struct MemoryIssueSource {
    labels: Labels,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    issues: BTreeMap<TaskId, MemoryIssue>,
    log: Vec<Write>,
    /// The blockers recorded for each issue ([`MemoryIssueSource::add_blocked_by`]).
    blocked_by: BTreeMap<TaskId, Vec<TaskId>>,
    /// Pull requests by (repository, number), as [`MemoryIssueSource::set_pull`]
    /// set them.
    pulls: BTreeMap<(RepoName, u64), PullStatus>,
}

impl MemoryIssueSource {
    /// An empty source that treats issues carrying all of `labels.ready` as ready.
    pub fn new(labels: Labels) -> MemoryIssueSource {
        MemoryIssueSource {
            labels,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens an issue with `labels`.
    pub fn open_issue(&self, id: TaskId, title: &str, labels: &[&str], created_at: Timestamp) {
        let issue = MemoryIssue {
            title: title.to_string(),
            body: format!("Body of {id}"),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            open: true,
            created_at,
            comments: Vec::new(),
            labelled_by: None,
            edited_by: None,
            opened_by: None,
        };
        self.lock().issues.insert(id, issue);
    }

    /// Sets an issue's labels as `login` would at `at`, who may approve work or not.
    pub fn label_as(
        &self,
        id: &TaskId,
        labels: &[&str],
        login: &str,
        may_approve: bool,
        at: Timestamp,
    ) {
        self.set_labels(id, labels);
        if let Some(i) = self.lock().issues.get_mut(id) {
            i.labelled_by = Some(person(login, may_approve, at));
        }
    }

    /// Records `blocker` as blocking `id`, as a tracker's own issue dependencies do
    /// ([`IssueSource::blocked_by`]).
    pub fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) {
        let mut inner = self.lock();
        let list = inner.blocked_by.entry(id.clone()).or_default();
        if !list.contains(blocker) {
            list.push(blocker.clone());
        }
    }

    /// Edits an issue's title and body as `login` would at `at`.
    pub fn edit_as(
        &self,
        id: &TaskId,
        title: &str,
        body: &str,
        login: &str,
        may_approve: bool,
        at: Timestamp,
    ) {
        if let Some(i) = self.lock().issues.get_mut(id) {
            i.title = title.to_string();
            i.body = body.to_string();
            i.edited_by = Some(person(login, may_approve, at));
        }
    }

    /// Records who opened an issue.
    pub fn set_author(&self, id: &TaskId, login: &str, may_approve: bool) {
        if let Some(i) = self.lock().issues.get_mut(id) {
            i.opened_by = Some(Person {
                login: login.to_string(),
                may_approve,
                at: Some(i.created_at),
            });
        }
    }

    /// Closes an issue.
    pub fn close(&self, id: &TaskId) {
        if let Some(i) = self.lock().issues.get_mut(id) {
            i.open = false;
        }
    }

    /// Sets an issue's labels as a person would (not logged as a write).
    pub fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        if let Some(i) = self.lock().issues.get_mut(id) {
            i.labels = labels.iter().map(|l| l.to_string()).collect();
        }
    }

    /// One issue as it is now.
    pub fn issue(&self, id: &TaskId) -> Option<MemoryIssue> {
        self.lock().issues.get(id).cloned()
    }

    /// Every write received so far, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.lock().log.clone()
    }

    /// Sets what the tracker says of pull request `number` of `repo`: its review
    /// state, checks, mergeability and `/agent` comments. A pull request never set
    /// is unknown (`NotFound`).
    pub fn set_pull(&self, repo: &RepoName, number: u64, status: PullStatus) {
        self.lock().pulls.insert((repo.clone(), number), status);
    }

    fn pull(&self, repo: &RepoName, number: u64) -> Result<PullStatus> {
        let inner = self.lock();
        let found = inner.pulls.get(&(repo.clone(), number)).cloned();
        found.ok_or_else(|| Error::not_found(format!("no pull request {repo}#{number}")))
    }

    fn with_issue<T>(
        &self,
        id: &TaskId,
        f: impl FnOnce(&mut MemoryIssue, &mut Vec<Write>) -> T,
    ) -> Result<T> {
        let mut inner = self.lock();
        let Inner { issues, log, .. } = &mut *inner;
        let issue = issues
            .get_mut(id)
            .ok_or_else(|| Error::not_found(format!("no issue {id}")))?;
        Ok(f(issue, log))
    }
}

fn person(login: &str, may_approve: bool, at: Timestamp) -> Person {
    Person {
        login: login.to_string(),
        may_approve,
        at: Some(at),
    }
}

#[async_trait]
impl IssueSource for MemoryIssueSource {
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        let inner = self.lock();
        Ok(inner
            .issues
            .iter()
            .filter(|(_, i)| i.open && self.labels.is_ready(&i.labels))
            .map(|(id, i)| ReadyIssue {
                id: id.clone(),
                title: i.title.clone(),
                body: i.body.clone(),
                labels: i.labels.clone(),
                created_at: i.created_at,
            })
            .collect())
    }

    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        self.with_issue(id, |i, _| IssueState {
            open: i.open,
            labels: i.labels.clone(),
            digest: Some(crate::model::text_digest(&i.title, &i.body)),
        })
    }

    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        self.with_issue(id, |i, log| {
            for l in labels {
                if !i.labels.iter().any(|have| have.eq_ignore_ascii_case(l)) {
                    i.labels.push(l.clone());
                    log.push(Write::LabelAdded(id.clone(), l.clone()));
                }
            }
        })
    }

    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        self.with_issue(id, |i, log| {
            let before = i.labels.len();
            i.labels.retain(|l| !l.eq_ignore_ascii_case(label));
            if i.labels.len() != before {
                log.push(Write::LabelRemoved(id.clone(), label.to_string()));
            }
        })
    }

    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.with_issue(id, |i, log| {
            if i.comments.iter().any(|(m, _)| m == marker) {
                return Commented::AlreadyPresent;
            }
            i.comments.push((marker.to_string(), body.to_string()));
            log.push(Write::Commented(id.clone(), marker.to_string()));
            Commented::Posted
        })
    }

    async fn upsert_comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.with_issue(id, |i, log| {
            if let Some((_, old)) = i.comments.iter_mut().find(|(m, _)| m == marker) {
                *old = body.to_string();
                log.push(Write::CommentUpdated(id.clone(), marker.to_string()));
                return Commented::Updated;
            }
            i.comments.push((marker.to_string(), body.to_string()));
            log.push(Write::Commented(id.clone(), marker.to_string()));
            Commented::Posted
        })
    }

    async fn pull_state(&self, repo: &RepoName, number: u64) -> Result<Option<PullState>> {
        Ok(Some(self.pull(repo, number)?.review.state))
    }

    async fn pull_review(&self, repo: &RepoName, number: u64) -> Result<Option<PullReview>> {
        Ok(Some(self.pull(repo, number)?.review))
    }

    async fn pull_status(
        &self,
        repo: &RepoName,
        number: u64,
        _checks: &[String],
    ) -> Result<Option<PullStatus>> {
        Ok(Some(self.pull(repo, number)?))
    }

    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        self.with_issue(id, |i, _| {
            i.labelled_by.clone().unwrap_or_else(Person::tracker)
        })
    }

    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        self.with_issue(id, |i, _| i.edited_by.clone())
    }

    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        let inner = self.lock();
        if !inner.issues.contains_key(id) {
            return Err(Error::not_found(format!("no issue {id}")));
        }
        Ok(inner.blocked_by.get(id).cloned().unwrap_or_default())
    }

    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        self.with_issue(id, |i, _| {
            i.opened_by.clone().unwrap_or_else(Person::tracker)
        })
    }
}
