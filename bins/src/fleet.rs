//! A whole deployment on one machine, for the end-to-end test and the demo: the fake
//! GitHub, a local bare git repository per GitHub repository as the remote, the real
//! `scrum-orchestrator` binary on SQLite in a temporary directory, and real
//! `scrum-worker` binaries running a scripted workflow that commits a file.
//!
//! With `DATABASE_URL` set ([`Fleet::set_env`]), several orchestrators can run side
//! by side on one shared store ([`Fleet::start_orchestrator_named`]), each on its own
//! port; the workers call the first, `orchestrator`.
//!
//! The scripted workflow reads markers in the issue title: `[fails-once]` fails its
//! first attempt, `[always-fails]` fails every attempt, `[slow]` takes
//! `SLOW_SECS` (default 20) on its first attempt; any other issue gets a file
//! `changes/issue-N.md` committed.
//!
//! Workers started with [`Fleet::start_agent_worker`] run the built-in workflow
//! instead, over [`FAKE_CLAUDE`], a stand-in for Claude Code first on their `PATH`
//! that answers with Claude Code's JSON result and commits as each role would. It
//! reads the same markers, and more (see [`FAKE_CLAUDE`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scrum_core::TaskId;
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_http::OrchestratorClient;

/// The scripted workflow every worker of a fleet runs.
///
/// With `RUN_LOG` set, each run appends `start N <ns>` and `end N <ns>` lines
/// (issue number, nanosecond clock) to that file around `RUN_HOLD_SECS` (default
/// 0.3) of simulated work, so a test can tell which runs overlapped in time.
pub const WORKFLOW: &str = r#"#!/bin/sh
set -e
if [ -n "$RUN_LOG" ]; then
  echo "start $ISSUE_NUMBER $(date +%s%N)" >> "$RUN_LOG"
  sleep "${RUN_HOLD_SECS:-0.3}"
fi
case "$ISSUE_TITLE" in
  *"[always-fails]"*) echo "the tests fail in $PWD/tests"; exit 1 ;;
  *"[fails-once]"*) if [ "$ATTEMPT" = 1 ]; then echo "flaky: attempt 1 fails"; exit 1; fi ;;
  *"[slow]"*) if [ "$ATTEMPT" = 1 ]; then sleep "${SLOW_SECS:-20}"; fi ;;
esac
mkdir -p changes
printf 'Issue #%s: %s (attempt %s)\n' "$ISSUE_NUMBER" "$ISSUE_TITLE" "$ATTEMPT" > "changes/issue-$ISSUE_NUMBER.md"
git add changes
git commit -q -m "Resolve #$ISSUE_NUMBER"
[ -z "$RUN_LOG" ] || echo "end $ISSUE_NUMBER $(date +%s%N)" >> "$RUN_LOG"
"#;

/// A stand-in for `claude -p --output-format json`: it tells the role from the
/// appended system prompt, reads the prompt on standard input, and answers with
/// Claude Code's JSON result (cost $0.25 for the architect, $0.10 for the others;
/// 1000 input, 200 output, 300 cache tokens each). The architect commits
/// `changes/issue-N.md`, the tester `tests/issue-N.md`; security says "no security
/// issues"; the product owner approves. Markers in the issue title change that:
///
/// - `[fails-once]`, `[always-fails]`, `[slow]`: as the scripted workflow (by the
///   `ATTEMPT` the runner sets), in the architect's call;
/// - `[lazy-architect]`: the architect commits nothing;
/// - `[revise-twice]`: the product owner answers REVISE twice, then APPROVE;
/// - `[revise-forever]`: it always answers REVISE;
/// - `[rate-limited]`: the first architect call fails with a rate limit (reported
///   as `subtype: success` with `is_error: true`, as Claude Code does);
/// - `[no-credits]`: the first call fails for a credit balance too low;
/// - `[vague]`: the first clarification check asks two questions.
///
/// Each call's prompt and arguments are kept in `$FAKE_CLAUDE_STATE/<owner>_<repo>_issue-N/`
/// as `<role>-<n>.prompt` and `.args` (and `leaked` if a GitHub or orchestrator
/// token reached it); in a sandbox, which passes no `FAKE_CLAUDE_STATE`, under its
/// private `$HOME`.
pub const FAKE_CLAUDE: &str = r#"#!/bin/sh
role=unknown
for a in "$@"; do
  case "$a" in
    *"checking whether an issue can be implemented"*) role=clarify ;;
    *"You are the Architect"*) role=architect ;;
    *"You are the Security"*) role=security ;;
    *"You are the Tester"*) role=tester ;;
    *"You are the Product Owner"*) role=po ;;
  esac
