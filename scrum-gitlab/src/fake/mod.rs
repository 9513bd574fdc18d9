//! A fake GitLab: an in-process HTTP server that keeps projects in nested groups,
//! members with access levels, issues, labels, notes, label events, issue links,
//! merge requests with approvals and head pipelines, and answers in the JSON
//! shapes of GitLab's REST API v4 under `/api/v4`, with paging headers
//! (`x-next-page`, `x-total-pages`, `Link`), ETags, rate-limit headers,
//! injectable faults, webhooks, git over HTTP and a log of the requests it
//! served.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use scrum_gitlab::fake::{FakeGitLab, NewIssue};
//!
//! let gitlab = FakeGitLab::start().await;
//! gitlab.add_project("group/sub/project");
//! let id = gitlab.add_issue("group/sub/project", NewIssue::new("Add a widget").labels(&["ai-ready"]));
//! assert_eq!(id.to_string(), "gitlab:group/sub/project#1");
//! assert_eq!(gitlab.labels(&id), ["ai-ready"]);
//! // Point a client at `gitlab.url()` with `gitlab.token()`.
//! # });
//! ```
//!
//! # What it checks
//!
//! - Requests must carry the token as `PRIVATE-TOKEN` or `Authorization: Bearer`;
//!   anything else is a 401. Without the `api` scope ([`FakeGitLab::set_scopes`]),
//!   every write is a 403 `insufficient_scope`.
//! - Each answer spends one request of the rate limit's minute and carries
//!   `RateLimit-Limit`, `-Observed`, `-Remaining` and `-Reset`; with none left
//!   it is a 429 with `Retry-After` ([`FakeGitLab::set_rate_limit`]).
//! - Faults ([`Fault`]) apply to the next requests, one each, in the order
//!   injected; [`FakeGitLab::inject_for`] aims one at a method and path prefix.
//! - Label filters match label names whatever their case, and an issue keeps one
//!   label per name whatever its case.
//! - It runs on the tokio runtime that starts it, and stops when dropped.

mod git;
mod hooks;
mod json;
mod merge_requests;
mod mr_routes;
mod routes;
mod server;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scrum_core::{RepoName, TaskId, Timestamp};
use tokio::task::JoinHandle;

pub use state::{FakeJob, FakeMergeRequest, Fault, ServedRequest};

use server::{Shared, lock};
use state::{Issue, Note, Project, State};

/// Who opens, labels and edits issues through the helpers unless told otherwise:
/// an Owner of every project, so a ready label it adds is a maintainer's approval.
pub const MAINTAINER: &str = "gitlab-fake";

/// The username the token acts as: a Developer of every project.
pub const TOKEN_USER: &str = "scrum-orchestrator-bot";

/// GitLab's access levels.
pub mod access {
    /// Guest.
    pub const GUEST: u32 = 10;
    /// Reporter: reads and labels issues, may not push.
    pub const REPORTER: u32 = 20;
    /// Developer: pushes, may approve work here.
    pub const DEVELOPER: u32 = 30;
    /// Maintainer.
    pub const MAINTAINER: u32 = 40;
    /// Owner.
    pub const OWNER: u32 = 50;
}

/// An issue to add with [`FakeGitLab::add_issue`].
#[derive(Clone, Debug)]
pub struct NewIssue {
    title: String,
    body: String,
    labels: Vec<String>,
    created_at: Option<Timestamp>,
    author: Option<String>,
}

impl NewIssue {
    /// An open issue titled `title`, with no labels, opened now by [`MAINTAINER`].
    pub fn new(title: &str) -> NewIssue {
        NewIssue {
            title: title.to_string(),
            body: String::new(),
            labels: Vec::new(),
            created_at: None,
            author: None,
        }
    }

    /// With this description.
    pub fn body(mut self, body: &str) -> NewIssue {
        self.body = body.to_string();
        self
    }

    /// With these labels, added by its author.
    pub fn labels(mut self, labels: &[&str]) -> NewIssue {
        self.labels = labels.iter().map(|l| l.to_string()).collect();
        self
    }

