//! [`CommandRunner`]: the `WorkflowRunner` the `scrum-worker` binary uses.
//!
//! For each assignment it
//! 1. prepares an isolated clone from a cached mirror, on a fresh
//!    `ai-feature/issue-N` branch from the repository's default branch (on a
//!    follow-up run, answering a failed check, a conflict, a request for changes
//!    or an `/agent` comment on the pull request, the branch as pushed, with the
//!    follow-up in the workflow's input: [`vars`]); on a follow-up for a
//!    conflict it merges the base branch in ([`merge`]): a clean merge is pushed
//!    with no agent, conflicted files go to the agent to resolve;
//! 2. runs the built-in AI Scrum Master workflow ([`workflow`]: architect,
//!    security, tester and product-owner agents, revisions, cost), or the workflow
//!    command (`WORKFLOW_COMMAND`: any script) in it, with the issue in environment
//!    variables and a JSON file, output to a per-task log, a timeout, and the whole
//!    process group killed on cancel or timeout;
//! 3. commits what the workflow left uncommitted, pushes the branch (replacing an
//!    earlier attempt's), and opens the pull request (on GitLab, the merge
//!    request) or reuses the open one: the task's forge ([`forge`]) says where
//!    and how; a follow-up then writes its round into the change request's
//!    description (a Rounds section).
//!
//! The built-in workflow's verdict says what happened: approved (deliver), rejected
//! or a failed gate (a failed attempt, with the cost and tokens spent), out of
//! credits (hand the task back), needs clarification (park the task with its
//! questions). A workflow command's exit code says it instead: `0` done, `75` (EX_TEMPFAIL) hand
//! the task back without spending an attempt (out of credits, needs clarification),
//! `65` (EX_DATAERR) failed for good (the issue cannot be done as written), anything
//! else a failed attempt that may be retried.

mod command;
pub mod forge;
mod git;
pub mod merge;
mod rounds;
pub mod sandbox;
mod secret;
pub mod vars;
pub mod workflow;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scrum_core::follow_up::FollowUpCause;
use scrum_core::{
    Assignment, Clarification, Completion, Error, Failure, Result, RunOutcome, WorkflowRunner,
};
use tokio_util::sync::CancellationToken;

pub use command::Exit;
pub use forge::{Forge, Forges, GitHubForge, GitLabForge};
pub use git::{GITHUB_USER, GitRemote, Workspace};
pub use secret::Secret;

use self::merge::Merge;
use self::sandbox::{Cell, Sandbox};
use self::workflow::Workflow;
use self::workflow::pipeline::{self, Job, Report, Verdict};

/// Exit code asking to hand the task back (EX_TEMPFAIL).
pub const EXIT_RELEASE: i32 = 75;
/// Exit code for a failure that no retry can fix (EX_DATAERR).
pub const EXIT_FATAL: i32 = 65;

/// What the runner needs.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Where mirrors, task clones and logs live (`WORKSPACE_DIR`).
    pub workspace_dir: PathBuf,
    /// The workflow command, run with `sh -c` in the clone (`WORKFLOW_COMMAND`);
    /// `None` runs [`RunnerConfig::workflow`].
    pub command: Option<String>,
    /// The built-in workflow, or the one `WORKFLOW_FILE` names.
    pub workflow: Arc<Workflow>,
    /// Whether the built-in workflow checks first that the issue is clear enough
    /// (`SKIP_CLARIFICATION_CHECK=true` turns it off).
    pub clarification_check: bool,
    /// The longest one run of the workflow command may take (`WORKFLOW_TIMEOUT`).
    pub timeout: Duration,
    /// The author of the commits the runner makes itself (where to clone from and
    /// push to is the task's forge's business: [`Forges`]).
    pub author: (String, String),
    /// Passed to the workflow as `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Option<Secret>,
    /// Keep each task's clone after the run (for debugging); by default it is removed.
    pub keep_workspaces: bool,
    /// The sandbox every agent call and workflow command runs in (`SANDBOX`).
    pub sandbox: Arc<Sandbox>,
}

/// Runs the workflow command for each assignment; see the [module docs](self).
pub struct CommandRunner {
    config: RunnerConfig,
    forges: Forges,
}

impl std::fmt::Debug for CommandRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRunner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CommandRunner {
    /// A runner that clones, pushes and opens change requests on `forges`, each
    /// task on its own forge's.
    pub fn new(config: RunnerConfig, forges: Forges) -> CommandRunner {
        CommandRunner { config, forges }
    }

