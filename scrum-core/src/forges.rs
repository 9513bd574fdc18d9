//! [`Forges`]: one [`IssueSource`] over several forges (GitHub beside GitLab), each
//! call routed to the source of the forge its issue names.
//!
//! A task id names its forge ([`RepoName::forge`]: `gitlab:group/sub/project#12` is
//! GitLab's, `owner/repo#3` GitHub's), so the engine needs no idea of forges: it
//! talks to one source, and this one hands each call to the right member.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use scrum_core::{forges::Forges, memory::MemoryIssueSource, IssueSource, Labels, Timestamp};
//!
//! let github = Arc::new(MemoryIssueSource::new(Labels::default()));
//! let gitlab = Arc::new(MemoryIssueSource::new(Labels::default()));
//! github.open_issue("acme/widgets#1".parse().unwrap(), "A widget", &["ai-ready"], Timestamp(1));
//! gitlab.open_issue("gitlab:group/sub/project#1".parse().unwrap(), "A project", &["ai-ready"], Timestamp(2));
//! let both = Forges::new().with("github", github.clone()).with("gitlab", gitlab.clone());
//! assert_eq!(both.list_ready().await.unwrap().len(), 2);
//! both.add_labels(&"gitlab:group/sub/project#1".parse().unwrap(), &["ai-in-progress".into()]).await.unwrap();
//! assert!(gitlab.issue(&"gitlab:group/sub/project#1".parse().unwrap()).unwrap().labels.contains(&"ai-in-progress".into()));
//! # });
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};
use crate::follow_up::PullStatus;
use crate::model::{Person, ReadyIssue, RepoName, TaskId};
use crate::pull_gate::{PullReview, PullState};
use crate::source::{Commented, IssueSource, IssueState, Provenance};

/// How one forge's last listing went, as [`Forges::health`] reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeHealth {
    /// Whether its last listing succeeded.
    pub connected: bool,
    /// Why it failed, when it did (the source's error: free text, keep it to logs).
    pub reason: Option<String>,
}

/// Several issue sources, one per forge; see the [module docs](self).
///
/// # Contract
///
/// It is an [`IssueSource`] and keeps that trait's contract: a listing merges every
/// forge's and fails when any forge's fails (never a partial list), with an error
/// that names the forge; [`Forges::health`] says which forge failed, so `/health`
/// can show it apart. A call about an issue goes to its forge's source alone; an
/// issue of a forge with no source is `NotFound`.
pub struct Forges {
    sources: BTreeMap<String, Arc<dyn IssueSource>>,
    health: watch::Sender<BTreeMap<String, ForgeHealth>>,
}

impl Default for Forges {
    fn default() -> Forges {
        Forges::new()
    }
}

