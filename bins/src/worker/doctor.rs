//! `scrum-worker doctor`: checks a worker's configuration (the same flags and
//! environment as the worker) without taking work, one line per check
//! ([`crate::doctor::Report`]): the orchestrator answers and takes this worker's
//! calls; git can push to each `--repo` and the token may open pull requests
//! there; the agent CLI (or WORKFLOW_COMMAND) runs; a trivial command runs in the
//! sandbox.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use scrum_core::{ErrorKind, RepoName};
use scrum_github::{GitHubClient, GitHubConfig, Timing};
use scrum_http::{ApiToken, OrchestratorClient};

use super::{WorkerCli, on_path};
use crate::doctor::Report;
use crate::runner::sandbox::{Cell, Sandbox};
use crate::runner::workflow::{AgentSpec, Workflow};

/// How long one check's command (`claude --version`, the sandbox's trial) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks this worker's configuration without taking work, one line per check
/// (`ok`, `FAIL` with the fix, or `skip` with why); exits 1 when any fails.
///
/// It reads the worker's own flags and environment, and checks: that the
/// orchestrator at ORCHESTRATOR_URL answers and takes this worker's calls (with
/// ORCHESTRATOR_API_TOKEN, or from an address in its WORKER_IPS); for each --repo,
/// that git can push there (`git push --dry-run` of a scratch commit to
/// GIT_BASE_URL with GITHUB_TOKEN, or to GITLAB_URL with GITLAB_TOKEN for a
/// `gitlab:` project: nothing is pushed) and that the token may open pull (merge)
/// requests there; that the agent CLI of the workflow runs (`claude
/// --version`), or that WORKFLOW_COMMAND's program is installed; and that a
/// trivial command runs in the configured SANDBOX.
#[derive(Debug, Parser)]
#[command(name = "scrum-worker doctor", bin_name = "scrum-worker doctor")]
pub struct WorkerDoctorCli {
    /// A repository this worker works on (`owner/name`, or a GitLab project as
    /// `gitlab:group/sub/project`; repeat it or separate with commas): git push and
    /// the pull (merge) request permission are checked there.
    #[arg(long = "repo", value_name = "OWNER/NAME", value_delimiter = ',')]
    pub repos: Vec<RepoName>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub worker: WorkerCli,
}

impl WorkerDoctorCli {
    /// Parses `scrum-worker doctor ARGS` when those are the arguments; `None` for
    /// any other command line.
    pub fn from_args(args: &[String]) -> Option<Result<WorkerDoctorCli, clap::Error>> {
        (args.get(1).map(String::as_str) == Some("doctor"))
            .then(|| WorkerDoctorCli::try_parse_from(&args[1..]))
    }

    /// Runs every check into `report`.
    pub async fn check(&self, report: &mut Report) {
        let w = &self.worker;
        orchestrator(w, report).await;
        if self.repos.is_empty() {
            report.skip(
                "git",
                "no --repo given: name a repository this worker works on to check a push and pull requests there",
            );
        }
        for repo in &self.repos {
            push(w, repo, report).await;
            match repo.forge() {
                "gitlab" => merge_requests(w, repo, report).await,
                _ => pull_requests(w, repo, report).await,
            }
        }
        agent(w, report).await;
        sandbox(w, report).await;
    }
}

/// The orchestrator answers `/health`, and takes this worker's calls (`/workers`
/// is guarded as `/work/*` is).
async fn orchestrator(w: &WorkerCli, report: &mut Report) {
    let url = &w.orchestrator_url;
    let mut client = match OrchestratorClient::new(url) {
        Ok(c) => c
            .with_retries(1, Duration::from_millis(100))
            .with_timeout(Duration::from_secs(10)),
        Err(e) => return report.fail("orchestrator", e.to_string(), "fix ORCHESTRATOR_URL"),
    };
    if let Some(t) = &w.api_token {
        match ApiToken::new(t.expose()) {
            Ok(t) => client = client.with_token(t),
            Err(e) => {
                let fix = "set ORCHESTRATOR_API_TOKEN to the orchestrator's token";
                return report.fail("orchestrator", format!("ORCHESTRATOR_API_TOKEN: {e}"), fix);
            }
        }
    }
    let health = match client.health().await {
        Ok(h) => h,
        Err(e) => {
            return report.fail(
                "orchestrator",
                format!("cannot reach the orchestrator at {url}: {e}"),
                "check ORCHESTRATOR_URL, that the orchestrator runs, and that this host may reach its port",
            );
        }
    };
    let with = if w.api_token.is_some() {
        "ORCHESTRATOR_API_TOKEN"
    } else {
        "no token"
    };
    match client.workers().await {
        Ok(_) => report.ok(
            "orchestrator",
            format!("{url} (version {}) answers and takes this worker's calls ({with})", health.version),
        ),
        Err(e) if e.kind() == ErrorKind::Unauthorized => report.fail(
            "orchestrator",
            format!("{url} refuses this worker's calls with {with}: {e}"),
            "set ORCHESTRATOR_API_TOKEN to the orchestrator's ORCHESTRATOR_API_TOKEN",
        ),
        Err(e) if e.kind() == ErrorKind::Forbidden => report.fail(
            "orchestrator",
            format!("{url} does not take calls from this host without a token: {e}"),
            "add this host's address to the orchestrator's WORKER_IPS, or set ORCHESTRATOR_API_TOKEN on both",
        ),
        Err(e) => report.fail("orchestrator", format!("{url} answered /workers with: {e}"), ""),
    }
}

