//! `scrum-worker`: configuration and wiring of one worker: the HTTP client of the
//! orchestrator, the [`CommandRunner`] (the built-in workflow or a workflow
//! command), and the core worker loop; `scrum-worker workflow show|check`; and
//! `scrum-worker doctor` ([`doctor`]), which checks the configuration.

pub mod doctor;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use scrum_core::WorkerId;
use scrum_core::worker::WorkerLoop;
use scrum_http::{ApiToken, OrchestratorClient};
use tokio_util::sync::CancellationToken;

use crate::runner::sandbox::{Limits, Sandbox, SandboxMode, SandboxSettings};
use crate::runner::workflow::{AgentSpec, DEFAULT_WORKFLOW, Workflow};
use crate::runner::{CommandRunner, Forges, GitHubForge, GitLabForge, RunnerConfig, Secret};

/// What `--help` says after the options: the built-in workflow.
const WORKFLOW_HELP: &str = "\
The built-in workflow (used when WORKFLOW_COMMAND is not set) runs a team of agents \
in the task's clone, each a `claude -p --output-format json` call (Claude Code) with \
its role as an appended system prompt, its allowed tools, a timeout and a gate, the \
prompt on standard input:
  0. clarification check: is the issue clear enough? If not, its questions end the run
     (SKIP_CLARIFICATION_CHECK=true skips it);
  1. architect: implements the issue; must commit;
  2. security: reviews and fixes; must commit or say \"no security issues\";
  3. tester: writes and runs tests;
  4. product-owner: answers DECISION: APPROVE, REVISE or REJECT (anything else counts
     as REVISE). REVISE sends its feedback back to the architect, up to 3 revisions;
     only APPROVE opens the pull request.
Rate limits, overloads and timeouts are retried within the phase with backoff; out of \
credits hands the task back without spending an attempt; a rejection, revisions used \
up or a failed gate is a failed attempt. Cost and tokens of every call are summed and \
reported with the outcome. Each phase's prompt, answer, gate and decision go to the \
attempt's log under WORKSPACE_DIR/logs.