impl std::fmt::Debug for Forges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forges")
            .field("forges", &self.sources.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Forges {
    /// No forges yet: add them with [`Forges::with`].
    pub fn new() -> Forges {
        Forges {
            sources: BTreeMap::new(),
            health: watch::Sender::new(BTreeMap::new()),
        }
    }

    /// Serves the issues of `forge` (`"github"`, `"gitlab"`: what
    /// [`RepoName::forge`] answers for its names) from `source`, replacing any
    /// source set for it before.
    pub fn with(mut self, forge: &str, source: Arc<dyn IssueSource>) -> Forges {
        self.sources.insert(forge.to_string(), source);
        self
    }

    /// The forges served, in name order.
    pub fn forges(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Each forge's last listing, updated on every listing (a forge not listed yet
    /// is absent).
    pub fn health(&self) -> watch::Receiver<BTreeMap<String, ForgeHealth>> {
        self.health.subscribe()
    }

    fn source(&self, forge: &str) -> Result<&Arc<dyn IssueSource>> {
        self.sources.get(forge).ok_or_else(|| self.missing(forge))
    }

    /// The answer about an issue of a forge no source serves.
    fn missing(&self, forge: &str) -> Error {
        let known: Vec<&str> = self.forges().collect();
        Error::not_found(format!(
            "no issue source for forge {forge:?} (configured: {})",
            known.join(", ")
        ))
    }

    fn of_task(&self, id: &TaskId) -> Result<&Arc<dyn IssueSource>> {
        self.source(id.repo_name().forge())
    }

    fn of_repo(&self, repo: &RepoName) -> Result<&Arc<dyn IssueSource>> {
        self.source(repo.forge())
    }

    fn record(&self, forge: &str, outcome: &Result<Vec<ReadyIssue>>) {
        let health = match outcome {
            Ok(_) => ForgeHealth {
                connected: true,
                ..ForgeHealth::default()
            },
            Err(e) => ForgeHealth {
                connected: false,
                reason: Some(e.to_string()),
            },
        };
        // Every listing is news, changed or not: a watcher reads what else the
        // listing updated (a client's rate limit) when it hears of one.
        self.health.send_modify(|all| {
            all.insert(forge.to_string(), health);
        });
    }
}

/// An error of `forge`'s source, its message prefixed with the forge's name, its
/// kind and retry hint kept.
fn named(forge: &str, e: Error) -> Error {
    let mut named = Error::new(e.kind(), format!("{forge}: {}", e.message()));
    if let Some(after) = e.retry_after() {
        named = named.with_retry_after(after);
    }
    named.with_source(e)
}

#[async_trait]
impl IssueSource for Forges {
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        // Every forge is read at once: each is slow, and none waits on another.
        let mut reads = tokio::task::JoinSet::new();
        for (forge, source) in &self.sources {
            let (forge, source) = (forge.clone(), source.clone());
            reads.spawn(async move {
                let listed = source.list_ready().await;
                (forge, listed)
            });
        }
        let mut outcomes = BTreeMap::new();
        while let Some(read) = reads.join_next().await {
            let (forge, listed) = read.map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("a forge's listing stopped: {e}"),
                )
            })?;
            self.record(&forge, &listed);
            outcomes.insert(forge, listed);
        }
        let mut all = Vec::new();
        for (forge, listed) in outcomes {
            all.extend(listed.map_err(|e| named(&forge, e))?);
        }
        Ok(all)
    }

    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        self.of_task(id)?.issue_state(id).await
    }

    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        self.of_task(id)?.add_labels(id, labels).await
    }

    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        self.of_task(id)?.remove_label(id, label).await
    }

    async fn set_labels(&self, id: &TaskId, add: &[String], remove: &[String]) -> Result<()> {
        self.of_task(id)?.set_labels(id, add, remove).await
    }

    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.of_task(id)?.comment(id, marker, body).await
    }

    async fn upsert_comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.of_task(id)?.upsert_comment(id, marker, body).await
    }

    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        self.of_task(id)?.labelled_by(id).await
    }

    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        self.of_task(id)?.edited_by(id).await
    }

    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        self.of_task(id)?.opened_by(id).await
    }

    /// Each forge answers for its own ids in one call; the answers are put back in
    /// the order asked.
    async fn provenance(&self, ids: &[TaskId], author: bool) -> Result<Vec<Result<Provenance>>> {
        let mut by_forge: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (at, id) in ids.iter().enumerate() {
            let forge = id.repo_name().forge().to_string();
            by_forge.entry(forge).or_default().push(at);
        }
        let mut answers: Vec<Option<Result<Provenance>>> = ids.iter().map(|_| None).collect();
        for (forge, places) in by_forge {
            let Some(source) = self.sources.get(&forge) else {
                for at in places {
                    answers[at] = Some(Err(self.missing(&forge)));
                }
                continue;
            };
            let asked: Vec<TaskId> = places.iter().map(|&at| ids[at].clone()).collect();
            let got = source.provenance(&asked, author).await?;
            if got.len() != asked.len() {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "{forge}: asked about {} issues, answered {}",
                        asked.len(),
                        got.len()
                    ),
                ));
            }
            for (at, answer) in places.into_iter().zip(got) {
                answers[at] = Some(answer);
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "no answer"))))
            .collect())
    }

    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        self.of_task(id)?.blocked_by(id).await
    }

    async fn pull_state(&self, repo: &RepoName, number: u64) -> Result<Option<PullState>> {
        self.of_repo(repo)?.pull_state(repo, number).await
    }

    async fn pull_review(&self, repo: &RepoName, number: u64) -> Result<Option<PullReview>> {
        self.of_repo(repo)?.pull_review(repo, number).await
    }

    async fn pull_status(
        &self,
        repo: &RepoName,
        number: u64,
        checks: &[String],
    ) -> Result<Option<PullStatus>> {
        self.of_repo(repo)?.pull_status(repo, number, checks).await
    }
}

#[cfg(test)]
mod tests;
