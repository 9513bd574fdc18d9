//! A fake GitHub: an in-process HTTP server that keeps repositories, issues, labels,
//! comments, branches and pull requests, and answers in the JSON shapes of GitHub's
//! REST API, with ETags, `Link` paging, rate-limit headers, injectable faults, a log
//! of the requests it served and a counter of rate-limit points spent.
//!
//! Every crate's tests and the demo use it in place of `api.github.com`:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use scrum_github::fake::{FakeGitHub, NewIssue};
//! use scrum_core::Timestamp;
//!
//! let github = FakeGitHub::start().await;
//! github.add_repo("acme/widgets");
//! let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget").labels(&["ai-ready"]).created_at(Timestamp(1_000)));
//! assert_eq!(id.to_string(), "acme/widgets#1");
//! assert_eq!(github.labels(&id), vec!["ai-ready"]);
//! // Point a client at `github.url()` with `github.token()`.
//! # });
//! ```
//!
//! # What it checks and counts
//!
//! - Requests must carry `Authorization: Bearer <token>`; anything else is a 401.
//!   Acting as a GitHub App ([`FakeGitHub::act_as_app`]), it takes instead the
//!   app's JWT (its RS256 signature checked with the app's public key) on
//!   `/app/...` and `/repos/{o}/{r}/installation`, and installation tokens
//!   elsewhere: an expired one is a 401, one used outside its installation's
//!   owner or its repositories a 404.
//! - Each answered REST request costs one point of the primary rate limit, except a
//!   304 (an `If-None-Match` that matched), which GitHub does not count, and errors
//!   the fake injected. [`FakeGitHub::points_spent`] is the total. A GraphQL query
//!   costs points of GraphQL's own budget ([`FakeGitHub::graphql_points_spent`]).
//! - `POST /graphql` answers the batched query the client sends for trust
//!   (repositories and issues by alias; see `graphql.rs`).
//! - [`FakeGitHub::set_latency`] holds every answer back, as a distant GitHub would.
//! - Pull requests have head commits (their branch's, real ones where the fake
//!   hosts git: [`FakeGitHub::serve_git_from`]), a computed or set `mergeable`,
//!   checks ([`FakeGitHub::set_check`], [`FakeGitHub::add_status`],
//!   [`FakeGitHub::require_checks`], CI scripts that decide each new head's checks:
//!   [`FakeGitHub::set_ci`], [`FakeGitHub::ci_fails_while`]), comments and review
//!   comments by people ([`FakeGitHub::comment_on_pull`],
//!   [`FakeGitHub::review_comment`]); an Actions job's log is served through a
//!   redirect, as GitHub serves it.
//! - [`FakeGitHub::deliver_to`] adds a hook that receives signed deliveries of the
//!   events follow-ups answer to ([`FakeGitHub::deliveries`] lists them).
//! - Faults ([`Fault`]) apply to the next requests, one each, in the order injected;
//!   [`FakeGitHub::inject_for`] aims one at a method and path. (A plain octocrab
//!   client retries 5xx by itself; build it with `RetryConfig::None` to see each.)
//! - It runs on the tokio runtime that starts it, and stops when dropped.

mod answer;
mod app;
mod check_routes;
mod checks;
mod comments;
mod deliver;
mod dependencies;
mod git;
mod graphql;
mod heads;
mod hooks;
mod json;
mod pulls;
mod routes;
mod server;
mod state;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scrum_core::{TaskId, Timestamp};
use tokio::task::JoinHandle;

pub use app::IssuedToken;
pub use checks::{At, CiRun, FakeCheck};
pub use hooks::FakeHook;
pub use state::{
    FakeComment, FakeEvent, FakeIssue, FakePull, FakeReviewComment, Fault, ServedRequest,
};

use server::{Shared, lock};
use state::{Repo, State};

