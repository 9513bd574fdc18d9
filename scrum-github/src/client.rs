//! [`GitHubClient`]: the [`IssueSource`] on GitHub, plus closing issues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::{Method, StatusCode};
use scrum_core::{
    Commented, Error, ErrorKind, IssueSource, IssueState, Labels, Person, Provenance, ReadyIssue,
    RepoName, Result, TaskId, Timestamp,
};
use serde_json::json;
use tokio::sync::watch;

use crate::checks::CheckCache;
use crate::classify::{Subject, What};
use crate::config::GitHubConfig;
use crate::dependencies::{BlockerCounts, list_blocked_by};
use crate::follow_ups::PullHeads;
use crate::known_labels::KnownLabels;
use crate::listing::{ListWith, Listing, PollStats};
use crate::reviews::ReviewCache;
use crate::status::GitHubStatus;
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::trust::TrustCache;
use crate::wire::{self, encode_segment};

/// GitHub over octocrab: lists ready issues (every page, conditionally), reads and
/// writes labels and comments, closes issues and opens pull requests.
///
/// Cheap to clone: clones share the connection, caches and status.
///
/// # Errors
///
/// Every method fails with one [`scrum_core::ErrorKind`]: `Unauthorized` for a
/// refused `GITHUB_TOKEN`, `NotFound` naming the repository or issue, `RateLimited`
/// (with `retry_after`) when a limit lasts longer than
/// [`crate::Timing::max_rate_limit_wait`], `Unavailable`/`Timeout` once retries are
/// spent. A failure is never read as "no issues".
#[derive(Clone)]
pub struct GitHubClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) repos: Vec<RepoName>,
    pub(crate) labels: Labels,
    pub(crate) listing: Listing,
    /// Issue states by id, with the ETag they came with: a reconcile of an unchanged
    /// issue is answered 304 and costs no rate-limit point.
    issue_cache: Mutex<HashMap<TaskId, (String, IssueState)>>,
    /// Labels known to exist: a missing label is created once.
    known_labels: KnownLabels,
    pub(crate) default_branches: Mutex<HashMap<RepoName, String>>,
    /// Permissions and issue events, for the trust reads (`crate::trust`).
    pub(crate) trust: TrustCache,
    /// How many open issues block each issue, as last listed or read.
    pub(crate) blockers: BlockerCounts,
    /// Conditional answers: pull requests, reviews, checks, comments.
    pub(crate) reviews: ReviewCache,
    /// Required checks and the details of failed checks.
    pub(crate) checks: CheckCache,
    /// Tracked pull requests by head commit, for `status` webhooks.
    pub(crate) pull_heads: PullHeads,
    /// The `/agent` comments of each pull request as last read: kept while the
    /// pull request (which counts its comments) answers 304.
    pub(crate) agent_comments: Mutex<HashMap<(RepoName, u64), Vec<wire::PullComment>>>,
}

/// The most issue states kept for conditional reads; past it the cache starts over.
const ISSUE_CACHE_MAX: usize = 10_000;

#[async_trait]
impl scrum_core::RepoCredentials for GitHubClient {
    /// With a GitHub App, an installation token scoped to `repo`
    /// ([`GitHubClient::repo_token`]); `None` with a personal token.
    async fn token_for(&self, repo: &RepoName) -> Result<Option<scrum_core::RepoToken>> {
        match self.repo_token(repo).await? {
            Some((token, expires_at)) => scrum_core::RepoToken::new(&token, expires_at).map(Some),
            None => Ok(None),
        }
    }
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClient")
            .field("repos", &self.inner.repos)
            .field("labels", &self.inner.labels)
            .finish_non_exhaustive()
    }
}

