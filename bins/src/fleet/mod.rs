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
//!
//! # Layout
//!
//! - this module: the fleet's set-up and what a test reads of it (progress, waits);
//! - `scripts`: the scripted workflow ([`WORKFLOW`]) and the fake `claude`
//!   ([`FAKE_CLAUDE`]);
//! - `process`: starting, crashing and stopping the orchestrators, logs;
//! - `workers`: starting and killing workers, and the fake agent's records;
//! - `remote`: the bare git remotes;
//! - `gitlab`: a fake GitLab beside the fake GitHub ([`Fleet::add_gitlab`]).

mod gitlab;
mod process;
mod remote;
mod scripts;
mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::bail;
use scrum_core::TaskId;
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_gitlab::fake::FakeGitLab;

use process::free_port;
use remote::make_remote;
pub use scripts::{FAKE_CLAUDE, WORKFLOW};

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
    /// The fake GitLab beside it, once [`Fleet::add_gitlab`] started it.
    gitlab: Option<FakeGitLab>,
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
        // Each repository once, in the order of its first issue.
        let mut repos: Vec<&str> = Vec::new();
        for (repo, _) in issues {
            if !repos.contains(repo) {
                repos.push(*repo);
            }
        }
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
            gitlab: None,
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

    /// Removes an environment variable the fleet would give every process started
    /// from now on (e.g. `GITHUB_TOKEN`, for a fleet that works as a GitHub App).
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
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
                    .labels(id)
                    .iter()
                    .any(|l| l == "ai-ready" || l == "ai-in-progress")
            })
        })
        .await;
    }

    /// Each issue's progress, from its labels on its fake forge.
    pub fn progress(&self) -> Vec<(TaskId, IssueProgress)> {
        self.issues
            .iter()
            .map(|id| {
                let labels = self.labels(id);
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
}
