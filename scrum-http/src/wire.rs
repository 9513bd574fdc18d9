//! The JSON the API speaks, shared by the server and [`crate::OrchestratorClient`].
//!
//! Fields marked *(Python API)* are those of the Python orchestrator this project
//! replaces, with its names and types; every field marked *added* is new, and
//! requests never require one (a client written for the Python orchestrator's API
//! leaves them out).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most entries one page of `/queue` lists.
pub const MAX_PAGE: usize = 1000;

/// The most log lines one `/workers/{id}/logs` call returns.
pub const MAX_LOG_LINES: u32 = 1000;

/// `{"error":{"code":…,"message":…}}`: every 4xx and 5xx body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code (see [`crate::error::codes`]).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// The query of `GET /work/next`. A parameter it does not name is refused
/// (`400 invalid_query`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
    /// The asking worker (Python API).
    pub worker_id: String,
    /// *Added*: how many seconds to wait for a task when none is ready (long poll;
    /// capped at the server's maximum, 30 s by default). Absent or 0: answer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
    /// *Added*: `heartbeat` when the worker will send heartbeats (its lease is then
    /// one lease period, renewed by each heartbeat); `run_time` (the default, what a
    /// client of the Python orchestrator's API gets) holds the task for the maximum
    /// run time without heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseMode>,
    /// *Added*: the sandbox the worker runs its agents in (`srt`, `bwrap` or
    /// `none`), which `GET /workers` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<scrum_core::AgentSandbox>,
}

/// How a claimer will keep its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseMode {
    /// The worker sends heartbeats.
    Heartbeat,
    /// The worker sends none; the task is held for the maximum run time.
    RunTime,
}

/// The answer of `GET /work/next`: `{"work_available":false}` or the work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextResponse {
    /// Whether a task was handed out (Python API).
    pub work_available: bool,
    /// The task, when one was.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub work: Option<WorkItem>,
    /// *Added* (Python API): no work because review gating holds it back
    /// (`MAX_PENDING_PRS`, `BLOCK_ON_CHANGES_REQUESTED`); absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// *Added* (Python API): why, while `blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of `GET /pr-review/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewStatusResponse {
    /// Whether review gating holds work back now.
    pub blocked: bool,
    /// Why, while `blocked`.
    pub reason: Option<String>,
    /// Repositories whose tasks wait.
    pub held_repositories: Vec<String>,
    /// `MAX_PENDING_PRS` (per repository; 0: no limit).
    pub max_pending_prs: usize,
    /// `MAX_PENDING_PRS_TOTAL`, when set.
    pub max_pending_prs_total: Option<usize>,
    /// `BLOCK_ON_CHANGES_REQUESTED`.
    pub block_on_changes_requested: bool,
    /// Pull requests still open (any review state).
    pub pending: usize,
    /// Every tracked pull request.
    pub pull_requests: Vec<scrum_core::pull_gate::TrackedPull>,
}

impl From<scrum_core::engine::ReviewStatus> for ReviewStatusResponse {
    fn from(s: scrum_core::engine::ReviewStatus) -> ReviewStatusResponse {
        ReviewStatusResponse {
            blocked: s.gate.holds_anything(),
            reason: s.gate.reason(),
            held_repositories: s.gate.repos.clone(),
            max_pending_prs: s.settings.max_pending,
            max_pending_prs_total: s.settings.max_pending_total,
            block_on_changes_requested: s.settings.block_on_changes_requested,
            pending: s.pulls.iter().filter(|p| p.state.is_pending()).count(),
            pull_requests: s.pulls,
        }
    }
}

/// The answer of `POST /pr-review/{state}/{number}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullReviewResponse {
    /// `ok`.
    pub status: String,
    /// The pull request as now counted.
    pub pull: scrum_core::pull_gate::TrackedPull,
    /// Whether review gating holds work back now.
    pub blocked: bool,
    /// Why, while `blocked`.
    pub reason: Option<String>,
}