impl GitHubClient {
    /// A client for `config`. Sends nothing: call [`GitHubClient::check`] (or use
    /// [`GitHubClient::connect`]) to find a bad token or repository at start-up.
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_API_URL` when the URL is unusable.
    pub fn new(config: GitHubConfig) -> Result<GitHubClient> {
        let transport = Transport::new(&config)?;
        Ok(GitHubClient {
            inner: Arc::new(Inner {
                transport,
                repos: config.repos.clone(),
                labels: config.labels.clone(),
                listing: Listing::default(),
                issue_cache: Mutex::new(HashMap::new()),
                known_labels: KnownLabels::default(),
                default_branches: Mutex::new(HashMap::new()),
                trust: TrustCache::default(),
                blockers: BlockerCounts::default(),
                reviews: ReviewCache::default(),
                checks: CheckCache::default(),
                pull_heads: config.pull_heads(),
                agent_comments: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// [`GitHubClient::new`], then [`GitHubClient::check`].
    ///
    /// # Errors
    /// As `check`: a start-up error naming `GITHUB_TOKEN` or the repository.
    pub async fn connect(config: GitHubConfig) -> Result<GitHubClient> {
        let client = GitHubClient::new(config)?;
        client.check().await?;
        Ok(client)
    }

    /// Reads every configured repository once: a refused token fails with
    /// `Unauthorized` naming `GITHUB_TOKEN`, an unknown repository with `NotFound`
    /// naming it. Also learns each repository's default branch, and returns the
    /// repositories where the token may read but not label issues (GitHub's
    /// `permissions` for the token grant neither triage nor write), with what it
    /// may do there.
    ///
    /// # Errors
    /// The first repository that cannot be read.
    pub async fn check(&self) -> Result<Vec<(RepoName, String)>> {
        let mut read_only = Vec::new();
        for repo in &self.inner.repos {
            let r = self.read_repo(repo).await?;
            if let Some(p) = r.permissions.filter(|p| !p.can_write_issues()) {
                read_only.push((repo.clone(), p.granted()));
            }
        }
        Ok(read_only)
    }

    /// The repositories polled.
    pub fn repos(&self) -> &[RepoName] {
        &self.inner.repos
    }

    /// The lifecycle labels.
    pub fn labels(&self) -> &Labels {
        &self.inner.labels
    }

    /// GitHub's state as seen by the last requests, for `/health`.
    pub fn status(&self) -> GitHubStatus {
        self.inner.transport.status.get()
    }

    /// A receiver that sees every change of [`GitHubClient::status`].
    pub fn subscribe_status(&self) -> watch::Receiver<GitHubStatus> {
        self.inner.transport.status.subscribe()
    }

    /// Tells `observer` of every request sent to GitHub from now on: its kind, HTTP
    /// status and duration (the API's `scrum_github_request_duration_seconds`).
    pub fn observe(&self, observer: Arc<dyn scrum_core::observe::Observer>) {
        self.inner.transport.observer.set(observer);
    }

    /// Rate-limit points spent since start: (REST, GraphQL). GitHub keeps the two
    /// budgets apart (5,000 points an hour each for a personal token); a REST
    /// answer costs one point unless it is a 304, a GraphQL query what its
    /// `rateLimit { cost }` says.
    pub fn points_spent(&self) -> (u64, u64) {
        self.inner.transport.spent.get()
    }

    /// With a GitHub App, the points spent with each installation's tokens, which
    /// GitHub budgets apart: (installation id, REST, GraphQL), by id. Empty with a
    /// personal token.
    pub fn points_by_installation(&self) -> Vec<(u64, u64, u64)> {
        self.inner.transport.spent_by_installation()
    }

    /// With a GitHub App, a new installation token that reaches `repo` alone and
    /// may push to it and open pull requests there (for the worker that runs a
    /// task of `repo`), with its expiry; `None` with a personal token.
    ///
    /// # Errors
    /// `NotFound` when the app is not installed on the repository's owner; the
    /// transport's errors.
    pub async fn repo_token(&self, repo: &RepoName) -> Result<Option<(String, Timestamp)>> {
        let token = self.inner.transport.repo_token(repo).await?;
        Ok(token.map(|t| {
            let ms = t
                .expires_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            (t.token, Timestamp(ms))
        }))
    }

    /// The pull requests whose status [`IssueSource::pull_status`] read, by head
    /// commit: give it to [`crate::webhook::WebhookSecret::with_pull_heads`] so a
    /// `status` delivery, which names a commit, makes the poll run at once.
    pub fn pull_heads(&self) -> PullHeads {
        self.inner.pull_heads.clone()
    }

    /// What the last [`IssueSource::list_ready`] cost.
    pub fn last_poll(&self) -> PollStats {
        self.inner.listing.last()
    }

    /// The repository's default branch (read once, then remembered).
    ///
    /// # Errors
    /// `NotFound` naming the repository; the transport's errors.
    pub async fn default_branch(&self, repo: &RepoName) -> Result<String> {
        if let Some(b) = lock(&self.inner.default_branches).get(repo) {
            return Ok(b.clone());
        }
        Ok(self.read_repo(repo).await?.default_branch)
    }

    /// `GET /repos/{repo}`; remembers its default branch.
    async fn read_repo(&self, repo: &RepoName) -> Result<wire::Repository> {
        let what = What {
            action: "read",
            subject: Subject::Repo(repo.clone()),
        };
        let reply = self
            .inner
            .transport
            .send(&Call::get(format!("/repos/{repo}"), what.clone()))
            .await?
            .success(&what)?;
        let r: wire::Repository = reply.json(&what)?;
        lock(&self.inner.default_branches).insert(repo.clone(), r.default_branch.clone());
        Ok(r)
    }

    /// Closes the issue. Closing a closed issue is fine.
    ///
    /// # Errors
    /// `NotFound` for an unknown issue; the transport's errors.
    pub async fn close_issue(&self, id: &TaskId) -> Result<()> {
        let what = issue_what("close", id);
        self.inner
            .transport
            .send(&Call::with_body(
                Method::PATCH,
                issue_path(id),
                json!({ "state": "closed" }),
                what.clone(),
            ))
            .await?
            .success(&what)?;
        Ok(())
    }

    /// Creates `label` in the repository unless it is known to exist.
    pub(crate) async fn ensure_label(&self, repo: &RepoName, label: &str) -> Result<()> {
        if self.inner.known_labels.contains(repo, label) {
            return Ok(());
        }
        let what = What {
            action: "create a label in",
            subject: Subject::Repo(repo.clone()),
        };
        let t = &self.inner.transport;
        let path = format!("/repos/{repo}/labels/{}", encode_segment(label));
        let reply = t.send(&Call::get(path, what.clone())).await?;
        if reply.status == StatusCode::NOT_FOUND {
            let body = json!({ "name": label, "color": self.color_of(label),
                               "description": "Managed by the scrum orchestrator" });
            let path = format!("/repos/{repo}/labels");
            let created = t
                .send(&Call::with_body(Method::POST, path, body, what.clone()).idempotent())
                .await?;
            // 422 "already_exists": someone created it meanwhile, which is fine.
            if created.status != StatusCode::UNPROCESSABLE_ENTITY {
                created.success(&what)?;
            }
        } else {
            reply.success(&what)?;
        }
        self.inner.known_labels.remember(repo, [label]);
        Ok(())
    }

    /// The colour a label gets when this client creates it.
    fn color_of(&self, label: &str) -> &'static str {
        let l = &self.inner.labels;
        let is = |name: &str| name.eq_ignore_ascii_case(label);
        if is(&l.in_progress) {
            "fbca04"
        } else if is(&l.completed) {
            "0e8a16"
        } else if is(&l.failed) {
            "d93f0b"
        } else if l.ready.iter().any(|r| is(r)) {
            "1d76db"
        } else {
            "ededed"
        }
    }
}

pub(crate) fn issue_path(id: &TaskId) -> String {
    format!("/repos/{}/issues/{}", id.repo(), id.number())
}

pub(crate) fn issue_what(action: &'static str, id: &TaskId) -> What {
    What {
        action,
        subject: Subject::Issue(id.clone()),
    }
}

/// The hidden marker as it appears in a comment body.
///
/// # Errors
/// `Invalid` for a marker an HTML comment cannot hold.
fn marker_tag(marker: &str) -> Result<String> {
    if marker.trim().is_empty() || marker.contains("--") || marker.contains('>') {
        return Err(Error::invalid(format!(
            "comment marker {marker:?} must be non-empty and hold no '--' or '>'"
        )));
    }
    Ok(format!("<!-- {marker} -->"))
}

#[async_trait]
impl IssueSource for GitHubClient {
    /// Every repository's pages, the repositories together (the transport bounds
    /// how many requests are in flight).
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        self.inner.blockers.new_listing();
        let with = ListWith {
            transport: &self.inner.transport,
            labels: &self.inner.labels,
            known_labels: &self.inner.known_labels,
            blockers: &self.inner.blockers,
        };
        let with = &with;
        let reads = self.inner.repos.iter().map(|repo| async move {
            let mut stats = PollStats::default();
            let issues = self.inner.listing.list_repo(with, repo, &mut stats).await?;
            Ok::<_, Error>((issues, stats))
        });
        let mut all = Vec::new();
        let mut stats = PollStats::default();
        for (issues, s) in futures::future::try_join_all(reads).await? {
            all.extend(issues);
            stats.requests += s.requests;
            stats.not_modified += s.not_modified;
            stats.issues += s.issues;
        }
        self.inner.listing.record(stats);
        Ok(all)
    }

    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        let what = issue_what("read", id);
        let cached = lock(&self.inner.issue_cache).get(id).cloned();
        let mut call = Call::get(issue_path(id), what.clone());
        call.if_none_match = cached.as_ref().map(|(etag, _)| etag.clone());
        let reply = self.inner.transport.send(&call).await?.success(&what)?;
        if reply.status == StatusCode::NOT_MODIFIED {
            if let Some((_, state)) = cached {
                return Ok(state);
            }
        }
        let issue: wire::Issue = reply.json(&what)?;
        self.inner.blockers.remember(id, &issue, false);
        let state = IssueState {
            open: issue.state == "open",
            labels: issue.label_names(),
            digest: Some(scrum_core::model::text_digest(
                &issue.title,
                issue.body.as_deref().unwrap_or_default(),
            )),
        };
        self.inner
            .known_labels
            .remember(&id.repo_name(), state.labels.iter().map(String::as_str));
        if let Some(etag) = reply.header("etag") {
            let mut cache = lock(&self.inner.issue_cache);
            if cache.len() >= ISSUE_CACHE_MAX {
                cache.clear();
            }
            cache.insert(id.clone(), (etag.to_string(), state.clone()));
        }
        Ok(state)
    }

    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        let labels: Vec<&String> = labels.iter().filter(|l| !l.trim().is_empty()).collect();
        if labels.is_empty() {
            return Ok(());
        }
        let repo = id.repo_name();
        for l in &labels {
            self.ensure_label(&repo, l).await?;
        }
        let what = issue_what("add labels to", id);
        let path = format!("{}/labels", issue_path(id));
        self.inner
            .transport
            .send(
                &Call::with_body(
                    Method::POST,
                    path,
                    json!({ "labels": labels }),
                    what.clone(),
                )
                .idempotent(),
            )
            .await?
            .success(&what)?;
        Ok(())
    }

    /// One write at most: with nothing to remove, a `POST` of `add` (adding a
    /// label the issue has changes nothing, so no read is needed); else, from a
    /// fresh (conditional) read of the issue's labels, one `PUT` of the whole new
    /// set, or nothing when the issue already carries them so. A label someone
    /// adds between that read and the `PUT` (milliseconds) is lost.
    async fn set_labels(&self, id: &TaskId, add: &[String], remove: &[String]) -> Result<()> {
        if remove.is_empty() {
            return self.add_labels(id, add).await;
        }
        let current = self.issue_state(id).await?.labels;
        let has = |l: &str| current.iter().any(|c| c.eq_ignore_ascii_case(l));
        let dropped = |l: &str| remove.iter().any(|r| r.eq_ignore_ascii_case(l));
        let missing: Vec<String> = add
            .iter()
            .filter(|l| !l.trim().is_empty() && !has(l))
            .cloned()
            .collect();
        if !current.iter().any(|c| dropped(c)) {
            return self.add_labels(id, &missing).await;
        }
        let repo = id.repo_name();
        for l in &missing {
            self.ensure_label(&repo, l).await?;
        }
        let mut labels: Vec<String> = current.iter().filter(|c| !dropped(c)).cloned().collect();
        labels.extend(missing);
        let what = issue_what("set the labels of", id);
        let path = format!("{}/labels", issue_path(id));
        let call = Call::with_body(Method::PUT, path, json!({ "labels": labels }), what.clone());
        self.inner
            .transport
            .send(&call.idempotent())
            .await?
            .success(&what)?;
        Ok(())
    }

    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        let what = issue_what("remove a label from", id);
        let path = format!("{}/labels/{}", issue_path(id), encode_segment(label));
        let call = Call {
            method: Method::DELETE,
            ..Call::get(path, what.clone())
        };
        let reply = self.inner.transport.send(&call).await?;
        if reply.status == StatusCode::NOT_FOUND && reply.message().contains("Label does not exist")
        {
            return Ok(());
        }
        reply.success(&what)?;
        Ok(())
    }

    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        let tag = marker_tag(marker)?;
        let t = &self.inner.transport;
        let mut retry = 0;
        loop {
            if self.comment_with(id, &tag).await?.is_some() {
                return Ok(Commented::AlreadyPresent);
            }
            let what = issue_what("comment on", id);
            let path = format!("{}/comments", issue_path(id));
            let text = format!("{body}\n\n{tag}");
            let call = Call::with_body(Method::POST, path, json!({ "body": text }), what.clone());
            match t.send(&call).await.and_then(|r| r.success(&what)) {
                Ok(_) => return Ok(Commented::Posted),
                // The comment may have been written although the answer was lost:
                // look again before posting again.
                Err(e)
                    if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
                        && retry < t.retries() =>
                {
                    retry += 1;
                    tracing::warn!(error = %e, issue = %id, "posting a comment failed; checking before retrying");
                    t.pause(retry).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        self.labeller(id).await
    }

    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        self.editor(id).await
    }

    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        self.author(id).await
    }

    /// One GraphQL query per 50 issues, the queries together, then each person's
    /// permission once (`crate::provenance`).
    async fn provenance(&self, ids: &[TaskId], author: bool) -> Result<Vec<Result<Provenance>>> {
        self.provenance_of(ids, author).await
    }

    /// Asks GitHub only when the issue's `issue_dependencies_summary` (from the last
    /// listing, else a conditional read of the issue) counts open blockers.
    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        let count = match self.inner.blockers.listed(id) {
            Some(n) => n,
            None => {
                self.issue_state(id).await?;
                self.inner.blockers.get(id).unwrap_or(0)
            }
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        list_blocked_by(&self.inner.transport, id).await
    }

    async fn pull_state(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<scrum_core::pull_gate::PullState>> {
        self.inner
            .reviews
            .pull_review(&self.inner.transport, repo, number)
            .await
            .map(|(state, _)| Some(state))
    }

    async fn pull_review(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Option<scrum_core::pull_gate::PullReview>> {
        let (state, latest) = self
            .inner
            .reviews
            .pull_review(&self.inner.transport, repo, number)
            .await?;
        self.review_of(repo, state, latest).await.map(Some)
    }

    /// The pull request, its reviews, its head's checks and its `/agent` comments
    /// (`crate::follow_ups`), each read conditionally.
    async fn pull_status(
        &self,
        repo: &RepoName,
        number: u64,
        checks: &[String],
    ) -> Result<Option<scrum_core::follow_up::PullStatus>> {
        self.read_pull_status(repo, number, checks).await.map(Some)
    }

    /// Finds the comment with the marker (every page) and edits it, else posts.
    async fn upsert_comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        let tag = marker_tag(marker)?;
        self.upsert(id, &tag, body).await
    }
}

impl GitHubClient {
    /// The comment on the issue that holds `tag`, if one does (every page is read).
    pub(crate) async fn comment_with(
        &self,
        id: &TaskId,
        tag: &str,
    ) -> Result<Option<wire::Comment>> {
        let what = issue_what("read the comments of", id);
        let mut path = Some(format!("{}/comments?per_page=100", issue_path(id)));
        while let Some(p) = path.take() {
            let reply = self
                .inner
                .transport
                .send(&Call::get(p, what.clone()))
                .await?
                .success(&what)?;
            let comments: Vec<wire::Comment> = reply.json(&what)?;
            if let Some(found) = comments
                .into_iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.contains(tag)))
            {
                return Ok(Some(found));
            }
            path = wire::next_link(reply.header("link"));
        }
        Ok(None)
    }
}
