//! The fleet's processes: orchestrators started (and restarted on the same port),
//! crashed, stopped as a service manager would; logs; and nothing left running when
//! the fleet is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scrum_http::OrchestratorClient;

use super::{Fleet, MAIN, OrchestratorProcess};

impl Fleet {
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

    /// The log file of a process of the fleet (`orchestrator`, another
    /// orchestrator's name, or a worker id).
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// `bin` from the fleet's binaries, with the fleet's environment, its output
    /// appended to the log `log_name`.
    pub(super) fn command(&self, bin: &str, log_name: &str) -> anyhow::Result<Command> {
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

pub(super) fn free_port() -> anyhow::Result<u16> {
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
