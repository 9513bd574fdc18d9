//! `scrum-worker`: configuration and wiring of one worker: the HTTP client of the
//! orchestrator, the [`CommandRunner`], and the core worker loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scrum_core::WorkerId;
use scrum_core::worker::WorkerLoop;
use scrum_http::{ApiToken, OrchestratorClient};
use tokio_util::sync::CancellationToken;

use crate::runner::{CommandRunner, GitHubPullRequests, GitRemote, RunnerConfig, Secret};

/// A worker: asks the orchestrator for an issue, runs the AI workflow on it in an
/// isolated clone, pushes the branch, opens the pull request and reports back.
///
/// Every option is also an environment variable (the name in capitals after it).
#[derive(Debug, Parser)]
#[command(name = "scrum-worker", version)]
pub struct WorkerCli {
    /// This worker's name, as the orchestrator lists it.
    #[arg(long, env = "WORKER_ID", value_name = "WORKER_ID")]
    pub worker_id: WorkerId,
    /// The orchestrator's URL, e.g. http://10.0.0.1:8000.
    #[arg(long, env = "ORCHESTRATOR_URL", value_name = "ORCHESTRATOR_URL")]
    pub orchestrator_url: String,
    /// The orchestrator's API token, when it has one.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,
    /// The workflow to run in each clone, with `sh -c` (e.g. `claude -p "$(cat $ISSUE_FILE)"`).
    /// It gets ISSUE_NUMBER, ISSUE_TITLE, ISSUE_BODY, ISSUE_LABELS, ISSUE_REPOSITORY,
    /// ISSUE_FILE, BRANCH_NAME, BASE_BRANCH, ATTEMPT, MAX_ATTEMPTS. Exit 0: done;
    /// 75: hand the task back; 65: give up; other: failed attempt.
    #[arg(long, env = "WORKFLOW_COMMAND", value_name = "WORKFLOW_COMMAND")]
    pub workflow_command: String,
    /// Seconds a workflow run may take before it is killed.
    #[arg(long, env = "WORKFLOW_TIMEOUT", value_name = "WORKFLOW_TIMEOUT", default_value_t = 2 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub workflow_timeout: u64,
    /// Where mirrors, task clones and logs live.
    #[arg(
        long,
        env = "WORKSPACE_DIR",
        value_name = "WORKSPACE_DIR",
        default_value = "/opt/ai-scrum-master/workspace"
    )]
    pub workspace_dir: PathBuf,
    /// Seconds between asks for work when there was none.
    #[arg(long, env = "WORKER_POLL_INTERVAL", value_name = "WORKER_POLL_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_poll_interval: u64,
    /// Passed to the workflow.
    #[arg(
        long,
        env = "ANTHROPIC_API_KEY",
        value_name = "ANTHROPIC_API_KEY",
        hide_env_values = true
    )]
    pub anthropic_api_key: Option<Secret>,
    /// Token that can push branches and open pull requests (never given to the workflow).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        value_name = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<Secret>,
    /// GitHub's API base.
    #[arg(
        long,
        env = "GITHUB_API_URL",
        value_name = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// Where repositories are cloned from: {GIT_BASE_URL}/{owner}/{name}.git.
    #[arg(
        long,
        env = "GIT_BASE_URL",
        value_name = "GIT_BASE_URL",
        default_value = "https://github.com"
    )]
    pub git_base_url: String,
    /// Seconds a running task may go on after SIGTERM before it is handed back.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE",
        value_name = "SHUTDOWN_GRACE",
        default_value_t = 300
    )]
    pub shutdown_grace: u64,
    /// Keep each task's clone after the run, for debugging.
    #[arg(long, env = "KEEP_WORKSPACES", value_name = "KEEP_WORKSPACES")]
    pub keep_workspaces: bool,
    /// Log level: ERROR, WARN, INFO, DEBUG or TRACE.
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_name = "LOG_LEVEL",
        default_value = "INFO"
    )]
    pub log_level: String,
    /// Log format: text, or json (one JSON object per line with task_id, worker_id,
    /// repository and attempt where they apply, for log shippers).
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: crate::logging::LogFormat,
}

impl WorkerCli {
    /// Runs the worker until `shutdown`; a task running then gets `SHUTDOWN_GRACE` to
    /// finish before it is handed back.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let token = self.github_token.clone().context(
            "GITHUB_TOKEN is not set: the worker needs it to push branches and open pull requests",
        )?;
        if self.workflow_command.trim().is_empty() {
            anyhow::bail!("WORKFLOW_COMMAND is empty: name the workflow to run in each clone");
        }
        std::fs::create_dir_all(&self.workspace_dir).with_context(|| {
            format!(
                "WORKSPACE_DIR {} cannot be created",
                self.workspace_dir.display()
            )
        })?;
        let mut client =
            OrchestratorClient::new(&self.orchestrator_url).map_err(anyhow::Error::msg)?;
        if let Some(t) = &self.api_token {
            client = client.with_token(
                ApiToken::new(t.expose())
                    .map_err(|e| anyhow::anyhow!("ORCHESTRATOR_API_TOKEN: {e}"))?,
            );
        }
        let runner = CommandRunner::new(
            RunnerConfig {
                workspace_dir: self.workspace_dir.clone(),
                command: self.workflow_command.clone(),
                timeout: Duration::from_secs(self.workflow_timeout),
                remote: GitRemote {
                    base_url: self.git_base_url.clone(),
                    token: Some(token.clone()),
                    author: (
                        "scrum-worker".into(),
                        format!("{}@scrum-worker.invalid", self.worker_id),
                    ),
                },
                anthropic_api_key: self.anthropic_api_key.clone(),
                keep_workspaces: self.keep_workspaces,
            },
            Arc::new(GitHubPullRequests::new(&self.github_api_url, token)),
        );
        tracing::info!(worker = %self.worker_id, orchestrator = %self.orchestrator_url, workspace = %self.workspace_dir.display(), "scrum-worker {} starting", env!("CARGO_PKG_VERSION"));
        let worker = WorkerLoop::new(self.worker_id.clone(), Arc::new(client), Arc::new(runner))
            .poll_interval(Duration::from_secs(self.worker_poll_interval))
            .shutdown_grace(Duration::from_secs(self.shutdown_grace));
        worker.run(shutdown).await;
        tracing::info!(worker = %self.worker_id, "stopped");
        Ok(())
    }
}