/// A task handed to a worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The issue number (Python API).
    pub issue_number: u64,
    /// The issue title (Python API).
    pub title: String,
    /// The issue body (Python API).
    pub body: String,
    /// The issue's labels (Python API).
    pub labels: Vec<String>,
    /// The branch to push, `ai-feature/issue-N` (Python API).
    pub branch_name: String,
    /// `owner/repo` (Python API).
    pub repository: String,
    /// *Added*: the task id, `owner/repo#N`.
    pub task_id: String,
    /// *Added*: the lease's fencing token; send it back with every report.
    pub lease_token: String,
    /// *Added*: when the lease lapses unless renewed (RFC 3339, UTC).
    pub lease_expires_at: String,
    /// *Added*: the same instant in milliseconds since the Unix epoch.
    pub lease_expires_at_ms: i64,
    /// *Added*: this attempt's number, from 1.
    pub attempt: u32,
    /// *Added*: the most attempts this run may spend.
    pub max_attempts: u32,
    /// *Added*: how often to send `POST /work/heartbeat`, in seconds.
    pub heartbeat_interval_secs: f64,
    /// *Added*: the digest of `title` and `body` (`sha256:` and 64 hex digits, see
    /// `scrum_core::model::text_digest`): the approved text. A worker checks what
    /// it got against it before it runs anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_digest: Option<String>,
    /// *Added*: what is left of the issue's budget and its repository's monthly
    /// one (the smaller, US dollars), so the agent can cap itself; absent without
    /// budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_left_usd: Option<f64>,
    /// *Added*: on a follow-up run (a failed check, a conflict with the base
    /// branch, a request for changes, a collaborator's `/agent` comment on the
    /// issue's pull request): the pull request, the cause, who asked, the feedback
    /// (redacted) and the round; push to the same branch. Absent otherwise.
    /// (`rework`, with a request for changes only, from orchestrators before
    /// follow-ups.)
    #[serde(default, alias = "rework", skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<scrum_core::follow_up::FollowUp>,
    /// *Added*: when the orchestrator authenticates as a GitHub App, a short-lived
    /// installation token that reaches this repository alone (contents and pull
    /// requests, write): push the branch and open the pull request with it.
    /// Absent otherwise (the worker uses its own `GITHUB_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_token: Option<String>,
    /// *Added*: when `github_token` expires (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_token_expires_at: Option<String>,
    /// *Added*: the same instant in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_token_expires_at_ms: Option<i64>,
}

/// The fields every report names its task by ([`TaskRef::of`] builds them from
/// the work handed out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    /// The reporting worker (Python API).
    pub worker_id: String,
    /// The issue number (Python API).
    pub issue_number: u64,
    /// *Added*: `owner/repo`; needed when the worker holds the same number in two
    /// repositories, and to repeat a report safely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// *Added*: the lease token from `/work/next`. Without it the report is matched
    /// to the task the worker holds for that issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
}

impl TaskRef {
    /// How `worker` names `work` in its reports: by issue, repository and token.
    pub fn of(worker: &str, work: &WorkItem) -> TaskRef {
        TaskRef {
            worker_id: worker.to_string(),
            issue_number: work.issue_number,
            repository: Some(work.repository.clone()),
            lease_token: Some(work.lease_token.clone()),
        }
    }
}

/// The body of `POST /work/complete`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompleteRequest {
    /// Which task.
    #[serde(flatten)]
    pub task: TaskRef,
    /// The pull request opened (Python API; may be null when `success` is false).
    #[serde(default)]
    pub pr_url: Option<String>,
    /// Whether the work succeeded (Python API). `false` counts as a failed attempt.
    pub success: bool,
    /// Why it failed, when `success` is false (Python API, optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// *Added*: what the run cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// *Added*: model tokens the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// *Added*: times the review sent the work back before approving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<u32>,
}

/// The body of `POST /work/failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedRequest {
    /// Which task.
    #[serde(flatten)]
    pub task: TaskRef,
    /// What went wrong (Python API).
    pub error: String,
    /// *Added*: whether another attempt may succeed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// *Added*: what the failed attempt cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// *Added*: model tokens the failed attempt used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// The body of `POST /work/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Which task.
    #[serde(flatten)]
    pub task: TaskRef,
}

/// The answer of `POST /work/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Always `acknowledged`.
    pub status: String,
    /// The lease's new expiry (RFC 3339).
    pub lease_expires_at: String,
    /// The same in milliseconds since the Unix epoch.
    pub lease_expires_at_ms: i64,
    /// The issue was closed or unlabelled, or an operator cancelled the task: stop
    /// and release it.
    pub cancel: bool,
}

/// The body of `POST /work/release`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// Which task.
    #[serde(flatten)]
    pub task: TaskRef,
    /// Why the worker hands it back (needs clarification, out of credits, shutting
    /// down).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /work/clarify`: the issue needs a person's answers first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClarifyRequest {
    /// Which task.
    #[serde(flatten)]
    pub task: TaskRef,
    /// The questions to post on the issue (at least one).
    pub questions: Vec<String>,
    /// Why the issue cannot be done as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// What the check cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Model tokens the check used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// The answer of the reports (`/work/complete`, `/work/failed`, `/work/release`,
