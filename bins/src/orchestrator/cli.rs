//! The orchestrator's command line: every setting an environment variable (the
//! Python orchestrator's names and defaults) and a flag, checked at start-up with an
//! error that names the variable; and the operator subcommands.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scrum_core::engine::TrustMode;
use scrum_core::{Labels, RepoName, TaskId};
use scrum_github::GitHubConfig;
use scrum_github::config::Timing;
use scrum_http::{ApiConfig, ApiToken};

use super::service::Service;
use crate::runner::Secret;

/// The orchestrator: polls GitHub for ready issues, hands each to one worker at a time
/// over HTTP, watches the workers, retries what fails and writes outcomes back.
///
/// With no subcommand it runs the service. Every option is also an environment
/// variable (the name in capitals after it), with the names and defaults of the
/// Python orchestrator ("AI Scrum Master") this project replaces.
#[derive(Debug, Parser)]
#[command(name = "scrum-orchestrator", version)]
pub struct OrchestratorCli {
    /// An operator action against a running orchestrator; none runs the service.
    #[command(subcommand)]
    pub command: Option<Operator>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,
}

/// Operator subcommands: each calls a running orchestrator's HTTP API.
#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Health, queue counts and workers at a glance.
    Status(Remote),
    /// The tasks in each state.
    Queue(Remote),
    /// The workers and their hosts' health.
    Workers(Remote),
    /// Starts a new run of a failed or cancelled task (`owner/repo#N`).
    Retry {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// The task, `owner/repo#N`.
        task: TaskId,
    },
    /// GitHub effects (labels, comments) that failed: backing off, or set aside
    /// after GitHub refused them. `effects retry` tries the set-aside ones again.
    Effects {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// Only the set-aside ones.
        #[arg(long)]
        dead: bool,
        /// `retry`: try set-aside effects again.
        #[command(subcommand)]
        action: Option<EffectsAction>,
    },
    /// Notifications: `notify test` sends a test message to every configured
    /// target (SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, NOTIFY_WEBHOOK_URL).
    Notify {
        /// What to do.
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Cancels a task (`owner/repo#N`).
    Cancel {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// The task, `owner/repo#N`.
        task: TaskId,
        /// Why (shown in the logs).
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
}

/// What `notify` does.
#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Sends a test message to each configured target and says which took it.
    Test(#[command(flatten)] super::notify::NotifyArgs),
}

/// What `effects` does besides listing.
#[derive(Debug, Subcommand)]
pub enum EffectsAction {
    /// Tries set-aside effects again once their cause is fixed (say, the token got
    /// write access): all of them, one repository's, or one by id. Each lands once.
    Retry {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// Only this repository's set-aside effects (`owner/name`).
        #[arg(long, conflicts_with = "id")]
        repo: Option<RepoName>,
        /// Only this effect (its `id` in the listing).
        id: Option<u64>,
    },
}

/// Where the running orchestrator is.
#[derive(Debug, Args)]
pub struct Remote {
    /// The orchestrator's URL.
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        value_name = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub url: String,
    /// The API token, when the orchestrator has one.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
}

/// The service's configuration.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "ORCHESTRATOR_HOST",
        value_name = "ORCHESTRATOR_HOST",
        default_value = "0.0.0.0"
    )]
    pub host: IpAddr,
    /// Port the HTTP API listens on.
    #[arg(
        long,
        env = "ORCHESTRATOR_PORT",
        value_name = "ORCHESTRATOR_PORT",
        default_value_t = 8000
    )]
    pub port: u16,
    /// Bearer token every API call but /health and the signed webhook must carry.
    /// Without one, /work/* and the reads (/queue, /workers, /metrics, /openapi.json)
    /// answer only loopback and WORKER_IPS, and /admin/* actions only loopback.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,
    /// GitHub token that can read and label issues (required).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        value_name = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<Secret>,
    /// The repository to watch, owner/name.
    #[arg(long, env = "GITHUB_REPO", value_name = "GITHUB_REPO")]
    pub github_repo: Option<String>,
    /// Several repositories, comma-separated (instead of GITHUB_REPO).
    #[arg(long, env = "GITHUB_REPOS", value_name = "GITHUB_REPOS")]
    pub github_repos: Option<String>,
    /// Labels an issue must carry (all of them, comma-separated) to be queued.
    #[arg(
        long,
        env = "GITHUB_ISSUE_LABELS",
        value_name = "GITHUB_ISSUE_LABELS",
        default_value = "ai-ready"
    )]
    pub github_issue_labels: String,
    /// Seconds between GitHub polls.
    #[arg(long, env = "GITHUB_POLL_INTERVAL", value_name = "GITHUB_POLL_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub github_poll_interval: u64,
    /// GitHub's API base (point it at a GitHub Enterprise server or a test server).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        value_name = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// Start even when GITHUB_TOKEN may read a repository but not label its issues
    /// there (it needs triage or write): that repository shows as degraded in
    /// /health, its labels and comments are set aside, and its tasks are not handed
    /// out until a write to it succeeds. Without it such a repository is a start-up
    /// error.
    #[arg(long, env = "ALLOW_READ_ONLY_REPOS", value_name = "ALLOW_READ_ONLY_REPOS", default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_read_only_repos: bool,
    /// Whose text reaches an agent. `labeler`: only issues whose ready label was
    /// applied by someone with write, maintain or admin permission (or a GitHub
    /// App) are queued, with their text as it was then; a later edit by anyone else
    /// holds the task until a maintainer applies the label again. `author`: as
    /// labeler, and only issues opened by such a person. `off`: every ready issue,
    /// with its latest text (for private repositories whose every member is trusted).
    #[arg(long, env = "TRUST_MODE", value_name = "TRUST_MODE", default_value = "labeler", value_parser = parse_trust_mode)]
    pub trust_mode: TrustMode,
    /// Review gating: while this many pull requests opened by workers in one
    /// repository await review (open, not merged or closed), that repository's
    /// issues are not handed out and /work/next answers `blocked` with a reason.
    /// 0 turns the limit off.
    #[arg(
        long,
        env = "MAX_PENDING_PRS",
        value_name = "MAX_PENDING_PRS",
        default_value_t = 5
    )]
    pub max_pending_prs: usize,
    /// Review gating across every repository: while this many pull requests await
    /// review in all, no issue is handed out. Unset: no such limit.
    #[arg(
        long,
        env = "MAX_PENDING_PRS_TOTAL",
        value_name = "MAX_PENDING_PRS_TOTAL"
    )]
    pub max_pending_prs_total: Option<usize>,
    /// Review gating: a pull request with changes requested holds its repository's
    /// issues until it is approved, merged or closed.
    #[arg(long, env = "BLOCK_ON_CHANGES_REQUESTED", value_name = "BLOCK_ON_CHANGES_REQUESTED", default_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub block_on_changes_requested: bool,
    /// A request for changes on a worker's pull request, by a reviewer with write
    /// access (or anyone, with TRUST_MODE=off), queues its issue again: the new run
    /// gets the review's text as feedback for the agent and pushes to the same
    /// branch. Once per review; while that run is live, the pull request holds
    /// nothing, and once it completed, the review it answered holds nothing.
    #[arg(long, env = "REWORK_ON_CHANGES_REQUESTED", value_name = "REWORK_ON_CHANGES_REQUESTED", default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    pub rework_on_changes_requested: bool,
    /// The most one run of an issue may cost, in US dollars, from the costs workers
    /// report: once its attempts have cost this much it gets no further attempt
    /// (it fails, and its comment says why). Unset: no limit.
    #[arg(long, env = "ISSUE_BUDGET_USD", value_name = "ISSUE_BUDGET_USD", value_parser = parse_usd)]
    pub issue_budget_usd: Option<f64>,
    /// The most one repository's runs may cost in a calendar month (UTC), in US
    /// dollars: once spent, its issues are not handed out until the month ends, and
    /// /health says why. Unset: no limit.
    #[arg(long, env = "REPO_MONTHLY_BUDGET_USD", value_name = "REPO_MONTHLY_BUDGET_USD", value_parser = parse_usd)]
    pub repo_monthly_budget_usd: Option<f64>,
    /// File-level locks: the paths `area:NAME` labels stand for, as
    /// `NAME=PATH,PATH;NAME=PATH` (e.g. `auth=src/auth/**,docs/login.md;ui=web/**`).
    /// Issues also declare paths in their body (`Files: src/auth/**, docs/login.md`);
    /// two issues whose paths overlap are never in progress at once.
    #[arg(long, env = "LOCK_AREAS", value_name = "LOCK_AREAS", default_value = "", value_parser = parse_lock_areas)]
    pub lock_areas: LockAreas,
    /// File-level locks: barrier paths, comma-separated, that conflict with every
    /// other declared path. Unset: Cargo.lock, package-lock.json, yarn.lock,
    /// pnpm-lock.yaml, poetry.lock, Gemfile.lock, go.sum, .github/workflows/**,
    /// .gitlab-ci.yml, .circleci/**. Empty: none.
    #[arg(long, env = "LOCK_BARRIERS", value_name = "LOCK_BARRIERS")]
    pub lock_barriers: Option<String>,
    /// The scaling signal (GET /scaling): the most workers it ever asks for.
    #[arg(
        long,
        env = "MAX_WORKERS",
        value_name = "MAX_WORKERS",
        default_value_t = 10
    )]
    pub max_workers: u64,
    /// The scaling signal: idle workers to keep beyond what the queue needs
    /// (desired = min(MAX_WORKERS, MIN_IDLE_WORKERS + ready + in progress)).
    #[arg(
        long,
        env = "MIN_IDLE_WORKERS",
        value_name = "MIN_IDLE_WORKERS",
        default_value_t = 0
    )]
    pub min_idle_workers: u64,
    /// Secret of the GitHub webhook (POST /webhooks/github); without it the route is off.
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        value_name = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub github_webhook_secret: Option<Secret>,
    /// Worker hosts, comma-separated IPs: probed over SSH, allowed to call without a token.
    #[arg(
        long,
        env = "WORKER_IPS",
        value_name = "WORKER_IPS",
        default_value = ""
    )]
    pub worker_ips: String,
    /// Private key for SSH checks of the worker hosts (ed25519 or RSA, unencrypted).
    #[arg(long, env = "WORKER_SSH_KEY", value_name = "WORKER_SSH_KEY")]
    pub worker_ssh_key: Option<PathBuf>,
    /// User for SSH checks.
    #[arg(
        long,
        env = "WORKER_SSH_USER",
        value_name = "WORKER_SSH_USER",
        default_value = "root"
    )]
    pub worker_ssh_user: String,
    /// A known_hosts file to check worker host keys against (default: pin on first use).
    #[arg(
        long,
        env = "WORKER_SSH_KNOWN_HOSTS",
        value_name = "WORKER_SSH_KNOWN_HOSTS"
    )]
    pub worker_ssh_known_hosts: Option<PathBuf>,
    /// The worker's systemd unit on each host.
    #[arg(
        long,
        env = "WORKER_SERVICE_UNIT",
        value_name = "WORKER_SERVICE_UNIT",
        default_value = "ai-scrum-worker"
    )]
    pub worker_service_unit: String,
    /// Seconds between SSH checks of the worker hosts.
    #[arg(long, env = "WORKER_HEALTH_CHECK_INTERVAL", value_name = "WORKER_HEALTH_CHECK_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_health_check_interval: u64,
    /// Seconds after which a worker that has not called (and holds no task) is
    /// dropped from the worker list, which the store keeps across restarts.
    #[arg(long, env = "WORKER_FORGET_SECS", value_name = "WORKER_FORGET_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_forget_secs: u64,
    /// LOG_LEVEL and LOG_FORMAT.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
    /// Where the SQLite store and pinned host keys live
    /// (default $XDG_STATE_HOME/scrum-orchestrator, else ~/.local/state/scrum-orchestrator).
    #[arg(long, env = "STATE_DIR", value_name = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The store: a SQLite path or sqlite:// URL (default: a file in STATE_DIR),
    /// postgres://… or redis://… to share state between orchestrators.
    /// `?synchronous=normal|full` sets how durable a commit is; `?schema=NAME`
    /// (PostgreSQL) or `?prefix=NAME` (Redis) keeps fleets apart on one server.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Attempts per issue before it is marked failed.
    #[arg(long, env = "MAX_ATTEMPTS", value_name = "MAX_ATTEMPTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Seconds a worker's lease lasts without a heartbeat.
    #[arg(long, env = "LEASE_SECS", value_name = "LEASE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..))]
    pub lease_secs: u64,
    /// Seconds the leader's lease lasts without renewal. With several orchestrators
    /// on one store, one leads (polls GitHub, reaps leases, writes labels) and renews
    /// its lease every second; when it dies another takes over within about this long.
    #[arg(long, env = "LEADER_TTL_SECS", value_name = "LEADER_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub leader_ttl_secs: u64,
    /// The longest a task may be held, heartbeats or not (also what clients that never
    /// send heartbeats get).
    #[arg(long, env = "MAX_RUN_SECS", value_name = "MAX_RUN_SECS", default_value_t = 3 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub max_run_secs: u64,
    /// The least time between two writes to GitHub, in milliseconds (GitHub asks for a
    /// second, to stay clear of its secondary rate limits).
    #[arg(
        long,
        env = "GITHUB_WRITE_SPACING_MS",
        value_name = "GITHUB_WRITE_SPACING_MS",
        default_value_t = 1000
    )]
    pub github_write_spacing_ms: u64,
    /// Seconds before a failed attempt is retried (doubling, with jitter, up to 15 min).
    #[arg(
        long,
        env = "RETRY_BACKOFF_SECS",
        value_name = "RETRY_BACKOFF_SECS",
        default_value_t = 30
    )]
    pub retry_backoff_secs: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub notify: super::notify::NotifyArgs,
}