/// The login that opens, labels and edits issues through the helpers unless told
/// otherwise ([`NewIssue::author`], [`FakeGitHub::label_as`],
/// [`FakeGitHub::edit_as`]): an admin of every repository, so a ready label it
/// applies is a maintainer's approval.
pub const MAINTAINER: &str = "octo-fake";

/// The login the token acts as: labels, comments and edits the client writes are
/// its. It has write permission on every repository.
pub const TOKEN_USER: &str = "scrum-orchestrator-bot";

/// An issue to add with [`FakeGitHub::add_issue`].
#[derive(Clone, Debug)]
pub struct NewIssue {
    title: String,
    body: String,
    labels: Vec<String>,
    created_at: Option<Timestamp>,
    pull_request: Option<String>,
    author: Option<String>,
}

impl NewIssue {
    /// An open issue titled `title`, with no labels, opened now.
    pub fn new(title: &str) -> NewIssue {
        NewIssue {
            title: title.to_string(),
            body: String::new(),
            labels: Vec::new(),
            created_at: None,
            pull_request: None,
            author: None,
        }
    }

    /// Opened (and its labels applied) by `login` rather than [`MAINTAINER`].
    pub fn author(mut self, login: &str) -> NewIssue {
        self.author = Some(login.to_string());
        self
    }

    /// With this body.
    pub fn body(mut self, body: &str) -> NewIssue {
        self.body = body.to_string();
        self
    }

    /// With these labels (created in the repository when missing).
    pub fn labels(mut self, labels: &[&str]) -> NewIssue {
        self.labels = labels.iter().map(|l| l.to_string()).collect();
        self
    }

    /// Opened at this time (ordering of ready issues is by it).
    pub fn created_at(mut self, at: Timestamp) -> NewIssue {
        self.created_at = Some(at);
        self
    }

    /// A pull request from branch `head` (created when missing) into the default
    /// branch, rather than an issue. GitHub lists pull requests among issues.
    pub fn pull_request(mut self, head: &str) -> NewIssue {
        self.pull_request = Some(head.to_string());
        self
    }
}

/// The fake GitHub server. Stops when dropped.
pub struct FakeGitHub {
    state: Shared,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitHub {
    /// The token [`FakeGitHub::start`] accepts.
    pub const TOKEN: &'static str = "fake-github-token";

    /// Starts a server on `127.0.0.1`, port 0, on the current tokio runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeGitHub {
        let now_secs = u64::try_from(server::now_ms() / 1000).unwrap_or(0);
        let state = Arc::new(Mutex::new(State::new(FakeGitHub::TOKEN.into(), now_secs)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake GitHub");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        lock(&state).base_url = format!("http://{addr}");
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake GitHub stopped");
            }
        });
        FakeGitHub { state, addr, task }
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234` (what `GITHUB_API_URL` would be).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base of the git remotes served over HTTP (`{git_url}/{owner}/{name}.git`,
    /// see [`FakeGitHub::serve_git_from`]): what a worker's `GIT_BASE_URL` would be.
    pub fn git_url(&self) -> String {
        format!("http://{}/git", self.addr)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &'static str {
        FakeGitHub::TOKEN
    }

    /// Adds a repository whose default branch is `main`. Adding it again changes nothing.
    ///
    /// # Panics
    /// When `repo` is not `owner/name`.
    pub fn add_repo(&self, repo: &str) {
        self.add_repo_with_default_branch(repo, "main");
    }

    /// Adds a repository whose default branch is `branch`.
    ///
    /// # Panics
    /// When `repo` is not `owner/name`.
    pub fn add_repo_with_default_branch(&self, repo: &str, branch: &str) {
        let name: scrum_core::RepoName = repo.parse().expect("owner/name");
        let mut st = lock(&self.state);
        let id = st.fresh_id();
        st.repos
            .entry(name.as_str().to_ascii_lowercase())
            .or_insert_with(|| Repo {
                id,
                full_name: name.to_string(),
                default_branch: branch.to_string(),
                branches: BTreeSet::from([branch.to_string()]),
                labels: Default::default(),
                issues: Default::default(),
                comment_ids: 0,
                read_only: false,
                roles: [
                    (MAINTAINER.to_string(), "admin".to_string()),
                    (TOKEN_USER.to_string(), "write".to_string()),
                ]
                .into(),
                hooks: Vec::new(),
                delivering: Default::default(),
                checks: Default::default(),
                commits: Default::default(),
            });
    }

    /// Gives `login` a role in `repo` (`admin`, `maintain`, `write`, `triage`,
    /// `read` or `none`), as `/collaborators/{login}/permission` reports it. Anyone
    /// without one reads the repository (`read`).
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn set_role(&self, repo: &str, login: &str, role: &str) {
        lock(&self.state)
            .repo_mut(repo)
            .expect("add_repo first")
            .roles
            .insert(login.to_ascii_lowercase(), role.to_string());
    }

    /// Makes the token read-only on `repo` (or writable again): every write is
    /// answered as GitHub answers a token without write access, `403 Resource not
    /// accessible by personal access token`, and the repository's `permissions`
    /// say `push: false, triage: false`.
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn set_read_only(&self, repo: &str, read_only: bool) {
        lock(&self.state)
            .repo_mut(repo)
            .expect("add_repo first")
            .read_only = read_only;
    }