done
here=$(pwd)
issue=$(basename "$(dirname "$here")")
repo=$(basename "$(dirname "$(dirname "$here")")")
owner=$(basename "$(dirname "$(dirname "$(dirname "$here")")")")
state="${FAKE_CLAUDE_STATE:-$HOME/.fake-claude}/${owner}_${repo}_${issue}"
mkdir -p "$state"
n=$(( $(cat "$state/$role.count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/$role.count"
all=$(( $(cat "$state/calls.count" 2>/dev/null || echo 0) + 1 ))
echo "$all" > "$state/calls.count"
cat > "$state/$role-$n.prompt"
printf '%s\n' "$@" > "$state/$role-$n.args"
if [ -n "$GITHUB_TOKEN$GH_TOKEN$ORCHESTRATOR_API_TOKEN" ]; then echo "$role" >> "$state/leaked"; fi
title="$ISSUE_TITLE"
number=${issue#issue-}
answer() { # cost, subtype, is_error, result (JSON-escaped)
  printf '{"type":"result","subtype":"%s","is_error":%s,"duration_ms":1200,"duration_api_ms":1000,"num_turns":3,"result":"%s","session_id":"fake-%s-%s","total_cost_usd":%s,"usage":{"input_tokens":1000,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":200}}\n' "$2" "$3" "$4" "$role" "$n" "$1"
}
case "$title" in
  *"[no-credits]"*) if [ "$all" = 1 ]; then answer 0 success true "Credit balance is too low"; exit 1; fi ;;
esac
case "$role" in
  clarify)
    case "$title" in
      *"[vague]"*) if [ "$n" = 1 ]; then answer 0.02 success false '{\"needs_clarification\": true, \"questions\": [\"Which page should change?\", \"What should it look like?\"], \"reasoning\": \"The issue names no page.\"}'; else answer 0.02 success false '{\"needs_clarification\": false, \"questions\": [], \"reasoning\": \"Answered.\"}'; fi ;;
      *) answer 0.02 success false '{\"needs_clarification\": false, \"questions\": [], \"reasoning\": \"Clear enough.\"}' ;;
    esac ;;
  architect)
    case "$title" in
      *"[rate-limited]"*) if [ "$n" = 1 ]; then answer 0 success true "API Error: 429 rate_limit_error: Number of request tokens has exceeded your per-minute rate limit"; exit 1; fi ;;
      *"[always-fails]"*) answer 0.05 error_during_execution true "the tests fail in $here/tests"; exit 1 ;;
      *"[fails-once]"*) if [ "$ATTEMPT" = 1 ]; then answer 0.05 error_during_execution true "flaky: attempt 1 fails"; exit 1; fi ;;
      *"[slow]"*) if [ "$ATTEMPT" = 1 ]; then sleep "${SLOW_SECS:-20}"; fi ;;
    esac
    case "$title" in
      *"[lazy-architect]"*) answer 0.25 success false "I looked around and changed nothing."; exit 0 ;;
    esac
    mkdir -p changes
    printf 'Issue #%s: %s (architect pass %s)\n' "$number" "$title" "$n" > "changes/issue-$number.md"
    git add changes && git commit -q -m "Implement #$number (pass $n)"
    answer 0.25 success false "Implemented the change in changes/issue-$number.md." ;;
  security) answer 0.10 success false "Reviewed the diff: no security issues." ;;
  tester)
    mkdir -p tests
    printf 'Tests for #%s (pass %s)\n' "$number" "$n" > "tests/issue-$number.md"
    git add tests && git commit -q -m "Test #$number (pass $n)"
    answer 0.10 success false "Added tests/issue-$number.md; all tests pass." ;;
  po)
    case "$title" in
      *"[revise-forever]"*) answer 0.10 success false 'The change misses the edge cases.\nDECISION: REVISE' ;;
      *"[revise-twice]"*) if [ "$n" -le 2 ]; then answer 0.10 success false "Please handle empty input (review $n).\\nDECISION: REVISE"; else answer 0.10 success false 'Good now.\nDECISION: APPROVE'; fi ;;
      *) answer 0.10 success false 'Looks right.\nDECISION: APPROVE' ;;
    esac ;;
  *) echo "fake claude: unknown role" >&2; exit 2 ;;