impl ServeArgs {
    /// Checks the configuration; each error names the variable to fix.
    pub fn validate(self) -> anyhow::Result<Service> {
        let token = self
            .github_token
            .as_ref()
            .context("GITHUB_TOKEN is not set: the orchestrator needs a token that can read and label issues")?;
        let repos_text = match (&self.github_repo, &self.github_repos) {
            (_, Some(list)) if !list.trim().is_empty() => ("GITHUB_REPOS", list.as_str()),
            (Some(one), _) if !one.trim().is_empty() => ("GITHUB_REPO", one.as_str()),
            _ => bail!(
                "neither GITHUB_REPO nor GITHUB_REPOS is set: name the repository to watch (owner/name)"
            ),
        };
        let repos = scrum_github::config::parse_repos(repos_text.0, repos_text.1)
            .map_err(anyhow::Error::msg)?;
        let labels = Labels {
            ready: scrum_github::config::parse_ready_labels(&self.github_issue_labels),
            ..Labels::default()
        };
        if labels.ready.is_empty() {
            bail!("GITHUB_ISSUE_LABELS is empty: name at least one label, e.g. ai-ready");
        }
        let github = GitHubConfig::new(token.expose(), repos)
            .and_then(|c| c.with_api_url(&self.github_api_url))
            .and_then(|c| c.with_labels(labels))
            .map_err(anyhow::Error::msg)?
            .with_timing(Timing {
                write_spacing: Duration::from_millis(self.github_write_spacing_ms),
                ..Timing::default()
            });
        let worker_hosts: Vec<String> = self
            .worker_ips
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        // Parsed once, now: a bad entry is a start-up error, not an allow-list gap.
        let mut api = ApiConfig::default()
            .with_worker_hosts(&worker_hosts)
            .map_err(anyhow::Error::msg)?;
        if let Some(t) = &self.api_token {
            api.token = Some(
                ApiToken::new(t.expose())
                    .map_err(|e| anyhow::anyhow!("ORCHESTRATOR_API_TOKEN: {e}"))?,
            );
        }
        if let Some(secret) = &self.github_webhook_secret {
            let secret = scrum_github::webhook::WebhookSecret::new(secret.expose())
                .map_err(|e| anyhow::anyhow!("GITHUB_WEBHOOK_SECRET: {e}"))?;
            api.webhook = Some(std::sync::Arc::new(secret));
        }
        if let Some(key) = &self.worker_ssh_key {
            if !key.is_file() {
                bail!("WORKER_SSH_KEY {} is not a readable file", key.display());
            }
        }
        crate::logging::parse_level(&self.log.log_level)?;
        // Checked now: a bad URL or event name is a start-up error.
        self.notify.targets()?;
        self.notify.events()?;
        let state_dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir()
                .context("STATE_DIR is not set and neither XDG_STATE_HOME nor HOME is")?,
        };
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("STATE_DIR {} cannot be created", state_dir.display()))?;
        let database_url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => scrum_store::default_sqlite_path(&state_dir)
                .display()
                .to_string(),
        };
        Ok(Service {
            args: self,
            github,
            api,
            state_dir,
            database_url,
            worker_hosts,
        })
    }
}

/// `$XDG_STATE_HOME/scrum-orchestrator`, else `~/.local/state/scrum-orchestrator`.
pub fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("scrum-orchestrator"))
}

fn parse_usd(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not an amount of US dollars greater than 0 (e.g. 2.50)"
        )),
    }
}

/// `LOCK_AREAS` as read: each area's name and paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockAreas(pub Vec<(String, Vec<String>)>);

fn parse_lock_areas(s: &str) -> Result<LockAreas, String> {
    scrum_core::locks::LockRules::parse_areas(s).map(LockAreas)
}

fn parse_trust_mode(s: &str) -> Result<TrustMode, String> {
    s.parse().map_err(|e: scrum_core::Error| e.to_string())
}