/// `/work/clarify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResponse {
    /// `acknowledged` (Python API).
    pub status: String,
    /// *Added*: the task id, `owner/repo#N`.
    pub task_id: String,
    /// *Added*: the task's state after the report: `completed`, `pending` (a retry
    /// will follow), `failed` or `cancelled`.
    pub state: String,
}

/// The body of `POST /admin/retry` and `POST /admin/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAction {
    /// `owner/repo`.
    pub repository: String,
    /// The issue number.
    pub issue_number: u64,
    /// Why (for cancel; recorded with the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /admin/drain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// The worker to drain.
    pub worker_id: String,
    /// `true` (the default) stops handing it new work; `false` undoes that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<bool>,
}

/// The answer of the operator actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionResponse {
    /// `ok`.
    pub status: String,
    /// The task after the action, for retry and cancel (a queue entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<QueueEntry>,
    /// Whether dispatch is paused now, for pause and resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// One round of a pull request: the run that opened it, or a follow-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundEntry {
    /// The run.
    pub run: u32,
    /// `opened` for the run that opened the pull request, else the follow-up's
    /// cause (`checks`, `conflicts`, `comments`, `changes-requested`).
    pub cause: String,
    /// `completed`, `running`, or the run's state.
    pub outcome: String,
}

/// One task as `GET /queue` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// `owner/repo#N`.
    pub task_id: String,
    /// The issue number.
    pub issue_number: u64,
    /// `owner/repo`.
    pub repository: String,
    /// The issue title.
    pub title: String,
    /// The issue's labels.
    pub labels: Vec<String>,
    /// `pending`, `in_progress`, `completed`, `failed` or `cancelled`.
    pub state: String,
    /// Attempts spent in this run.
    pub attempts: u32,
    /// The most attempts this run may spend.
    pub max_attempts: u32,
    /// The worker holding it, while in progress.
    pub worker_id: Option<String>,
    /// When this run was queued (RFC 3339).
    pub enqueued_at: String,
    /// When the task last changed (RFC 3339).
    pub updated_at: String,
    /// The last failure's reason (redacted).
    pub last_error: Option<String>,
    /// The pull request, once completed.
    pub pr_url: Option<String>,
    /// A cancellation waits for the holder to stop.
    pub cancel_requested: bool,
    /// *Added*: who approved the text the task works on (the ready label's author,
    /// or a later editor who may approve); `None` with `TRUST_MODE=off`.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// *Added*: the issue's text was changed since its approval by someone who may
    /// not approve: the task is held until a maintainer applies the label again.
    #[serde(default)]
    pub text_changed: bool,
    /// *Added*: who made that change, while `text_changed`.
    #[serde(default)]
    pub edited_by: Option<String>,
    /// *Added*: the issue's text holds what a reader cannot see (HTML comments,
    /// invisible or bidirectional characters, hidden HTML), which workers remove
    /// before an agent reads it.
    #[serde(default)]
    pub text_cleaned: bool,
    /// *Added*: what this run's attempts cost in US dollars, as reported.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// *Added*: model tokens this run's attempts used, as reported.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// *Added*: the task waits for its dependencies: blockers still open, or a
    /// problem (a cycle, a blocker that cannot be read) a person must look at.
    #[serde(default)]
    pub blocked: bool,
    /// *Added*: the blockers (`owner/repo#N`) not yet closed, while `blocked`.
    #[serde(default)]
    pub blocked_by: Vec<String>,
    /// *Added*: why it is blocked, for people (its blockers, and any problem).
    #[serde(default)]
    pub blocked_reason: Option<String>,
    /// *Added*: the lock keys the issue declares (`src/auth/` a directory,
    /// `docs/login.md` a file, `**` everything: a barrier path).
    #[serde(default)]
    pub locks: Vec<String>,
    /// *Added*: the in-progress task (`owner/repo#N`) whose overlapping lock a
    /// pending task waits for.
    #[serde(default)]
    pub waiting_for_lock: Option<String>,
    /// *Added*: the task's named state: `ready`, `scheduled` (waiting for its
    /// retry), `held` (for review or by its blockers), `running`, `completed`,
    /// `failed`, `cancelled` or `parked` (`state` is the group it belongs to).
    #[serde(default)]
    pub status: String,
    /// *Added*: while `scheduled`, when its next attempt may start (RFC 3339).
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// *Added*: why this run was queued: `ready` (the label), `retry` (an
    /// operator) or `follow_up` (its pull request needed one: `follow_up_cause`).
    #[serde(default)]
    pub run_cause: String,
    /// *Added*: every attempt of this run, oldest first.
    #[serde(default)]
    pub attempt_history: Vec<AttemptEntry>,
    /// *Added*: on a follow-up run, its cause: `checks`, `conflicts`,
    /// `comments` or `changes-requested`.
    #[serde(default)]
    pub follow_up_cause: Option<String>,
    /// *Added*: the rounds of its pull request, oldest first, each with its
    /// cause and outcome, when follow-ups ran on it (empty otherwise).
    #[serde(default)]
    pub rounds: Vec<RoundEntry>,
    /// *Added*: the follow-up rounds on its pull request are used up
    /// (`FOLLOW_UP_ROUNDS`): what is still wrong. Absent otherwise.
    #[serde(default)]
    pub follow_ups_exhausted: Option<String>,
}