    /// The sandbox agents run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.config.sandbox
    }

    /// The log file of one attempt: `owner__name__issue-N__attempt-K.log` for a
    /// GitHub task, `forge+group+sub+project__issue-N__attempt-K.log` for another
    /// forge's (`+` is in no repository's name, so no two tasks share a file).
    pub fn log_path(&self, a: &Assignment) -> PathBuf {
        let repo = a.task.repo_name();
        let name = match repo.forge() == scrum_core::model::GITHUB {
            true => format!("{}__{}", repo.owner(), repo.name()),
            false => format!("{}+{}", repo.forge(), repo.path().replace('/', "+")),
        };
        self.config.workspace_dir.join("logs").join(format!(
            "{name}__issue-{}__attempt-{}.log",
            a.task.number(),
            a.attempt
        ))
    }

    /// The remote as this assignment reaches it: its forge's, with the token it
    /// carries (a GitHub App's, scoped to the task's repository), else the
    /// worker's own for that forge.
    fn remote(&self, a: &Assignment) -> Result<GitRemote> {
        let repo = a.task.repo_name();
        let forge = self.forges.of(&repo)?;
        Ok(forge.remote(&repo, a.repo_token.as_ref(), &self.config.author))
    }

    async fn attempt(&self, a: &Assignment, cancel: &CancellationToken) -> Result<RunOutcome> {
        let c = &self.config;
        let repo = a.task.repo_name();
        // Under the forge's name and the repository's whole path, so no two
        // repositories share a clone (`acme/widgets`, `gitlab:acme/widgets`).
        let task_dir = c
            .workspace_dir
            .join("tasks")
            .join(repo.forge())
            .join(repo.path())
            .join(format!("issue-{}", a.task.number()));
        std::fs::create_dir_all(c.workspace_dir.join("logs"))
            .map_err(|e| Error::unavailable("could not create the log directory").with_source(e))?;
        let log = self.log_path(a);
        let ws = self
            .remote(a)?
            .prepare(
                &c.workspace_dir.join("mirrors"),
                &repo,
                &task_dir.join("repo"),
                &a.branch_name,
                a.follow_up.is_some(),
            )
            .await?;
        let outcome = self.work(a, &ws, &task_dir, &log, cancel).await;
        if !c.keep_workspaces {
            let _ = std::fs::remove_dir_all(&task_dir);
        }
        outcome
    }

    /// In the clone just prepared: on a follow-up for a conflict, merges the base
    /// branch first (a clean merge needs no agent), then runs the workflow with
    /// what it is told of the task ([`vars`]) and delivers.
    async fn work(
        &self,
        a: &Assignment,
        ws: &Workspace,
        task_dir: &std::path::Path,
        log: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let c = &self.config;
        let merge = match &a.follow_up {
            Some(f) if f.cause == FollowUpCause::Conflicts => {
                Some(self.remote(a)?.merge_base(ws).await?)
            }
            _ => None,
        };
        let conflicted: &[String] = match &merge {
            Some(Merge::UpToDate) => return Ok(self.already_merged(a, log).await),
            Some(Merge::Clean) => {
                workflow::agent::append(log, "== the base branch merged without conflicts");
                return self.deliver(a, ws, None).await;
            }
            Some(Merge::Conflicted(files)) => {
                workflow::agent::append(
                    log,
                    &format!("== the base branch conflicts in {}", files.join(", ")),
                );
                files
            }
            None => &[],
        };
        c.sandbox
            .prepare_clone(&ws.dir)
            .map_err(Error::unavailable)?;
        let a = &cleaned(a, log);
        let (home, tmp, state) = (
            task_dir.join("home"),
            task_dir.join("tmp"),
            task_dir.join("sandbox"),
        );
        // In the private home, where a sandboxed workflow can read it.
        std::fs::create_dir_all(&home)
            .map_err(|e| Error::unavailable("could not create the task's home").with_source(e))?;
        let issue_file = home.join("issue.json");
        std::fs::write(&issue_file, vars::issue_json(a, conflicted).to_string())
            .map_err(|e| Error::unavailable("could not write the issue file").with_source(e))?;
        let mut env = vec![
            ("ISSUE_REPOSITORY".to_string(), a.task.repo().to_string()),
            ("ISSUE_NUMBER".to_string(), a.task.number().to_string()),
            ("ISSUE_TITLE".to_string(), a.issue.title.clone()),
            ("ISSUE_BODY".to_string(), a.issue.body.clone()),
            ("ISSUE_LABELS".to_string(), a.issue.labels.join(",")),
            ("ISSUE_FILE".to_string(), issue_file.display().to_string()),
            ("BRANCH_NAME".to_string(), a.branch_name.clone()),
            ("BASE_BRANCH".to_string(), ws.base_branch.clone()),
            ("ATTEMPT".to_string(), a.attempt.to_string()),
            ("MAX_ATTEMPTS".to_string(), a.max_attempts.to_string()),
        ];
        if let Some(f) = &a.follow_up {
            env.extend(vars::follow_up_env(f, conflicted));
        }
        // Commits the workflow makes need an identity even on a host with no git
        // configuration; one the worker's own environment sets wins.
        let (name, email) = &c.author;
        for (var, value) in [
            ("GIT_AUTHOR_NAME", name),
            ("GIT_AUTHOR_EMAIL", email),
            ("GIT_COMMITTER_NAME", name),
            ("GIT_COMMITTER_EMAIL", email),
        ] {
            if std::env::var_os(var).is_none() {
                env.push((var.to_string(), value.clone()));
            }
        }
        if let Some(key) = &c.anthropic_api_key {
            env.push(("ANTHROPIC_API_KEY".to_string(), key.expose().to_string()));
        }
        let cell = Cell {
            dir: &ws.dir,
            home: &home,
            tmp: &tmp,
            env: &env,
            state: &state,
        };
        match &c.command {
            Some(command) => {
                self.command(a, ws, command, &cell, conflicted, log, cancel)
                    .await
            }
            None => self.builtin(a, ws, &cell, conflicted, log, cancel).await,
        }
    }

    /// A follow-up for a conflict whose branch already holds the base branch
    /// (merged by someone since): nothing to push; the pull request stands.
    async fn already_merged(&self, a: &Assignment, log: &std::path::Path) -> RunOutcome {
        workflow::agent::append(log, "== the branch already holds the base branch");
        let Some(f) = &a.follow_up else {
            return failure(true, "no pull request to follow up".into());
        };
        self.record_rounds(a, &f.pr_url).await;
        RunOutcome::Success(Completion {
            pr_url: Some(f.pr_url.clone()),
            ..Completion::default()
        })
    }

    /// Runs the workflow command and reads its exit code. On a conflict, the
    /// merge it resolved is concluded (no conflict marker may remain) before
    /// the push.
    #[allow(clippy::too_many_arguments)]
    async fn command(
        &self,
        a: &Assignment,
        ws: &Workspace,
        command: &str,
        cell: &Cell<'_>,
        conflicted: &[String],
        log: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let c = &self.config;
        let exit = command::run(command, &c.sandbox, cell, log, c.timeout, cancel).await?;
        let log = log.to_path_buf();
        Ok(match exit {
            Exit::Code(0) if !conflicted.is_empty() => {
                match merge::conclude(&ws.dir, conflicted, cell.env).await {
                    Ok(_) => self.deliver(a, ws, None).await?,
                    Err(e) => failure(true, format!("the workflow {e}")),
                }
            }
            Exit::Code(0) => self.deliver(a, ws, None).await?,
            Exit::Code(EXIT_RELEASE) => RunOutcome::Release(format!(
                "the workflow handed the task back (exit {EXIT_RELEASE}): {}",
                command::tail(&log, 3)
            )),
            Exit::Code(EXIT_FATAL) => failure(
                false,
                format!("the workflow gave up: {}", command::tail(&log, 10)),
            ),
            Exit::Code(code) => failure(
                true,
                format!(
                    "the workflow exited with {code}: {}",
                    command::tail(&log, 10)
                ),
            ),
            Exit::Signalled => failure(true, "the workflow was killed by a signal".into()),
            Exit::TimedOut => failure(true, format!("the workflow ran past {:?}", c.timeout)),
            Exit::Cancelled => RunOutcome::Release("cancelled".into()),
        })
    }

    /// Runs the built-in workflow (or `WORKFLOW_FILE`'s) and turns its verdict
    /// into the outcome, with the cost and tokens of every agent call.
    async fn builtin(
        &self,
        a: &Assignment,
        ws: &Workspace,
        cell: &Cell<'_>,
        conflicted: &[String],
        log: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let c = &self.config;
        let job = Job {
            cell: *cell,
            sandbox: &c.sandbox,
            scratch: &pipeline::scratch_dir(cell.home),
            log,
            vars: vars::prompt_vars(a, &ws.base_branch, conflicted),
            // The issue was clear enough for the run that opened the pull request.
            clarify: c.clarification_check && a.follow_up.is_none(),
            follow_up: a.follow_up.is_some(),
            conflicts: conflicted,
        };
        let report = pipeline::run(&c.workflow, &job, cancel).await;
        let spent = |reason: String| {
            RunOutcome::Failure(Failure {
                reason,
                retryable: true,
                cost_usd: report.spend.cost_usd,
                tokens: report.spend.tokens,
            })
        };
        Ok(match &report.verdict {
            Verdict::Approved => match self.deliver(a, ws, Some(&report)).await? {
                RunOutcome::Failure(f) => spent(f.reason),
                other => other,
            },
            Verdict::Rejected { reason }
            | Verdict::GateFailed { reason, .. }
            | Verdict::AgentFailed { reason, .. } => spent(reason.clone()),
            Verdict::OutOfCredits { reason } => RunOutcome::Release(format!(
                "the agent is out of credits: {}",
                workflow::agent::cap(reason, 300)
            )),
            Verdict::NeedsClarification {
                questions,
                reasoning,
            } => RunOutcome::Clarify(Clarification {
                questions: questions.clone(),
                reasoning: reasoning.clone(),
                cost_usd: report.spend.cost_usd,
                tokens: report.spend.tokens,
            }),
            Verdict::Cancelled => RunOutcome::Release("cancelled".into()),
        })
    }

    /// Commits, pushes and opens (or reuses) the pull request; with the built-in
    /// workflow's `report`, its body sums up the phases and the cost.
    async fn deliver(
        &self,
        a: &Assignment,
        ws: &Workspace,
        report: Option<&Report>,
    ) -> Result<RunOutcome> {
        let remote = &self.remote(a)?;
        let message = format!("{} (#{})", a.issue.title, a.task.number());
        let commits = remote.commit_leftovers(ws, &message).await?;
        if commits == 0 {
            return Ok(failure(
                false,
                "the workflow finished without changing anything".into(),
            ));
        }
        remote.push(ws).await?;
        let mut body = format!(
            "Automated change for #{} ({} commit(s)).",
            a.task.number(),
            commits
        );
        if let Some(r) = report {
            body.push_str("\n\n");
            body.push_str(&r.summary());
        }
        let url = self
            .forges
            .of(&a.task.repo_name())?
            .open_change(
                &a.task,
                &a.branch_name,
                &ws.base_branch,
                &a.issue.title,
                &body,
                a.repo_token.as_ref(),
            )
            .await?;
        if a.follow_up.is_some() {
            self.record_rounds(a, &url).await;
        }
        Ok(RunOutcome::Success(Completion {
            pr_url: Some(url),
            cost_usd: report.and_then(|r| r.spend.cost_usd),
            tokens: report.and_then(|r| r.spend.tokens),
            revisions: report.map(|r| r.revisions),
        }))
    }
}