    /// Adds a branch (as a push would) so a pull request can be opened from it.
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn add_branch(&self, repo: &str, branch: &str) {
        let mut st = lock(&self.state);
        let r = st.repo_mut(repo).expect("add_repo first");
        r.branches.insert(branch.to_string());
    }

    /// Lets branches pushed to the bare repositories `{root}/{owner}/{name}.git` count
    /// as the repository's branches, as a push to GitHub would: a worker that pushes
    /// to a local remote can then open its pull request here. The fake also serves
    /// them over HTTP at [`FakeGitHub::git_url`] (`git http-backend`), checking the
    /// token each request carries as GitHub does.
    pub fn serve_git_from(&self, root: &std::path::Path) {
        lock(&self.state).git_root = Some(root.to_path_buf());
    }

    /// Opens an issue (or pull request) and returns its id.
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn add_issue(&self, repo: &str, issue: NewIssue) -> TaskId {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        let mut labels = Vec::new();
        for l in &issue.labels {
            labels.push(st.ensure_label(repo, l, "ededed").expect("add_repo first"));
        }
        let id = st.fresh_id();
        let r = st.repo_mut(repo).expect("add_repo first");
        let number = r.next_number();
        let pull = issue.pull_request.map(|head| {
            r.branches.insert(head.clone());
            FakePull::new(
                number,
                head,
                r.default_branch.clone(),
                issue.title.clone(),
                issue.body.clone(),
            )
        });
        let created_at = issue.created_at.unwrap_or(now);
        let author = issue.author.unwrap_or_else(|| MAINTAINER.to_string());
        r.issues.insert(
            number,
            FakeIssue {
                number,
                title: issue.title,
                body: issue.body,
                labels: labels.clone(),
                open: true,
                created_at,
                updated_at: created_at.max(now),
                comments: Vec::new(),
                pull,
                author: author.clone(),
                last_edit: None,
                events: Vec::new(),
                id,
            },
        );
        let full_name = r.full_name.clone();
        for l in labels {
            st.record_event(repo, number, FakeEvent::label("labeled", &author, &l, now));
        }
        TaskId::new(&full_name, number).expect("a valid repository name")
    }