    /// Opened at this time.
    pub fn created_at(mut self, at: Timestamp) -> NewIssue {
        self.created_at = Some(at);
        self
    }

    /// Opened (and its labels added) by `username` rather than [`MAINTAINER`].
    pub fn author(mut self, username: &str) -> NewIssue {
        self.author = Some(username.to_string());
        self
    }
}

/// The fake GitLab server. Stops when dropped.
pub struct FakeGitLab {
    state: Shared,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeGitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitLab")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGitLab {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The project path of a task id (`gitlab:group/project#1` → `group/project`).
fn path_of(id: &TaskId) -> String {
    id.repo_name().path().to_string()
}

impl FakeGitLab {
    /// The token [`FakeGitLab::start`] accepts.
    pub const TOKEN: &'static str = "glpat-fake-gitlab-token";

    /// Starts a server on `127.0.0.1`, port 0, on the current tokio runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeGitLab {
        let state = Arc::new(Mutex::new(State::new(FakeGitLab::TOKEN.into())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake GitLab");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let mut st = lock(&state);
            st.base_url = format!("http://{addr}");
            st.hook_queue = Some(tx);
            st.user(MAINTAINER);
            st.user(TOKEN_USER);
        }
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake GitLab stopped");
            }
        });
        let hooks = tokio::spawn(hooks::deliver(state.clone(), rx));
        FakeGitLab {
            state,
            addr,
            tasks: vec![server, hooks],
        }
    }

    /// GitLab's base URL, e.g. `http://127.0.0.1:41234` (the API is under
    /// `/api/v4`, git remotes at `/{group/project}.git`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &'static str {
        FakeGitLab::TOKEN
    }

    /// Adds a project at `path` (`group/sub/project`; its groups exist with it),
    /// with the default branch `main`, [`MAINTAINER`] as Owner and
    /// [`TOKEN_USER`] as Developer.
    pub fn add_project(&self, path: &str) {
        self.add_project_with_default_branch(path, "main");
    }

    /// As [`FakeGitLab::add_project`], with another default branch.
    pub fn add_project_with_default_branch(&self, path: &str, branch: &str) {
        let mut st = lock(&self.state);
        let id = st.id();
        let owner = st.user(MAINTAINER);
        let bot = st.user(TOKEN_USER);
        let members = BTreeMap::from([(owner, access::OWNER), (bot, access::DEVELOPER)]);
        st.projects.insert(
            path.to_string(),
            Project {
                id,
                path: path.to_string(),
                default_branch: branch.to_string(),
                members,
                issues: BTreeMap::new(),
                merge_requests: BTreeMap::new(),
            },
        );
    }

    /// Makes `username` a member of `project` with `level` ([`access`]); 0 removes
    /// them.
    pub fn add_member(&self, project: &str, username: &str, level: u32) {
        let mut st = lock(&self.state);
        let user = st.user(username);
        let p = st.project_mut(project);
        match level {
            0 => p.members.remove(&user),
            _ => p.members.insert(user, level),
        };
    }

    /// The scopes of the token, as `GET /personal_access_tokens/self` answers
    /// (`api` by default).
    pub fn set_scopes(&self, scopes: &[&str]) {
        lock(&self.state).scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Opens an issue; its labels are added by its author (label events). Its id
    /// is `gitlab:{project}#{iid}`.
    ///
    /// # Panics
    /// When the project was not added.
    pub fn add_issue(&self, project: &str, issue: NewIssue) -> TaskId {
        let mut st = lock(&self.state);
        let author = st.user(issue.author.as_deref().unwrap_or(MAINTAINER));
        let iid = new_issue(
            &mut st,
            project,
            &issue.title,
            &issue.body,
            issue.labels,
            author,
            issue.created_at,
        );
        task_id(project, iid)
    }

    /// Replaces the issue's labels as `username` would (label events by them).
    pub fn label_as(&self, id: &TaskId, labels: &[&str], username: &str) {
        self.change(id, |st, key, n| {
            let user = st.user(username);
            let at = st.now();
            let mut next = st.next_id;
            let mut ids = || {
                next += 1;
                next
            };
            let labels = labels.iter().map(|l| l.to_string()).collect();
            issue_of(st, key, n).relabel(labels, user, at, &mut ids);
            st.next_id = next;
            hooks::issue(st, key, n, "update");
        });
    }

    /// Replaces the issue's labels as [`MAINTAINER`] would.
    pub fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        self.label_as(id, labels, MAINTAINER);
    }

    /// Edits the issue's title and/or description as `username` would.
    pub fn edit_as(&self, id: &TaskId, username: &str, title: Option<&str>, body: Option<&str>) {
        self.change(id, |st, key, n| {
            let user = st.user(username);
            let at = st.now();
            let i = issue_of(st, key, n);
            if let Some(t) = title {
                i.title = t.to_string();
            }
            if let Some(b) = body {
                i.description = b.to_string();
            }
            i.edited = Some((user, at));
            i.updated_at = at;
            hooks::issue(st, key, n, "update");
        });
    }

    /// Closes the issue.
    pub fn close_issue(&self, id: &TaskId) {
        self.set_open(id, false);
    }

    /// Reopens the issue.
    pub fn reopen_issue(&self, id: &TaskId) {
        self.set_open(id, true);
    }

    fn set_open(&self, id: &TaskId, open: bool) {
        self.change(id, |st, key, n| {
            let at = st.now();
            let i = issue_of(st, key, n);
            i.open = open;
            i.updated_at = at;
            hooks::issue(st, key, n, if open { "reopen" } else { "close" });
        });
    }

    /// Adds a note to the issue as `username` would.
    pub fn add_note(&self, id: &TaskId, username: &str, body: &str) {
        self.change(id, |st, key, n| {
            let user = st.user(username);
            let (note_id, at) = (st.id(), st.now());
            let note = Note {
                id: note_id,
                body: body.to_string(),
                author: user,
                created_at: at,
                updated_at: at,
                system: false,
            };
            issue_of(st, key, n).notes.push(note.clone());
            hooks::note_on_issue(st, key, n, &note);
        });
    }

    /// Records that `blocker` blocks `id` (an issue link `is_blocked_by`).
    pub fn add_link_blocked_by(&self, id: &TaskId, blocker: &TaskId) {
        let blocker = (path_of(blocker), blocker.number());
        self.change(id, |st, key, n| {
            issue_of(st, key, n).blocked_by.push(blocker);
        });
    }

    /// The issue's labels, in order.
    pub fn labels(&self, id: &TaskId) -> Vec<String> {
        self.read(id, |i| i.labels.clone()).unwrap_or_default()
    }

    /// The bodies of the issue's notes (people's, not GitLab's system notes),
    /// oldest first.
    pub fn comments(&self, id: &TaskId) -> Vec<String> {
        self.read(id, |i| {
            i.notes
                .iter()
                .filter(|n| !n.system)
                .map(|n| n.body.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Whether the issue is open; `None` when there is no such issue.
    pub fn is_open(&self, id: &TaskId) -> Option<bool> {
        self.read(id, |i| i.open)
    }

    /// The issue's title and description; `None` when there is no such issue.
    pub fn text(&self, id: &TaskId) -> Option<(String, String)> {
        self.read(id, |i| (i.title.clone(), i.description.clone()))
    }

    /// Holds every API answer back by `latency` (as a GitLab far away would), until
    /// set again.
    pub fn set_latency(&self, latency: std::time::Duration) {
        lock(&self.state).latency = latency;
    }

    /// Queues `fault` for the next request.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push_back((None, fault));
    }

    /// Queues `fault` for the next `method` request whose path starts with
    /// `path_prefix` (the raw path, e.g. `/api/v4/projects/group%2Fproject/issues`).
    pub fn inject_for(&self, method: &str, path_prefix: &str, fault: Fault) {
        lock(&self.state)
            .faults
            .push_back((Some((method.to_string(), path_prefix.to_string())), fault));
    }

    /// The rate limit: `remaining` requests left until `reset_in` from now, then
    /// a fresh minute of `remaining.max(1000)`.
    pub fn set_rate_limit(&self, remaining: u64, reset_in: Duration) {
        let mut st = lock(&self.state);
        st.rate.limit = st.rate.limit.max(remaining);
        st.rate.remaining = remaining;
        st.rate.reset = u64::try_from(server::now_ms() / 1000).unwrap_or(0) + reset_in.as_secs();
    }

    /// Every request served, oldest first.
    pub fn requests(&self) -> Vec<ServedRequest> {
        lock(&self.state).log.clone()
    }

    /// Forgets the requests served so far.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }

    /// Sends webhooks (`Issue Hook`, `Merge Request Hook`, `Note Hook`,
    /// `Pipeline Hook`) for every later change to `url`, with `X-Gitlab-Token:
    /// secret`.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        lock(&self.state).hook = Some((url.to_string(), secret.to_string()));
    }

    /// The webhook deliveries made so far: the event and the status answered (0
    /// when the URL did not answer).
    pub fn deliveries(&self) -> Vec<(String, u16)> {
        lock(&self.state).deliveries.clone()
    }

    /// Serves the bare repositories under `root` (`{root}/{group/project}.git`) at
    /// `{url}/{group/project}.git`, to anyone giving the token as the HTTP basic
    /// password.
    pub fn serve_git_from(&self, root: &std::path::Path) {
        lock(&self.state).git_root = Some(root.to_path_buf());
    }

    fn read<T>(&self, id: &TaskId, f: impl FnOnce(&Issue) -> T) -> Option<T> {
        let st = lock(&self.state);
        st.projects
            .get(&path_of(id))?
            .issues
            .get(&id.number())
            .map(f)
    }

    fn change(&self, id: &TaskId, f: impl FnOnce(&mut State, &str, u64)) {
        let mut st = lock(&self.state);
        let key = path_of(id);
        if !st
            .projects
            .get(&key)
            .is_some_and(|p| p.issues.contains_key(&id.number()))
        {
            panic!("the fake GitLab has no issue {id}");
        }
        f(&mut st, &key, id.number());
    }
}

fn task_id(project: &str, iid: u64) -> TaskId {
    let repo: RepoName = format!("gitlab:{project}")
        .parse()
        .unwrap_or_else(|e| panic!("{project} is no valid GitLab project path: {e}"));
    TaskId::in_repo(&repo, iid)
}

fn issue_of<'a>(st: &'a mut State, key: &str, n: u64) -> &'a mut Issue {
    st.project_mut(key)
        .issues
        .get_mut(&n)
        .unwrap_or_else(|| panic!("the fake GitLab has no issue #{n} in {key}"))
}

/// Opens an issue in `key` by `author`, its labels added by them; answers its iid.
pub(crate) fn new_issue(
    st: &mut State,
    key: &str,
    title: &str,
    body: &str,
    labels: Vec<String>,
    author: u64,
    created_at: Option<Timestamp>,
) -> u64 {
    let id = st.id();
    let now = st.now();
    let at = created_at.unwrap_or(now);
    let mut next = st.next_id;
    let mut ids = || {
        next += 1;
        next
    };
    let p = st.project_mut(key);
    let iid = p.issues.keys().next_back().copied().unwrap_or(0) + 1;
    let mut issue = Issue {
        id,
        iid,
        title: title.to_string(),
        description: body.to_string(),
        open: true,
        labels: Vec::new(),
        author,
        created_at: at,
        updated_at: at,
        edited: None,
        notes: Vec::new(),
        label_events: Vec::new(),
        blocked_by: Vec::new(),
    };
    issue.relabel(labels, author, at, &mut ids);
    p.issues.insert(iid, issue);
    st.next_id = next;
    hooks::issue(st, key, iid, "open");
    iid
}