esac
"#;

/// How an issue looks on the fake GitHub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueProgress {
    /// Labelled ready, not yet picked up.
    Ready,
    /// Labelled in progress.
    InProgress,
    /// Labelled completed.
    Completed,
    /// Labelled failed.
    Failed,
}

/// The name of the orchestrator the workers call, and of its log.
const MAIN: &str = "orchestrator";

/// An orchestrator of the fleet: its port (kept across restarts) and its process.
struct OrchestratorProcess {
    port: u16,
    child: Option<Child>,
}

/// A running fleet. Dropping it kills every process it started.
pub struct Fleet {
    /// The fake GitHub everything talks to.
    pub github: FakeGitHub,
    /// The issues, in the order they were opened.
    pub issues: Vec<TaskId>,
    root: PathBuf,
    bin_dir: PathBuf,
    /// By name; `orchestrator` is there from the start.
    orchestrators: BTreeMap<String, OrchestratorProcess>,
    workers: BTreeMap<String, Child>,
    env: Vec<(String, String)>,
}

impl Fleet {
    /// Sets up the fake GitHub with `issues` (repository, title) labelled `ai-ready`,
    /// a bare remote per repository, and the workflow script, all under `root`. The
    /// binaries are looked up in `bin_dir`. Nothing runs yet.
    pub async fn prepare(
        root: &Path,
        bin_dir: &Path,
        issues: &[(&str, &str)],
    ) -> anyhow::Result<Fleet> {
        for bin in ["scrum-orchestrator", "scrum-worker"] {
            if !bin_dir.join(bin).is_file() {
                bail!(
                    "{} is missing: build it first (cargo build -p scrum-bins --bins)",
                    bin_dir.join(bin).display()
                );
            }
        }
        let github = FakeGitHub::start().await;
        let remotes = root.join("remotes");
        github.serve_git_from(&remotes);
        let mut repos: Vec<&str> = issues.iter().map(|(r, _)| *r).collect();
        repos.dedup();
        for repo in &repos {
            github.add_repo(repo);
            make_remote(&remotes, repo, &root.join("seed"))?;
        }
        let mut ids = Vec::new();
        for (n, (repo, title)) in issues.iter().enumerate() {
            let issue = NewIssue::new(title)
                .body("Scripted issue for the scrum orchestrator's demo.")
                .labels(&["ai-ready"])
                .created_at(scrum_core::Timestamp(1_700_000_000_000 + n as i64 * 1000));
            ids.push(github.add_issue(repo, issue));
        }
        let workflow = root.join("workflow.sh");
        std::fs::write(&workflow, WORKFLOW)?;
        let agents = root.join("agents");
        std::fs::create_dir_all(&agents)?;
        let claude = agents.join("claude");
        std::fs::write(&claude, FAKE_CLAUDE)?;
        std::fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        // The built-in workflow with waits short enough for a test.
        let quick = crate::runner::workflow::DEFAULT_WORKFLOW
            .replace("initial_delay_ms = 30000", "initial_delay_ms = 50")
            .replace("max_delay_ms = 300000", "max_delay_ms = 200");
        std::fs::write(root.join("workflow.toml"), quick)?;
        let main = OrchestratorProcess {
            port: free_port()?,
            child: None,
        };
        std::fs::create_dir_all(root.join("logs"))?;
        let env = vec![
            ("GITHUB_TOKEN".to_string(), github.token().to_string()),
            ("GITHUB_API_URL".to_string(), github.url()),
            ("LOG_LEVEL".to_string(), "INFO".to_string()),
            // The scripted workflow and the fake agent keep records outside their
            // clone: a test that wants a sandbox sets SANDBOX itself.
            ("SANDBOX".to_string(), "none".to_string()),
        ];
        Ok(Fleet {
            github,
            issues: ids,
            root: root.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            orchestrators: BTreeMap::from([(MAIN.to_string(), main)]),
            workers: BTreeMap::new(),
            env: {
                let mut env = env;
                env.push(("GITHUB_REPOS".to_string(), repos.join(",")));
                env
            },
        })
    }