    /// Replaces the issue's labels as `login` would: a `labeled` event by `login`
    /// for each label the issue did not have, an `unlabeled` one for each it loses.
    pub fn label_as(&self, id: &TaskId, labels: &[&str], login: &str) {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        let names: Vec<String> = labels
            .iter()
            .filter_map(|l| st.ensure_label(id.repo(), l, "ededed"))
            .collect();
        let Some(before) = st
            .repo(id.repo())
            .and_then(|r| r.issues.get(&id.number()))
            .map(|i| i.labels.clone())
        else {
            return;
        };
        let has = |set: &[String], l: &str| set.iter().any(|x| x.eq_ignore_ascii_case(l));
        for l in before.iter().filter(|l| !has(&names, l)) {
            let event = FakeEvent::label("unlabeled", login, l, now);
            st.record_event(id.repo(), id.number(), event);
        }
        for l in names.iter().filter(|l| !has(&before, l)) {
            let event = FakeEvent::label("labeled", login, l, now);
            st.record_event(id.repo(), id.number(), event);
        }
        if let Some(i) = st
            .repo_mut(id.repo())
            .and_then(|r| r.issues.get_mut(&id.number()))
        {
            i.labels = names;
            i.updated_at = now;
        }
    }

    /// Edits the issue as `login` would: a new body makes `login` its last editor
    /// (GraphQL's `editor`, `lastEditedAt`), a new title records a `renamed` event.
    /// `None` leaves that part as it is.
    pub fn edit_as(&self, id: &TaskId, login: &str, title: Option<&str>, body: Option<&str>) {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        let Some(old) = st
            .repo(id.repo())
            .and_then(|r| r.issues.get(&id.number()))
            .map(|i| i.title.clone())
        else {
            return;
        };
        if let Some(t) = title.filter(|t| *t != old) {
            let renamed = FakeEvent::renamed(login, &old, t, now);
            st.record_event(id.repo(), id.number(), renamed);
        }
        if let Some(i) = st
            .repo_mut(id.repo())
            .and_then(|r| r.issues.get_mut(&id.number()))
        {
            if let Some(t) = title {
                i.title = t.to_string();
            }
            if let Some(b) = body {
                i.body = b.to_string();
                i.last_edit = Some((login.to_string(), now));
            }
            i.updated_at = now;
        }
    }

    fn with_issue<T>(&self, id: &TaskId, f: impl FnOnce(&mut FakeIssue) -> T) -> Option<T> {
        let mut st = lock(&self.state);
        st.repo_mut(id.repo())
            .and_then(|r| r.issues.get_mut(&id.number()))
            .map(f)
    }

    /// The issue as it is now.
    pub fn issue(&self, id: &TaskId) -> Option<FakeIssue> {
        self.with_issue(id, |i| i.clone())
    }

    /// The issue's labels (empty for an unknown issue).
    pub fn labels(&self, id: &TaskId) -> Vec<String> {
        self.issue(id).map(|i| i.labels).unwrap_or_default()
    }

    /// The issue's comment bodies, oldest first.
    pub fn comments(&self, id: &TaskId) -> Vec<String> {
        self.issue(id)
            .map(|i| i.comments.into_iter().map(|c| c.body).collect())
            .unwrap_or_default()
    }

    /// How many comments on the issue contain `needle`.
    pub fn comments_containing(&self, id: &TaskId, needle: &str) -> usize {
        let comments = self.comments(id);
        comments.iter().filter(|c| c.contains(needle)).count()
    }

    /// Whether the issue is open (`None` for an unknown issue).
    pub fn is_open(&self, id: &TaskId) -> Option<bool> {
        self.issue(id).map(|i| i.open)
    }

    /// A repository label's colour (`None` when the label does not exist).
    pub fn label_color(&self, repo: &str, label: &str) -> Option<String> {
        let st = lock(&self.state);
        st.repo(repo)
            .and_then(|r| r.labels.get(&label.to_ascii_lowercase()))
            .map(|l| l.color.clone())
    }

    /// Closes the issue, as a person would.
    pub fn close_issue(&self, id: &TaskId) {
        self.set_open(id, false);
    }

    /// Reopens the issue, as a person would.
    pub fn reopen_issue(&self, id: &TaskId) {
        self.set_open(id, true);
    }