/// One attempt of a task's run, as `GET /queue` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptEntry {
    /// The attempt's number (a handed-back attempt's number is used again).
    pub number: u32,
    /// Who held it.
    pub worker_id: String,
    /// When it was claimed (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339), or `None` while it runs.
    pub ended_at: Option<String>,
    /// `completed`, `failed`, `lost`, `released`, `parked`, `cancelled` or
    /// `withdrawn`; `None` while it runs.
    pub outcome: Option<String>,
    /// What went wrong, or why it was handed back (redacted).
    pub error: Option<String>,
    /// What it cost in US dollars, when the worker said.
    pub cost_usd: Option<f64>,
    /// Model tokens it used, when the worker said.
    pub tokens: Option<u64>,
}

/// The query of `GET /queue`: one page of each list. A parameter it does not name is refused
/// (`400 invalid_query`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Entries per list (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Entries of each list to skip, in task id order (default 0).
    #[serde(default)]
    pub offset: Option<usize>,
}

/// The answer of `GET /queue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueResponse {
    /// Waiting tasks (Python API).
    pub pending: Vec<QueueEntry>,
    /// Held tasks (Python API).
    pub in_progress: Vec<QueueEntry>,
    /// Finished tasks (Python API).
    pub completed: Vec<QueueEntry>,
    /// *Added*: tasks that failed for good.
    pub failed: Vec<QueueEntry>,
    /// *Added*: cancelled tasks.
    pub cancelled: Vec<QueueEntry>,
    /// *Added*: tasks parked until a person answers the worker's questions.
    #[serde(default)]
    pub parked: Vec<QueueEntry>,
    /// *Added*: how many tasks each state holds in all.
    pub counts: Value,
    /// *Added*: the page size used.
    pub limit: usize,
    /// *Added*: the offset used.
    pub offset: usize,
}

/// One worker as `GET /workers` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEntry {
    /// The worker's id (Python API).
    pub id: String,
    /// The address it calls from (Python API).
    pub ip: Option<String>,
    /// `busy`, `available`, `draining` or `offline` (Python API).
    pub status: String,
    /// The issue number it works on (Python API).
    pub current_task: Option<u64>,
    /// When it last called, RFC 3339 (Python API).
    pub last_seen: Option<String>,
    /// Its host's health: `healthy`, `degraded`, `unreachable` or `unknown`
    /// (Python API).
    pub health: String,
    /// *Added*: the task id it works on, `owner/repo#N`.
    pub current_task_id: Option<String>,
    /// *Added*: why the host is not healthy.
    pub health_reason: Option<String>,
    /// *Added*: tasks it completed, as the store counts them (across restarts).
    pub completed: u64,
    /// *Added*: attempts it reported failed, as the store counts them.
    pub failed: u64,
    /// *Added*: the sandbox its agents run in, as the worker said when it asked
    /// for work: `srt`, `bwrap`, or `none` (agents run unsandboxed); `null` when it
    /// never said (an older worker, or a configured host no worker calls from).
    #[serde(default)]
    pub sandbox: Option<scrum_core::AgentSandbox>,
}

/// The query of `GET /workers/{id}/logs`. A parameter it does not name is refused
/// (`400 invalid_query`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// How many of the last lines (default 100, at most 1000).
    #[serde(default)]
    pub lines: Option<u32>,
}

/// The answer of `GET /workers/{id}/logs`: the worker service's recent log on its host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsResponse {
    /// The worker (or host) asked for.
    pub worker_id: String,
    /// The `WORKER_IPS` host the log came from.
    pub host: String,
    /// How many lines were asked for.
    pub lines: u32,
    /// The log (`journalctl -u <unit> -n <lines>`).
    pub logs: String,
}

/// The answer of `GET /workers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersResponse {
    /// Every worker that called and every configured host (Python API).
    pub workers: Vec<WorkerEntry>,
}

