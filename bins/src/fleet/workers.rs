//! The fleet's workers: started with the scripted workflow or the built-in one over
//! [`FAKE_CLAUDE`], killed, and what the fake agent recorded of each issue's calls.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use scrum_core::TaskId;

#[cfg(doc)]
use super::FAKE_CLAUDE;
use super::Fleet;

impl Fleet {
    /// Starts a worker named `id`.
    pub fn start_worker(&mut self, id: &str) -> anyhow::Result<()> {
        let mut cmd = self.worker_command(id)?;
        cmd.env(
            "WORKFLOW_COMMAND",
            format!("sh {}", self.root.join("workflow.sh").display()),
        );
        self.spawn_worker(id, cmd)
    }

    /// Starts `cmd` as worker `id`, kept until it is killed or the fleet stops.
    fn spawn_worker(&mut self, id: &str, mut cmd: Command) -> anyhow::Result<()> {
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
            .env("WORKER_POLL_INTERVAL", "1")
            .env("SHUTDOWN_GRACE", "5");
        // The local remotes, unless the test set GIT_BASE_URL (the fake's git
        // over HTTP, which checks tokens).
        if !self.env.iter().any(|(k, _)| k == "GIT_BASE_URL") {
            cmd.env(
                "GIT_BASE_URL",
                format!("file://{}", self.root.join("remotes").display()),
            );
        }
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
        self.spawn_worker(id, cmd)
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
        // As FAKE_CLAUDE names it from its clone's path: the owner's last segment
        // (a GitLab project's group `demo/lab` is `lab`).
        let repo = id.repo_name();
        let owner = repo.owner().rsplit('/').next().unwrap_or_default();
        self.agent_state()
            .join(format!("{owner}_{}_issue-{}", repo.name(), id.number()))
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
}