/// `git push --dry-run` to the repository, with the worker's credentials for its
/// forge (GitHub's at GIT_BASE_URL, GitLab's at GITLAB_URL).
async fn push(w: &WorkerCli, repo: &RepoName, report: &mut Report) {
    let author = (
        "scrum-worker".into(),
        format!("{}@scrum-worker.invalid", w.worker_id),
    );
    let remote = match w.forges(w.github_token.clone()).of(repo) {
        Ok(forge) => forge.remote(repo, None, &author),
        Err(e) => {
            return report.fail("git", e.to_string(), "set GITLAB_TOKEN and GITLAB_URL");
        }
    };
    let scratch = scratch_dir(w, "push");
    let result = remote.check_push(repo, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (at, token) = match repo.forge() {
        "gitlab" => ("GITLAB_URL", "GITLAB_TOKEN"),
        _ => ("GIT_BASE_URL", "GITHUB_TOKEN"),
    };
    match result {
        Ok(()) => report.ok(
            "git",
            format!("a push to {repo} at {} would be accepted (dry run)", remote.base_url),
        ),
        Err(e) => report.fail(
            "git",
            format!("a push to {repo} at {} is refused: {e}", remote.base_url),
            format!("check {at} and that {token} may push there (GitHub: the write role, a fine-grained token: Contents read and write; GitLab: the Developer role and the api scope)"),
        ),
    }
}

/// GitLab's word on whether the token may push and open merge requests: the
/// `api` scope and the Developer role in the project.
async fn merge_requests(w: &WorkerCli, repo: &RepoName, report: &mut Report) {
    let Some(token) = &w.gitlab_token else {
        let fix = "set GITLAB_TOKEN to a token with the api scope";
        return report.fail("gitlab", "GITLAB_TOKEN is not set", fix);
    };
    let checked =
        match scrum_gitlab::GitLabConfig::new(&w.gitlab_url, token.expose(), vec![repo.clone()])
            .and_then(scrum_gitlab::GitLabClient::new)
        {
            Ok(client) => client.check_access().await,
            Err(e) => Err(e),
        };
    match checked {
        Ok(()) => report.ok(
            "gitlab",
            format!("GITLAB_TOKEN may open merge requests in {repo}"),
        ),
        Err(e) => report.fail(
            "gitlab",
            format!("GITLAB_TOKEN at {}: {e}", w.gitlab_url),
            "give the token the api scope and its user the Developer role (or more) in the project",
        ),
    }
}

/// GitHub's word on whether the token may push and open pull requests.
async fn pull_requests(w: &WorkerCli, repo: &RepoName, report: &mut Report) {
    let Some(token) = &w.github_token else {
        let fix = "set GITHUB_TOKEN to a token that may push and open pull requests";
        return report.fail("github", "GITHUB_TOKEN is not set", fix);
    };
    let timing = Timing {
        request_timeout: Duration::from_secs(15),
        retries: 1,
        max_rate_limit_wait: Duration::from_secs(10),
        ..Timing::default()
    };
    let client = GitHubConfig::new(token.expose(), vec![repo.clone()])
        .and_then(|c| c.with_api_url(&w.github_api_url))
        .map(|c| c.with_timing(timing))
        .and_then(GitHubClient::new);
    let access = match client {
        Ok(c) => c.repo_access(repo).await,
        Err(e) => Err(e),
    };
    match access {
        Ok(a) if a.grants.is_none_or(|g| g.can_push()) => report.ok(
            "github",
            format!(
                "GITHUB_TOKEN may open pull requests in {repo} ({})",
                a.grants.map_or("role not shown".to_string(), |g| g.granted())
            ),
        ),
        Ok(a) => report.fail(
            "github",
            format!(
                "GITHUB_TOKEN cannot open pull requests in {repo} ({})",
                a.grants.map(|g| g.granted()).unwrap_or_default()
            ),
            format!("give the token's user the write role on {repo} (a fine-grained token: Contents and Pull requests read and write)"),
        ),
        Err(e) => report.fail(
            "github",
            format!("cannot read {repo} with GITHUB_TOKEN at {}: {e}", w.github_api_url),
            "check GITHUB_TOKEN, GITHUB_API_URL and that the token may see the repository",
        ),
    }
}

/// The workflow's agents answer `--version`; or WORKFLOW_COMMAND's program exists.
async fn agent(w: &WorkerCli, report: &mut Report) {
    if let Some(command) = w
        .workflow_command
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        let program = command.split_whitespace().next().unwrap_or_default();
        if on_path(program) {
            report.ok(
                "agent",
                format!("WORKFLOW_COMMAND runs `{program}`, which is installed"),
            );
        } else {
            report.fail(
                "agent",
                format!("WORKFLOW_COMMAND runs `{program}`, which is not on PATH"),
                "install it, or fix WORKFLOW_COMMAND",
            );
        }
        return;
    }
    let workflow = match w.workflow() {
        Ok(workflow) => workflow,
        Err(e) => return report.fail("agent", format!("{e:#}"), ""),
    };
    let mut programs: Vec<&str> = workflow
        .agents
        .values()
        .map(|a| match a {
            AgentSpec::Claude { command, .. } => command.as_str(),
            AgentSpec::Command { command } => command[0].as_str(),
        })
        .collect();
    programs.sort_unstable();
    programs.dedup();
    for program in programs {
        version(program, report).await;
    }
}