Every agent call (and WORKFLOW_COMMAND) runs in a sandbox (SANDBOX): sandbox-runtime \
(`srt`) or bubblewrap. The agent can write its task's clone, a private home and a \
private temporary directory, and read the rest of the system; it cannot read the \
worker's home (SSH keys, ~/.config, credentials), /root, /home, /etc/ai-scrum-master \
(the worker's environment file), the workspace's mirrors, logs or other tasks' \
clones, nor see other processes. Its network is closed but for a filtering proxy to \
the allowed hosts: the agent's API host (from ANTHROPIC_BASE_URL, else \
api.anthropic.com), SANDBOX_ALLOW_HOSTS and the workflow file's [sandbox] \
allow_hosts; the orchestrator, metadata services and every other local port are \
closed. Its environment is the task's variables, ANTHROPIC_API_KEY and \
ANTHROPIC_BASE_URL, PATH, LANG, a private HOME and TMPDIR, and the names \
SANDBOX_PASS_ENV or the workflow file's [sandbox] env list; never GITHUB_TOKEN, \
GITLAB_TOKEN or ORCHESTRATOR_API_TOKEN. To let agents reach a package registry, add its host: \
SANDBOX_ALLOW_HOSTS=registry.npmjs.org,*.crates.io. Issue, review and comment text \
is cleaned before an agent reads it: HTML comments, invisible and bidirectional \
characters and hidden HTML are removed, and the attempt's log says so.

`scrum-worker workflow show` prints the built-in workflow file (TOML: agents, phases, \
prompts, gates, retries); edit a copy and point WORKFLOW_FILE at it. \
`scrum-worker workflow check FILE` checks one.

`scrum-worker doctor [--repo OWNER/NAME]` checks this configuration without taking \
work: the orchestrator takes this worker's calls, git can push and the token may \
open pull requests (merge requests, for --repo gitlab:GROUP/PROJECT) in each --repo, the agent CLI runs, and the sandbox runs a \
command. See `scrum-worker doctor --help`.";

/// A worker: asks the orchestrator for an issue, runs the AI workflow on it in an
/// isolated clone, pushes the branch, opens the pull request and reports back.
///
/// Every option is also an environment variable (the name in capitals after it).
#[derive(Debug, Parser)]
#[command(name = "scrum-worker", version, after_long_help = WORKFLOW_HELP)]
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
    /// A workflow command to run in each clone with `sh -c`, instead of the built-in
    /// workflow (see below). It gets ISSUE_NUMBER, ISSUE_TITLE, ISSUE_BODY,
    /// ISSUE_LABELS, ISSUE_REPOSITORY, ISSUE_FILE, BRANCH_NAME, BASE_BRANCH, ATTEMPT,
    /// MAX_ATTEMPTS. Exit 0: done; 75: hand the task back; 65: give up; other:
    /// failed attempt.
    #[arg(long, env = "WORKFLOW_COMMAND", value_name = "WORKFLOW_COMMAND")]
    pub workflow_command: Option<String>,
    /// A workflow file (TOML) replacing the built-in workflow; `scrum-worker
    /// workflow show` prints the built-in one to start from.
    #[arg(long, env = "WORKFLOW_FILE", value_name = "WORKFLOW_FILE")]
    pub workflow_file: Option<PathBuf>,
    /// Skip the built-in workflow's clarification check.
    #[arg(
        long,
        env = "SKIP_CLARIFICATION_CHECK",
        value_name = "SKIP_CLARIFICATION_CHECK"
    )]
    pub skip_clarification_check: bool,
    /// Seconds a workflow command's run may take before it is killed (the built-in
    /// workflow's phases have their own timeouts).
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
    /// Leave once no work came for this many seconds (since start or the last
    /// task): an autoscaler scales in by idle workers leaving, never by stopping a
    /// busy one. Unset: run until stopped.
    #[arg(long, env = "EXIT_WHEN_IDLE", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub exit_when_idle: Option<u64>,
    /// Passed to the workflow and its agents.
    #[arg(
        long,
        env = "ANTHROPIC_API_KEY",
        value_name = "ANTHROPIC_API_KEY",
        hide_env_values = true
    )]
    pub anthropic_api_key: Option<Secret>,
    /// Token that can push branches and open pull requests (never given to the
    /// workflow). Not needed when the orchestrator authenticates as a GitHub App:
    /// each task then brings a short-lived token for its repository.
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
    /// Where GitHub repositories are cloned from: {GIT_BASE_URL}/{owner}/{name}.git
    /// (GitLab's projects come from GITLAB_URL).
    #[arg(
        long,
        env = "GIT_BASE_URL",
        value_name = "GIT_BASE_URL",
        default_value = "https://github.com"
    )]
    pub git_base_url: String,
    /// GitLab's address, for tasks of GitLab projects (`gitlab:group/project#N`):
    /// clones and pushes go to {GITLAB_URL}/{group/project}.git, merge requests
    /// through its API.
    #[arg(
        long,
        env = "GITLAB_URL",
        value_name = "GITLAB_URL",
        default_value = scrum_gitlab::GITLAB_COM
    )]
    pub gitlab_url: String,
    /// Token that can push to GitLab projects and open merge requests (scope
    /// `api`; never given to the workflow). Without it this worker takes GitLab
    /// tasks only to fail them, retryably, for a worker that has one.
    #[arg(
        long,
        env = "GITLAB_TOKEN",
        value_name = "GITLAB_TOKEN",
        hide_env_values = true
    )]
    pub gitlab_token: Option<Secret>,
    /// Seconds a running task may go on after SIGTERM before it is handed back.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE",
        value_name = "SHUTDOWN_GRACE",
        default_value_t = 300
    )]
    pub shutdown_grace: u64,
    /// The sandbox agents run in: auto (sandbox-runtime when `srt` is on PATH, else
    /// bubblewrap, else refuse to start), srt, bwrap, or none (agents run as the
    /// worker, with its files and network; say it explicitly).
    #[arg(long, env = "SANDBOX", value_name = "SANDBOX", default_value = "auto")]
    pub sandbox: SandboxMode,
    /// Hosts agents may reach beyond the agent's API host (comma list of `host`,
    /// `host:port` or `*.domain`), e.g. the package registries a build needs.
    #[arg(
        long,
        env = "SANDBOX_ALLOW_HOSTS",
        value_name = "SANDBOX_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub sandbox_allow_hosts: Vec<String>,
    /// Variables of the worker's environment agents get by name (comma list).
    #[arg(
        long,
        env = "SANDBOX_PASS_ENV",
        value_name = "SANDBOX_PASS_ENV",
        value_delimiter = ','
    )]
    pub sandbox_pass_env: Vec<String>,
    /// More paths agents may not read (comma list), beside the worker's home,
    /// /root, /home, /etc/ai-scrum-master and WORKSPACE_DIR.
    #[arg(
        long,
        env = "SANDBOX_HIDE",
        value_name = "SANDBOX_HIDE",
        value_delimiter = ','
    )]
    pub sandbox_hide: Vec<PathBuf>,
    /// Data memory one agent call may use, in MiB.
    #[arg(long, env = "SANDBOX_MEMORY_MB", value_name = "SANDBOX_MEMORY_MB", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(64..))]
    pub sandbox_memory_mb: u64,
    /// Processes one agent call may run (not enforced when the worker runs as root).
    #[arg(long, env = "SANDBOX_PROCESSES", value_name = "SANDBOX_PROCESSES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(8..))]
    pub sandbox_processes: u64,
    /// Size of an agent call's private temporary directory, in MiB (bubblewrap).
    #[arg(long, env = "SANDBOX_TMP_MB", value_name = "SANDBOX_TMP_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    pub sandbox_tmp_mb: u64,
    /// Keep each task's clone after the run, for debugging.
    #[arg(long, env = "KEEP_WORKSPACES", value_name = "KEEP_WORKSPACES")]
    pub keep_workspaces: bool,
    /// LOG_LEVEL and LOG_FORMAT.
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
}

