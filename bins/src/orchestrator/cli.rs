//! The orchestrator's command line: the service's settings ([`ServeArgs`], grouped
//! by what they configure), the settings file, and the operator subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scrum_core::{RepoName, TaskId};

use super::settings::ServeArgs;
use crate::runner::Secret;

/// The orchestrator: polls GitHub for ready issues, hands each to one worker at a time
/// over HTTP, watches the workers, retries what fails and writes outcomes back.
///
/// With no subcommand it runs the service. Every option is also an environment
/// variable (the name in capitals after it), with the names and defaults of the
/// Python orchestrator ("AI Scrum Master") this project replaces, and a key in the
/// settings file (--config), under its group's name. A flag wins over its variable,
/// the variable over the file, the file over the default.
#[derive(Debug, Parser)]
#[command(name = "scrum-orchestrator", version)]
pub struct OrchestratorCli {
    /// An operator action against a running orchestrator; none runs the service.
    #[command(subcommand)]
    pub command: Option<Operator>,
    /// A settings file (TOML): a table per group below (`[github]`, `[store]`, …),
    /// each key a flag's name with underscores (`github_poll_interval = 60`); a
    /// list stands for a comma-separated value. An unknown group or key is an error.
    #[arg(long, env = "ORCHESTRATOR_CONFIG", value_name = "ORCHESTRATOR_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,
}

/// Operator subcommands: each calls a running orchestrator's HTTP API, but
/// `settings`, `doctor` and `notify test`, which act on this host's settings.
#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Checks this configuration without starting the service, one line per check
    /// (`ok`, `FAIL` with the fix, or `skip` with why), and exits 1 when any fails.
    ///
    /// It reads the same flags, environment variables and settings file as the
    /// service (give them before `doctor`, or in the environment), and checks:
    /// the settings; that GitHub accepts GITHUB_TOKEN and that it may read and write
    /// issues and read pull requests in each repository (its role there, and a
    /// classic token's scopes); that the ready and lifecycle labels exist or can be
    /// created; that GITHUB_WEBHOOK_SECRET signs a delivery the server accepts, that
    /// a running orchestrator (--url, else the configured address when one answers)
    /// takes a ping signed with it, and that the repositories' hooks to
    /// /webhooks/github are signed and were not refused (readable with an admin's
    /// token only; GitHub never shows a hook's secret); that the store opens and is
    /// migrated; that each WORKER_IPS host answers over SSH with WORKER_SSH_KEY and
    /// its pinned host key, its worker service active; and that a sandbox tool is
    /// installed when workers run on this machine. It changes nothing on GitHub
    /// unless asked (--create-labels); like the service, it pins a worker host's
    /// key on first use and creates or migrates the store.
    Doctor(super::doctor::DoctorArgs),
    /// Prints the settings the service would start with, in the settings file's
    /// form, each with where it came from (flag, environment, file or default);
    /// secrets show only where they came from.
    Settings,
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