    /// Sets an environment variable of every process started from now on, e.g.
    /// `MAX_ATTEMPTS` for the orchestrator, `DATABASE_URL` to put the
    /// orchestrators on a shared store instead of SQLite in their state directory, or
    /// `ORCHESTRATOR_HOST` (default `127.0.0.1`) to listen on more than loopback:
    /// the fleet still calls its orchestrators at `127.0.0.1`, so pick an address
    /// that covers it, such as `0.0.0.0`. The settings the fleet itself needs (ports,
    /// state directory, lease, poll interval) still win.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The URL of the orchestrator the workers call.
    pub fn url(&self) -> String {
        self.orchestrator_url(MAIN)
            .expect("the fleet's first orchestrator always has a port")
    }

    /// The URL of orchestrator `name`, once it was started.
    pub fn orchestrator_url(&self, name: &str) -> Option<String> {
        let o = self.orchestrators.get(name)?;
        Some(format!("http://127.0.0.1:{}", o.port))
    }

    /// Where the fleet keeps its files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts (or restarts) the orchestrator and waits until its API answers.
    pub async fn start_orchestrator(&mut self) -> anyhow::Result<()> {
        self.start_orchestrator_named(MAIN).await
    }

    /// Starts (or restarts) orchestrator `name` on a port of its own (the same on a
    /// restart), with its own state directory and log, and waits until its API
    /// answers. Only with a shared `DATABASE_URL` may two run at once.
    pub async fn start_orchestrator_named(&mut self, name: &str) -> anyhow::Result<()> {
        let port = match self.orchestrators.get(name) {
            Some(o) => o.port,
            None => free_port()?,
        };
        let state = match name {
            MAIN => self.root.join("state"),
            _ => self.root.join(format!("state-{name}")),
        };
        let mut cmd = self.command("scrum-orchestrator", name)?;
        if !self.env.iter().any(|(k, _)| k == "ORCHESTRATOR_HOST") {
            cmd.env("ORCHESTRATOR_HOST", "127.0.0.1");
        }
        cmd.env("ORCHESTRATOR_PORT", port.to_string())
            .env("STATE_DIR", state)
            .env("GITHUB_POLL_INTERVAL", "1")
            .env("GITHUB_WRITE_SPACING_MS", "0")
            .env("LEASE_SECS", "3")
            .env("RETRY_BACKOFF_SECS", "1");
        if !self.env.iter().any(|(k, _)| k == "DATABASE_URL") {
            cmd.env_remove("DATABASE_URL");
        }
        let child = cmd.spawn().context("starting scrum-orchestrator")?;
        let url = format!("http://127.0.0.1:{port}");
        let o = self
            .orchestrators
            .entry(name.to_string())
            .or_insert(OrchestratorProcess { port, child: None });
        o.child = Some(child);
        let client = OrchestratorClient::new(&url).map_err(anyhow::Error::msg)?;
        let log = self.log(name);
        for _ in 0..200 {
            let exited = self
                .orchestrators
                .get_mut(name)
                .and_then(|o| o.child.as_mut())
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!(
                    "scrum-orchestrator {name} exited with {status}; see {}",
                    log.display()
                );
            }
            if client.health().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "scrum-orchestrator {name} did not answer within 10 s; see {}",
            log.display()
        )
    }

    /// Waits until `done` holds, looking every 100 ms; after `limit` it panics with
    /// `what`, the issues' progress and the orchestrator's last log lines.
    pub async fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let start = std::time::Instant::now();
        while !done() {
            if start.elapsed() > limit {
                let logs = std::fs::read_to_string(self.log(MAIN)).unwrap_or_default();
                let tail: Vec<&str> = logs.lines().rev().take(40).collect();
                panic!(
                    "timed out waiting for {what}; progress {:?}\norchestrator log (last lines, newest first):\n{}",
                    self.progress(),
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to `limit`) until every issue is labelled completed or failed, then
    /// (up to 30 s more) until the outbox wrote what follows the final labels: no
    /// issue keeps its ready or in-progress label.
    pub async fn wait_for_outcomes(&self, limit: Duration) {
        self.wait_for("every issue to finish", limit, || self.finished())
            .await;
        self.wait_for("the ready labels to go", Duration::from_secs(30), || {
            self.issues.iter().all(|id| {
                !self
                    .github
                    .labels(id)
                    .iter()
                    .any(|l| l == "ai-ready" || l == "ai-in-progress")
            })
        })
        .await;
    }

    /// Kills the orchestrator with SIGKILL (a crash) and waits for it to be gone.
    pub fn kill_orchestrator(&mut self) {
        self.kill_orchestrator_named(MAIN);
    }

    /// Kills orchestrator `name` with SIGKILL (a crash) and waits for it to be gone.
    pub fn kill_orchestrator_named(&mut self, name: &str) {
        let child = self
            .orchestrators
            .get_mut(name)
            .and_then(|o| o.child.take());
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a worker named `id`.
    pub fn start_worker(&mut self, id: &str) -> anyhow::Result<()> {
        let mut cmd = self.worker_command(id)?;
        cmd.env(
            "WORKFLOW_COMMAND",
            format!("sh {}", self.root.join("workflow.sh").display()),
        );
        let child = cmd
            .spawn()
            .with_context(|| format!("starting scrum-worker {id}"))?;
        self.workers.insert(id.to_string(), child);
        Ok(())
    }

    /// `scrum-worker` as worker `id` of this fleet, before its workflow is chosen.
    fn worker_command(&self, id: &str) -> anyhow::Result<Command> {
        let mut cmd = self.command("scrum-worker", id)?;
        cmd.env("WORKER_ID", id)
            .env("ORCHESTRATOR_URL", self.url())
            .env("WORKSPACE_DIR", self.root.join("workspaces").join(id))
            .env(
                "GIT_BASE_URL",
                format!("file://{}", self.root.join("remotes").display()),
            )
            .env("WORKER_POLL_INTERVAL", "1")
            .env("SHUTDOWN_GRACE", "5");
        Ok(cmd)
    }

    /// Starts a worker named `id` that runs the built-in workflow (with retry
    /// waits of milliseconds) over [`FAKE_CLAUDE`], first on its `PATH`; the fake's
    /// records go to [`Fleet::agent_state`].
    pub fn start_agent_worker(&mut self, id: &str) -> anyhow::Result<()> {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut cmd = self.worker_command(id)?;
        cmd.env_remove("WORKFLOW_COMMAND")
            .env("WORKFLOW_FILE", self.root.join("workflow.toml"))
            .env("FAKE_CLAUDE_STATE", self.agent_state())
            .env(
                "PATH",
                format!("{}:{path}", self.root.join("agents").display()),
            );
        let child = cmd
            .spawn()
            .with_context(|| format!("starting scrum-worker {id}"))?;
        self.workers.insert(id.to_string(), child);
        Ok(())
    }

    /// Where [`FAKE_CLAUDE`] keeps what each issue's calls got.
    pub fn agent_state(&self) -> PathBuf {
        self.root.join("agent-state")
    }

    /// What [`FAKE_CLAUDE`] kept for `id`: `(file name, content)`, sorted by name.
    pub fn agent_records(&self, id: &TaskId) -> Vec<(String, String)> {
        let dir = self.agent_dir(id);
        let mut records: Vec<(String, String)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        records.sort();
        records
    }

    /// The content of [`FAKE_CLAUDE`]'s record `name` for `id` (such as
    /// `architect-1.prompt`), if it was written.
    pub fn agent_record(&self, id: &TaskId, name: &str) -> Option<String> {
        std::fs::read_to_string(self.agent_dir(id).join(name)).ok()
    }

    /// Where [`FAKE_CLAUDE`] keeps its records for `id`.
    fn agent_dir(&self, id: &TaskId) -> PathBuf {
        self.agent_state().join(format!(
            "{}_{}_issue-{}",
            id.repo_name().owner(),
            id.repo_name().name(),
            id.number()
        ))
    }

    /// How many times [`FAKE_CLAUDE`] was called as `role` for `id`.
    pub fn agent_calls(&self, id: &TaskId, role: &str) -> u32 {
        self.agent_record(id, &format!("{role}.count"))
            .map_or(0, |c| c.trim().parse().unwrap_or(0))
    }

    /// Kills worker `id` with SIGKILL, mid-task or not.
    pub fn kill_worker(&mut self, id: &str) {
        if let Some(mut child) = self.workers.remove(id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks orchestrator `name` to stop (SIGTERM, as a service manager would) and
    /// waits up to 15 s for it to exit.
    pub fn stop_orchestrator_named(&mut self, name: &str) {
        let child = self
            .orchestrators
            .get_mut(name)
            .and_then(|o| o.child.take());
        stop_all(child);
    }

    /// Asks every process to stop (SIGTERM) and waits up to 15 s for each.
    pub fn stop(&mut self) {
        let orchestrators = self
            .orchestrators
            .values_mut()
            .filter_map(|o| o.child.take());
        let children: Vec<Child> = std::mem::take(&mut self.workers)
            .into_values()
            .chain(orchestrators)
            .collect();
        stop_all(children);
    }

    /// Every process the fleet started that it has not yet waited for.
    fn children(&mut self) -> impl Iterator<Item = &mut Child> {
        let orchestrators = self
            .orchestrators
            .values_mut()
            .filter_map(|o| o.child.as_mut());
        self.workers.values_mut().chain(orchestrators)
    }

    /// Each issue's progress, from its labels on the fake GitHub.
    pub fn progress(&self) -> Vec<(TaskId, IssueProgress)> {
        self.issues
            .iter()
            .map(|id| {
                let labels = self.github.labels(id);
                let has = |l: &str| labels.iter().any(|x| x == l);
                let p = if has("ai-completed") {
                    IssueProgress::Completed
                } else if has("ai-failed") {
                    IssueProgress::Failed
                } else if has("ai-in-progress") {
                    IssueProgress::InProgress
                } else {
                    IssueProgress::Ready
                };
                (id.clone(), p)
            })
            .collect()
    }

    /// Whether every issue is labelled completed or failed.
    pub fn finished(&self) -> bool {
        self.progress()
            .iter()
            .all(|(_, p)| matches!(p, IssueProgress::Completed | IssueProgress::Failed))
    }

    /// The branches of `repo`'s bare remote.
    pub fn remote_branches(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let out = Command::new("git")
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .current_dir(self.root.join("remotes").join(format!("{repo}.git")))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// A file's content on a branch of `repo`'s remote.
    pub fn remote_file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["show", &format!("{branch}:{path}")])
            .current_dir(self.root.join("remotes").join(format!("{repo}.git")))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The log file of a process of the fleet (`orchestrator`, another
    /// orchestrator's name, or a worker id).
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    fn command(&self, bin: &str, log_name: &str) -> anyhow::Result<Command> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(log_name))?;
        let mut cmd = Command::new(self.bin_dir.join(bin));
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(cmd)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.children() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A bare repository `{remotes}/{repo}.git` whose `main` has one commit.
fn make_remote(remotes: &Path, repo: &str, scratch: &Path) -> anyhow::Result<()> {
    let bare = remotes.join(format!("{repo}.git"));
    std::fs::create_dir_all(&bare)?;
    git(
        &bare,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    )?;
    let seed = scratch.join(repo);
    std::fs::create_dir_all(&seed)?;
    git(&seed, &["init", "--quiet", "--initial-branch=main"])?;
    std::fs::write(seed.join("README.md"), format!("# {repo}\n"))?;
    git(&seed, &["add", "README.md"])?;
    git(
        &seed,
        &[
            "-c",
            "user.name=demo",
            "-c",
            "user.email=demo@example.invalid",
            "commit",
            "--quiet",
            "-m",
            "Initial commit",
        ],
    )?;
    git(
        &seed,
        &["push", "--quiet", &bare.display().to_string(), "main"],
    )?;
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Sends SIGTERM to each of `children`, then waits up to 15 s for each to exit
/// before killing it.
fn stop_all(children: impl IntoIterator<Item = Child>) {
    let mut children: Vec<Child> = children.into_iter().collect();
    for child in &children {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for child in &mut children {
        while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
