//! What the fake GitHub keeps: repositories, issues (and pull requests, which GitHub
//! also lists as issues), labels, comments, branches, the rate limit and the log.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use scrum_core::Timestamp;

/// A failure the fake serves instead of (or on top of) the next answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status code (500, 502, 503…) and GitHub's error body.
    Status(u16),
    /// Wait this long before answering: a client with a shorter timeout times out.
    Delay(Duration),
    /// A secondary rate limit: 403 with `retry-after: retry_after_secs`.
    SecondaryRateLimit {
        /// The `retry-after` header's value, in seconds.
        retry_after_secs: u64,
    },
    /// Answer normally, but cut the JSON body in half.
    TruncatedJson,
    /// Carry the request out, then answer 502: a write that happened although the
    /// client was told it failed (as when a gateway times out).
    LostAnswer,
}

/// One request the fake served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path and query, e.g. `/repos/acme/widgets/issues?page=2`.
    pub path: String,
    /// The `If-None-Match` header the client sent.
    pub if_none_match: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Rate-limit points of the REST budget the request cost (0 for a 304 and
    /// for a GraphQL query).
    pub points: u64,
    /// Points of the GraphQL budget the request cost (0 for a REST request).
    pub graphql_points: u64,
    /// The installation whose token the request carried, when the fake acts as
    /// a GitHub App ([`crate::fake::FakeGitHub::act_as_app`]).
    pub installation: Option<u64>,
    /// The repositories (lower-case names) the installation token it carried was
    /// limited to; `None` for a token of the whole installation, or no token.
    pub token_scope: Option<Vec<String>>,
}

/// A queued fault and the requests it applies to.
#[derive(Debug)]
pub(crate) struct QueuedFault {
    pub(crate) method: Option<String>,
    pub(crate) path_prefix: Option<String>,
    pub(crate) fault: Fault,
}

impl QueuedFault {
    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// An issue (or pull request) as the fake keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeIssue {
    /// The issue number in its repository.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Label names, in the order they were added.
    pub labels: Vec<String>,
    /// Open or closed.
    pub open: bool,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Its conversation comments, oldest first.
    pub comments: Vec<FakeComment>,
    /// Set when this "issue" is a pull request.
    pub pull: Option<FakePull>,
    /// Who opened it.
    pub author: String,
    /// Who last edited its body, and when (GraphQL's `editor` and `lastEditedAt`).
    pub last_edit: Option<(String, Timestamp)>,
    /// Its events (`labeled`, `unlabeled`, `renamed`), oldest first.
    pub events: Vec<FakeEvent>,
    pub(crate) id: u64,
}

/// One entry of an issue's events, as `/repos/{repo}/issues/{n}/events` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEvent {
    /// `labeled`, `unlabeled` or `renamed`.
    pub event: String,
    /// Who did it (a login).
    pub actor: String,
    /// The label, for `labeled` and `unlabeled`.
    pub label: Option<String>,
    /// The old and new title, for `renamed`.
    pub rename: Option<(String, String)>,
    /// When.
    pub created_at: Timestamp,
    pub(crate) id: u64,
}

impl FakeEvent {
    /// `actor` added (`labeled`) or removed (`unlabeled`) `label` at `at`.
    pub(crate) fn label(event: &str, actor: &str, label: &str, at: Timestamp) -> FakeEvent {
        FakeEvent {
            event: event.to_string(),
            actor: actor.to_string(),
            label: Some(label.to_string()),
            rename: None,
            created_at: at,
            id: 0,
        }
    }

    /// `actor` retitled the issue from `from` to `to` at `at`.
    pub(crate) fn renamed(actor: &str, from: &str, to: &str, at: Timestamp) -> FakeEvent {
        FakeEvent {
            event: "renamed".to_string(),
            actor: actor.to_string(),
            label: None,
            rename: Some((from.to_string(), to.to_string())),
            created_at: at,
            id: 0,
        }
    }
}

/// A conversation comment on an issue or pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeComment {
    /// GitHub's id of the comment.
    pub id: u64,
    /// Who wrote it.
    pub author: String,
    /// Its text.
    pub body: String,
    /// When it was written.
    pub created_at: Timestamp,
    /// When it was last edited (or written).
    pub updated_at: Timestamp,
}

/// A review comment: on a line of a file of a pull request's diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeReviewComment {
    /// GitHub's id of the comment.
    pub id: u64,
    /// Who wrote it.
    pub author: String,
    /// The file it is on.
    pub path: String,
    /// The line it is on.
    pub line: u64,
    /// Its text.
    pub body: String,
    /// When it was written.
    pub created_at: Timestamp,
}

/// The pull-request side of a [`FakeIssue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePull {
    /// The pull request number.
    pub number: u64,
    /// The branch it merges (`head.ref`).
    pub head: String,
    /// The branch it merges into (`base.ref`).
    pub base: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Whether it is open.
    pub open: bool,
    /// Whether it was merged (closed by the merge).
    pub merged: bool,
    /// Its reviews, oldest first: (reviewer, `APPROVED`, `CHANGES_REQUESTED` or
    /// `COMMENTED`, what the reviewer wrote).
    pub reviews: Vec<(String, String, String)>,
    /// Its review comments, oldest first.
    pub review_comments: Vec<FakeReviewComment>,
    /// Its head commit, as last seen.
    pub head_sha: String,
    /// Its base branch's commit, as last seen.
    pub base_sha: String,
    /// Whether it merges cleanly: set by [`crate::fake::FakeGitHub::set_mergeable`],
    /// or computed by merging head into base where the fake hosts git; `None`
    /// (GitHub's `null`) while unknown.
    pub mergeable: Option<bool>,
    /// The head commits continuous integration ran on, oldest first.
    pub ci_ran: Vec<String>,
}