    fn set_open(&self, id: &TaskId, open: bool) {
        let now = Timestamp(server::now_ms());
        self.with_issue(id, |i| {
            i.open = open;
            i.updated_at = now;
        });
    }

    /// Posts a comment on the issue, as a person would ([`MAINTAINER`]).
    pub fn add_comment(&self, id: &TaskId, body: &str) {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        let comment_id = st.fresh_id();
        if let Some(i) = st
            .repo_mut(id.repo())
            .and_then(|r| r.issues.get_mut(&id.number()))
        {
            i.comments.push(FakeComment {
                id: comment_id,
                author: MAINTAINER.to_string(),
                body: body.to_string(),
                created_at: now,
                updated_at: now,
            });
            i.updated_at = now;
        }
    }

    /// Replaces the issue's labels, as a person would (missing labels are created):
    /// [`FakeGitHub::label_as`] by [`MAINTAINER`].
    pub fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        self.label_as(id, labels, MAINTAINER);
    }

    /// Records `blocker` (of any repository) as blocking `id`, as GitHub's issue
    /// dependencies do: `id`'s `issue_dependencies_summary` counts it while it is
    /// open, and `/issues/{n}/dependencies/blocked_by` lists it.
    pub fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        let list = st
            .blocked_by
            .entry((id.repo().to_ascii_lowercase(), id.number()))
            .or_default();
        if !list.contains(blocker) {
            list.push(blocker.clone());
        }
        if let Some(i) = st
            .repo_mut(id.repo())
            .and_then(|r| r.issues.get_mut(&id.number()))
        {
            i.updated_at = now;
        }
    }

    /// Merges pull request `number` of `repo`, as a maintainer would: it is closed
    /// and merged.
    pub fn merge_pull(&self, repo: &str, number: u64) {
        self.change_pull(repo, number, |p| {
            p.open = false;
            p.merged = true;
        });
    }

    /// Reviews pull request `number` of `repo` as `login`: `APPROVED`,
    /// `CHANGES_REQUESTED` or `COMMENTED`.
    pub fn review_pull(&self, repo: &str, number: u64, login: &str, state: &str) {
        self.review_pull_saying(repo, number, login, state, "");
    }

    /// As [`FakeGitHub::review_pull`], with the review's text (`body`).
    pub fn review_pull_saying(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        state: &str,
        body: &str,
    ) {
        self.change_pull(repo, number, |p| {
            p.reviews
                .push((login.to_string(), state.to_string(), body.to_string()));
        });
    }

    fn change_pull(&self, repo: &str, number: u64, f: impl FnOnce(&mut FakePull)) {
        let now = Timestamp(server::now_ms());
        let mut st = lock(&self.state);
        if let Some(i) = st.repo_mut(repo).and_then(|r| r.issues.get_mut(&number)) {
            if let Some(p) = i.pull.as_mut() {
                f(p);
                i.open = p.open;
                i.updated_at = now;
            }
        }
    }

    /// The repository's pull requests, open and closed, by number.
    pub fn pull_requests(&self, repo: &str) -> Vec<FakePull> {
        let st = lock(&self.state);
        st.repo(repo)
            .map(|r| r.issues.values().filter_map(|i| i.pull.clone()).collect())
            .unwrap_or_default()
    }

    /// Serves `fault` for the next request that has no earlier fault queued.
    pub fn inject(&self, fault: Fault) {
        self.inject_times(fault, 1);
    }

    /// Serves `fault` for the next `times` requests (after faults already queued).
    pub fn inject_times(&self, fault: Fault, times: usize) {
        let mut st = lock(&self.state);
        for _ in 0..times {
            st.faults.push_back(state::QueuedFault {
                method: None,
                path_prefix: None,
                fault: fault.clone(),
            });
        }
    }

    /// Serves `fault` for the next request with `method` (`"POST"`) whose path starts
    /// with `path_prefix` (`"/repos/acme/widgets/issues/1/comments"`).
    pub fn inject_for(&self, method: &str, path_prefix: &str, fault: Fault) {
        lock(&self.state).faults.push_back(state::QueuedFault {
            method: Some(method.to_string()),
            path_prefix: Some(path_prefix.to_string()),
            fault,
        });
    }

    /// Sets the primary rate limit: `remaining` points left until `reset_in` from now,
    /// when it refills. With 0, requests are refused with 403 until then.
    pub fn set_rate_limit(&self, remaining: u64, reset_in: Duration) {
        let now_secs = u64::try_from(server::now_ms() / 1000).unwrap_or(0);
        let mut st = lock(&self.state);
        st.rate.remaining = remaining.min(st.rate.limit);
        st.rate.reset = now_secs + reset_in.as_secs();
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<ServedRequest> {
        lock(&self.state).log.clone()
    }

    /// Forgets the request log (the points counter keeps counting).
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }

    /// Rate-limit points of the REST budget spent since the start.
    pub fn points_spent(&self) -> u64 {
        lock(&self.state).points_spent
    }

    /// Points of the GraphQL budget spent since the start (GitHub keeps the two
    /// apart; a query costs what its connections ask for, at least one point).
    pub fn graphql_points_spent(&self) -> u64 {
        lock(&self.state).graphql_points_spent
    }

    /// The id of the app [`FakeGitHub::act_as_app`] makes the fake.
    pub const APP_ID: u64 = 4242;

    /// The test app's private key (PKCS#1 PEM, as GitHub hands them out). A key for
    /// tests only: it is public.
    pub const APP_KEY_PEM: &'static str = include_str!("app_key.pem");

    /// Makes the fake a GitHub App ([`FakeGitHub::APP_ID`], signing with
    /// [`FakeGitHub::APP_KEY_PEM`]) and returns it: from now on the personal token
    /// is refused, the app's JWT finds installations and mints installation
    /// tokens (an hour long unless [`FakeGitHub::set_token_lifetime`]), and those
    /// tokens reach the repositories of their owner.
    ///
    /// # Panics
    /// Never: the test key is valid.
    pub fn act_as_app(&self) -> crate::GitHubApp {
        let app = crate::GitHubApp::from_pem(FakeGitHub::APP_ID, FakeGitHub::APP_KEY_PEM)
            .expect("the test app key is valid");
        lock(&self.state).app = Some(app::FakeApp {
            id: app.id(),
            public_key: app.public_key_der(),
            installations: Default::default(),
            tokens: Default::default(),
            lifetime: Duration::from_secs(3600),
        });
        app
    }

    /// Installs the app on `owner` (every repository of it) and returns the
    /// installation's id; installing it again returns the same id.
    ///
    /// # Panics
    /// When the fake does not act as an app.
    pub fn add_installation(&self, owner: &str) -> u64 {
        let mut st = lock(&self.state);
        let id = st.fresh_id();
        let app = st.app.as_mut().expect("act_as_app first");
        *app.installations
            .entry(owner.to_ascii_lowercase())
            .or_insert(id)
    }

    /// How long installation tokens minted from now on live (GitHub's: an hour).
    ///
    /// # Panics
    /// When the fake does not act as an app.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state)
            .app
            .as_mut()
            .expect("act_as_app first")
            .lifetime = lifetime;
    }

    /// The installation tokens minted so far, in no particular order.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.state)
            .app
            .as_ref()
            .map(|a| a.tokens.values().cloned().collect())
            .unwrap_or_default()
    }

    /// What the fake knows of installation token `token`, if it minted it.
    pub fn issued_token(&self, token: &str) -> Option<IssuedToken> {
        lock(&self.state)
            .app
            .as_ref()
            .and_then(|a| a.tokens.get(token).cloned())
    }

    /// Holds every answer back by `latency` from now on, as a GitHub far away
    /// would (requests in flight together wait together). Zero, the default,
    /// answers at once.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }
}