impl CommandRunner {
    /// On a follow-up, once its work is pushed: the change request's description
    /// gets the Rounds section ([`rounds`]) with this round completed. The
    /// description is only a summary: a failure to edit it is logged and the run
    /// completes all the same.
    async fn record_rounds(&self, a: &Assignment, pr_url: &str) {
        let Some(f) = &a.follow_up else { return };
        let all = rounds::rounds(f, "completed");
        let token = a.repo_token.as_ref();
        let edited = async {
            let forge = self.forges.of(&a.task.repo_name())?;
            let body = forge.change_body(pr_url, token).await?;
            let new = rounds::with_rounds(&body, &all);
            if new != body {
                forge.set_change_body(pr_url, &new, token).await?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = edited.await {
            tracing::warn!(task = %a.task, pr = %pr_url, error = %e, "could not write the rounds into the pull request's body");
        }
    }
}

/// The assignment with its issue's text and follow-up feedback cleaned of what a
/// reader cannot see ([`scrum_core::clean`]); what was removed goes to the log.
/// The digest was checked on the text as approved: the cleaning comes after.
fn cleaned(a: &Assignment, log: &std::path::Path) -> Assignment {
    let mut a = a.clone();
    let mut issue = (*a.issue).clone();
    let mut removed = Vec::new();
    let mut clean = |what: &str, text: &mut String| {
        let c = scrum_core::clean::clean(text);
        if c.removed_anything() {
            removed.push(format!("{what}: {}", c.describe()));
            *text = c.text;
        }
    };
    clean("title", &mut issue.title);
    clean("body", &mut issue.body);
    if let Some(r) = &mut a.follow_up {
        clean("follow-up feedback", &mut r.feedback);
    }
    if !removed.is_empty() {
        let said = removed.join("; ");
        tracing::warn!(task = %a.task, removed = %said, "removed text a reader cannot see before the agents read the issue");
        workflow::agent::append(
            log,
            &format!("== text cleaned before the agents read it: {said}"),
        );
    }
    a.issue = std::sync::Arc::new(issue);
    a
}

fn failure(retryable: bool, reason: String) -> RunOutcome {
    RunOutcome::Failure(Failure {
        reason,
        retryable,
        ..Failure::default()
    })
}

#[async_trait]
impl WorkflowRunner for CommandRunner {
    async fn run(&self, a: &Assignment, cancel: CancellationToken) -> RunOutcome {
        tracing::info!(task = %a.task, attempt = a.attempt, log = %self.log_path(a).display(), "running the workflow");
        match self.attempt(a, &cancel).await {
            Ok(outcome) => outcome,
            Err(_) if cancel.is_cancelled() => RunOutcome::Release("cancelled".into()),
            Err(e) => failure(e.kind() != scrum_core::ErrorKind::Invalid, e.to_string()),
        }
    }
}