impl WorkerCli {
    /// The workflow to run when no command is set: `WORKFLOW_FILE`'s, or the
    /// built-in one; its agents must be on `PATH`.
    fn workflow(&self) -> anyhow::Result<Workflow> {
        match (&self.workflow_command, &self.workflow_file) {
            (Some(c), _) if c.trim().is_empty() => anyhow::bail!(
                "WORKFLOW_COMMAND is empty: unset it to run the built-in workflow, or name the command to run in each clone"
            ),
            (Some(_), Some(_)) => anyhow::bail!(
                "WORKFLOW_COMMAND and WORKFLOW_FILE are both set: the command replaces the workflow; set one"
            ),
            (Some(_), None) => return Ok(Workflow::builtin()),
            _ => {}
        }
        let workflow = match &self.workflow_file {
            Some(path) => {
                Workflow::from_file(path).map_err(|e| anyhow::anyhow!("WORKFLOW_FILE {e}"))?
            }
            None => Workflow::builtin(),
        };
        for (name, agent) in &workflow.agents {
            let program = match agent {
                AgentSpec::Claude { command, .. } => command,
                AgentSpec::Command { command } => &command[0],
            };
            if !on_path(program) {
                anyhow::bail!(
                    "the workflow's agent {name} runs `{program}`, which is not on PATH: install it (Claude Code: npm install -g @anthropic-ai/claude-code), point WORKFLOW_FILE at a workflow with another agent, or set WORKFLOW_COMMAND"
                );
            }
        }
        Ok(workflow)
    }

    /// What the sandbox is to be: the workflow file's hosts and variables, then
    /// the operator's.
    fn sandbox_settings(&self, workflow: &Workflow) -> SandboxSettings {
        let both = |file: &[String], ours: &[String]| [file, ours].concat();
        SandboxSettings::new(
            self.sandbox,
            &self.workspace_dir,
            &both(&workflow.sandbox.allow_hosts, &self.sandbox_allow_hosts),
            &both(&workflow.sandbox.env, &self.sandbox_pass_env),
            &self.sandbox_hide,
            Limits {
                memory_mb: self.sandbox_memory_mb,
                processes: self.sandbox_processes,
                tmp_mb: self.sandbox_tmp_mb,
            },
        )
    }

    /// The forges this worker works on: GitHub always (with `token`, or the one
    /// each task brings), GitLab when `GITLAB_TOKEN` is set.
    fn forges(&self, token: Option<Secret>) -> Forges {
        let github = GitHubForge::new(&self.github_api_url, &self.git_base_url, token);
        let mut forges = Forges::new().with(scrum_core::model::GITHUB, Arc::new(github));
        if let Some(t) = &self.gitlab_token {
            let gitlab = GitLabForge::new(&self.gitlab_url, t.clone());
            forges = forges.with("gitlab", Arc::new(gitlab));
        }
        forges
    }