/// The answer of `GET /health` (the fields a client reads; the server sends more).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `healthy`, or `degraded` when the store does not answer (Python API).
    pub status: String,
    /// Worker counts (Python API).
    pub workers: WorkerCounts,
    /// Task counts (Python API, plus `failed` and `cancelled`).
    pub queue: TaskCounts,
    /// Whether the last GitHub poll succeeded (Python API).
    pub github_connected: bool,
    /// *Added*: the server's version.
    #[serde(default)]
    pub version: String,
    /// *Added*: GitHub as this orchestrator sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubHealth>,
    /// *Added*: whether dispatch is paused and whether this orchestrator leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchHealth>,
    /// *Added*: whose text reaches an agent (`TRUST_MODE`: `labeler`, `author` or
    /// `off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_mode: Option<String>,
    /// *Added*: review gating (`blocked`, `reason`, `pending`, the settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_review: Option<Value>,
    /// *Added*: cost budgets (the settings, this month's spend per repository, the
    /// repositories paused and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Value>,
}

/// `github` in [`HealthResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubHealth {
    /// Whether the last poll succeeded.
    pub connected: bool,
    /// A fixed phrase when it did not (failing or rate limited); the reason itself
    /// is in the orchestrator's log, as `/health` carries no backend error text.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the last successful poll was (RFC 3339); `None` before the first, and
    /// on an orchestrator that does not lead.
    #[serde(default)]
    pub last_poll: Option<String>,
    /// How write-back fares.
    #[serde(default)]
    pub writes: Option<WritesHealth>,
}

/// `github.writes` in [`HealthResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritesHealth {
    /// `ok`, or `degraded` while effects are set aside or a repository refuses writes.
    pub status: String,
    /// Repositories with failing or set-aside effects.
    pub repositories: Vec<scrum_core::engine::RepoWrites>,
}

/// `dispatch` in [`HealthResponse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchHealth {
    /// Whether an operator paused handing out work.
    pub paused: bool,
    /// Whether this orchestrator holds the leader lease.
    pub leader: bool,
}

/// `workers` in [`HealthResponse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCounts {
    /// Workers known.
    pub total: u64,
    /// Workers ready for work.
    pub available: u64,
}

/// `queue` in [`HealthResponse`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Waiting tasks.
    pub pending: u64,
    /// Held tasks.
    pub in_progress: u64,
    /// Completed tasks.
    pub completed: u64,
    /// *Added*: tasks failed for good.
    #[serde(default)]
    pub failed: u64,
    /// *Added*: cancelled tasks.
    #[serde(default)]
    pub cancelled: u64,
    /// *Added*: tasks parked until a person answers the worker's questions.
    #[serde(default)]
    pub parked: u64,
}

/// The answer to `POST /webhooks/github`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponse {
    /// `polling` (202: the issue is looked at now) or `ignored` (200: an event that
    /// changes no task).
    pub status: String,
    /// The task the delivery is about.
    pub task_id: Option<String>,
}

/// The query of `GET /admin/effects`. A parameter it does not name is refused
/// (`400 invalid_query`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectsQuery {
    /// `failing` (default: backing off or set aside) or `dead` (set aside only).
    #[serde(default)]
    pub state: Option<EffectState>,
}

/// Which failing effects `GET /admin/effects` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectState {
    /// Backing off or set aside.
    Failing,
    /// Set aside until an operator retries them.
    Dead,
}

/// One failing GitHub effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectEntry {
    /// The effect's id (for `POST /admin/effects/retry`).
    pub id: u64,
    /// `owner/repo#N`.
    pub task_id: String,
    /// `owner/repo`.
    pub repository: String,
    /// What it writes: `queued`, `retry_scheduled`, `completed`, `failed`, `cancelled`.
    pub effect: String,
    /// How many times applying it failed.
    pub failures: u32,
    /// Set aside until an operator retries it.
    pub dead: bool,
    /// GitHub refused the write (no write access).
    pub refused: bool,
    /// When it is tried again (RFC 3339), unless set aside.
    pub next_attempt_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The answer of `GET /admin/effects`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectsResponse {
    /// Failing effects, oldest first.
    pub effects: Vec<EffectEntry>,
}

/// The body of `POST /admin/effects/retry`: every set-aside effect, those of one
/// repository, or one by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectsRetryRequest {
    /// Only this repository's (`owner/repo`); absent, not `null`.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub repository: Option<String>,
    /// Only this effect; absent, not `null`.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<u64>,
}

/// An optional field that is absent or a value, never `null` (the OpenAPI
/// document does not make it nullable).
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The answer of `POST /admin/effects/retry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectsRetryResponse {
    /// `ok`.
    pub status: String,
    /// How many set-aside effects are due again.
    pub retried: usize,
}
