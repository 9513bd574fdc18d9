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
use scrum_core::TaskId;
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_http::OrchestratorClient;

mod helpers;
mod records;
mod scripts;

use self::helpers::{free_port, make_remote, stop_all};
pub use self::scripts::{FAKE_CLAUDE, WORKFLOW};

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