impl FakePull {
    /// An open pull request from `head` into `base`, its commits not seen yet.
    pub(crate) fn new(
        number: u64,
        head: String,
        base: String,
        title: String,
        body: String,
    ) -> FakePull {
        FakePull {
            number,
            head,
            base,
            title,
            body,
            open: true,
            merged: false,
            reviews: Vec::new(),
            review_comments: Vec::new(),
            head_sha: String::new(),
            base_sha: String::new(),
            mergeable: None,
            ci_ran: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FakeLabel {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) color: String,
}

#[derive(Debug)]
pub(crate) struct Repo {
    pub(crate) id: u64,
    pub(crate) full_name: String,
    pub(crate) default_branch: String,
    pub(crate) branches: BTreeSet<String>,
    /// By lower-case name: GitHub label names are case-insensitive.
    pub(crate) labels: BTreeMap<String, FakeLabel>,
    pub(crate) issues: BTreeMap<u64, FakeIssue>,
    pub(crate) comment_ids: u64,
    /// The token may read but not write: writes get GitHub's 403.
    pub(crate) read_only: bool,
    /// Collaborators' roles by lower-case login (`admin`, `maintain`, `write`,
    /// `triage`, `read`); anyone else reads the (public) repository.
    pub(crate) roles: BTreeMap<String, String>,
    /// Its webhooks.
    pub(crate) hooks: Vec<super::hooks::FakeHook>,
    /// The secrets of the hooks that deliver events, by hook id.
    pub(crate) delivering: BTreeMap<u64, String>,
    /// Check runs and commit statuses by commit, required checks by branch, CI.
    pub(crate) checks: super::checks::RepoChecks,
    /// Branches' commits and files where the fake hosts no git (see
    /// `super::heads`).
    pub(crate) commits: BTreeMap<String, super::heads::Branch>,
}

impl Repo {
    pub(crate) fn next_number(&self) -> u64 {
        self.issues.keys().next_back().map_or(1, |n| n + 1)
    }
}

/// The primary rate limit (one per token, like GitHub's `core` resource).
#[derive(Debug)]
pub(crate) struct RateLimit {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Epoch seconds.
    pub(crate) reset: u64,
    pub(crate) window: Duration,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) base_url: String,
    pub(crate) token: String,
    /// By lower-case `owner/name`.
    pub(crate) repos: BTreeMap<String, Repo>,
    pub(crate) next_id: u64,
    pub(crate) rate: RateLimit,
    pub(crate) points_spent: u64,
    /// Points of the GraphQL budget spent (GitHub keeps it apart from REST's).
    pub(crate) graphql_points_spent: u64,
    /// How long every answer is held back, as a distant GitHub would.
    pub(crate) latency: Duration,
    pub(crate) faults: VecDeque<QueuedFault>,
    pub(crate) log: Vec<ServedRequest>,
    /// Where pushed branches live: `{git_root}/{owner}/{name}.git` (see
    /// `FakeGitHub::serve_git_from`).
    pub(crate) git_root: Option<std::path::PathBuf>,
    /// Issue dependencies: the blockers of (lower-case `owner/name`, number).
    pub(crate) blocked_by: BTreeMap<(String, u64), Vec<scrum_core::TaskId>>,
    /// A classic token's scopes, sent as `X-OAuth-Scopes`; `None`: a fine-grained token.
    pub(crate) scopes: Option<String>,
    /// Set when the fake acts as a GitHub App.
    pub(crate) app: Option<super::app::FakeApp>,
    /// Webhook deliveries waiting to be sent (`super::deliver`).
    pub(crate) outbox: Vec<super::deliver::Delivery>,
    /// Deliveries sent: (event, the receiver's status; 0 when unreachable).
    pub(crate) delivered: Vec<(String, u16)>,
}

impl State {
    pub(crate) fn new(token: String, now_secs: u64) -> State {
        let window = Duration::from_secs(3600);
        State {
            base_url: String::new(),
            token,
            repos: BTreeMap::new(),
            next_id: 1000,
            rate: RateLimit {
                limit: 5000,
                remaining: 5000,
                reset: now_secs + window.as_secs(),
                window,
            },
            points_spent: 0,
            graphql_points_spent: 0,
            latency: Duration::ZERO,
            faults: VecDeque::new(),
            log: Vec::new(),
            git_root: None,
            blocked_by: BTreeMap::new(),
            scopes: None,
            app: None,
            outbox: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// Takes the first queued fault that applies to this request.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|f| f.matches(method, path))?;
        self.faults.remove(i).map(|f| f.fault)
    }

    /// Records `event` on issue `number` of `repo`, with a fresh id.
    pub(crate) fn record_event(&mut self, repo: &str, number: u64, mut event: FakeEvent) {
        event.id = self.fresh_id();
        if let Some(i) = self.repo_mut(repo).and_then(|r| r.issues.get_mut(&number)) {
            i.events.push(event);
        }
    }

    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    pub(crate) fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    /// Ensures `name` exists in `repo`, creating it with `color`; returns its canonical name.
    pub(crate) fn ensure_label(&mut self, repo: &str, name: &str, color: &str) -> Option<String> {
        let id = self.fresh_id();
        let r = self.repo_mut(repo)?;
        let label = r
            .labels
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| FakeLabel {
                id,
                name: name.to_string(),
                color: color.to_string(),
            });
        Some(label.name.clone())
    }
}