    /// Runs the worker until `shutdown`; a task running then gets `SHUTDOWN_GRACE` to
    /// finish before it is handed back.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let token = self.github_token.clone();
        if token.is_none() {
            tracing::info!(worker = %self.worker_id, "GITHUB_TOKEN is not set: pushes and pull requests use the token each task brings from the orchestrator's GitHub App");
        }
        let workflow = self.workflow()?;
        std::fs::create_dir_all(&self.workspace_dir).with_context(|| {
            format!(
                "WORKSPACE_DIR {} cannot be created",
                self.workspace_dir.display()
            )
        })?;
        let sandbox = Sandbox::start(
            &self.sandbox_settings(&workflow),
            &self.workspace_dir.join("sandbox"),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let mut client = OrchestratorClient::new(&self.orchestrator_url)
            .map_err(anyhow::Error::msg)?
            .with_sandbox(sandbox.kind());
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
                workflow: Arc::new(workflow),
                clarification_check: !self.skip_clarification_check,
                timeout: Duration::from_secs(self.workflow_timeout),
                author: (
                    "scrum-worker".into(),
                    format!("{}@scrum-worker.invalid", self.worker_id),
                ),
                anthropic_api_key: self.anthropic_api_key.clone(),
                keep_workspaces: self.keep_workspaces,
                sandbox: Arc::new(sandbox),
            },
            self.forges(token),
        );
        let runs = match (&self.workflow_command, &self.workflow_file) {
            (Some(_), _) => "WORKFLOW_COMMAND".to_string(),
            (None, Some(f)) => format!("the workflow of {}", f.display()),
            (None, None) => "the built-in workflow".to_string(),
        };
        tracing::info!(worker = %self.worker_id, orchestrator = %self.orchestrator_url, workspace = %self.workspace_dir.display(), runs = %runs, sandbox = %runner.sandbox().mode(), "scrum-worker {} starting", env!("CARGO_PKG_VERSION"));
        if runner.sandbox().mode() == "none" {
            tracing::warn!(worker = %self.worker_id, "SANDBOX=none: {}", runner.sandbox().describe());
        } else {
            tracing::info!(worker = %self.worker_id, "SANDBOX={}: {}", runner.sandbox().mode(), runner.sandbox().describe());
        }
        let mut worker =
            WorkerLoop::new(self.worker_id.clone(), Arc::new(client), Arc::new(runner))
                .poll_interval(Duration::from_secs(self.worker_poll_interval))
                .shutdown_grace(Duration::from_secs(self.shutdown_grace));
        if let Some(secs) = self.exit_when_idle {
            worker = worker.exit_when_idle(Duration::from_secs(secs));
        }
        worker.run(shutdown).await;
        tracing::info!(worker = %self.worker_id, "stopped");
        Ok(())
    }
}

/// Whether `program` (a path, or a name looked up on `PATH`) is an existing file.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join(program).is_file()))
}

/// `scrum-worker workflow …`: the built-in workflow, and checks of workflow files.
#[derive(Debug, Parser)]
#[command(name = "scrum-worker workflow")]
pub enum WorkflowCli {
    /// Prints the built-in workflow file.
    Show,
    /// Checks a workflow file (agents, phases, gates, templates) and says what it runs.
    Check {
        /// The file.
        file: PathBuf,
    },
}

impl WorkflowCli {
    /// Parses `scrum-worker workflow ARGS` when those are the arguments; `None` for
    /// any other command line.
    pub fn from_args(args: &[String]) -> Option<Result<WorkflowCli, clap::Error>> {
        (args.get(1).map(String::as_str) == Some("workflow"))
            .then(|| WorkflowCli::try_parse_from(&args[1..]))
    }

    /// Does it: prints the workflow or the check's result.
    pub fn run(&self) -> anyhow::Result<String> {
        match self {
            WorkflowCli::Show => Ok(DEFAULT_WORKFLOW.to_string()),
            WorkflowCli::Check { file } => {
                let w = Workflow::from_file(file).map_err(anyhow::Error::msg)?;
                let phases = |follow_up: bool| {
                    let names: Vec<String> = w
                        .phases
                        .iter()
                        .filter(|p| p.runs.includes(follow_up))
                        .map(|p| format!("{} ({:?})", p.name, p.gate))
                        .collect();
                    names.join(", ")
                };
                Ok(format!(
                    "{}: phases {}, then {} (up to {} revisions); on a follow-up, phases {}, then {}; clarification check {}\n",
                    file.display(),
                    phases(false),
                    w.review.name,
                    w.max_revisions(),
                    phases(true),
                    w.review.name,
                    if w.clarification { "on" } else { "off" }
                ))
            }
        }
    }
}