/// Runs `program --version`.
async fn version(program: &str, report: &mut Report) {
    let run = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let fix = "reinstall it (Claude Code: npm install -g @anthropic-ai/claude-code), or point WORKFLOW_FILE at another agent";
    match tokio::time::timeout(COMMAND_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => {
            let said = String::from_utf8_lossy(&out.stdout);
            let first = said
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .chars()
                .take(80)
                .collect::<String>();
            report.ok("agent", format!("`{program} --version` runs: {first}"));
        }
        Ok(Ok(out)) => {
            let said = String::from_utf8_lossy(&out.stderr);
            let last = said.lines().last().unwrap_or_default().trim().to_string();
            report.fail(
                "agent",
                format!("`{program} --version` failed ({}): {last}", out.status),
                fix,
            );
        }
        Ok(Err(e)) => report.fail("agent", format!("`{program}` cannot run: {e}"), fix),
        Err(_) => report.fail(
            "agent",
            format!("`{program} --version` did not finish in {COMMAND_TIMEOUT:?}"),
            fix,
        ),
    }
}

/// Runs `echo` in the configured sandbox, in a scratch cell laid out as a task's.
async fn sandbox(w: &WorkerCli, report: &mut Report) {
    let workflow = w.workflow().unwrap_or_else(|_| Workflow::builtin());
    let scratch = scratch_dir(w, "sandbox");
    let result = trial(w, &workflow, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok((mode, _)) if mode == "none" => report.skip(
            "sandbox",
            "SANDBOX=none: agents run unsandboxed, as the worker, with its files and network",
        ),
        Ok((mode, describe)) => report.ok(
            "sandbox",
            format!("SANDBOX={mode} runs a command: {describe}"),
        ),
        Err(e) => report.fail(
            "sandbox",
            e,
            "install bubblewrap and socat (apt-get install bubblewrap socat) or sandbox-runtime, or set SANDBOX=none to run agents unsandboxed",
        ),
    }
}

/// Starts the sandbox and runs a trivial command in it: its mode and description.
async fn trial(
    w: &WorkerCli,
    workflow: &Workflow,
    scratch: &Path,
) -> Result<(String, String), String> {
    let sandbox = Sandbox::start(&w.sandbox_settings(workflow), &scratch.join("proxy")).await?;
    let (dir, home, tmp, state) = (
        scratch.join("repo"),
        scratch.join("home"),
        scratch.join("tmp"),
        scratch.join("sandbox"),
    );
    for d in [&dir, &home, &tmp] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let cell = Cell {
        dir: &dir,
        home: &home,
        tmp: &tmp,
        env: &[],
        state: &state,
    };
    let argv = ["/bin/sh", "-c", "echo sandbox-ok"].map(String::from);
    let mut cmd = sandbox.command(&argv, &cell).await?;
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let mode = sandbox.mode();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            format!("SANDBOX={mode}: a trivial command did not finish in {COMMAND_TIMEOUT:?}")
        })?
        .map_err(|e| format!("SANDBOX={mode}: cannot start: {e}"))?;
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("sandbox-ok") {
        Ok((mode.to_string(), sandbox.describe()))
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().last().unwrap_or_default().trim().to_string();
        Err(format!(
            "SANDBOX={mode}: a trivial command failed ({}): {last}",
            out.status
        ))
    }
}

/// A scratch directory under WORKSPACE_DIR, laid out where a task's would be.
fn scratch_dir(w: &WorkerCli, what: &str) -> PathBuf {
    w.workspace_dir
        .join("tasks")
        .join("scrum-worker-doctor")
        .join(format!("{what}-{}", std::process::id()))
}
