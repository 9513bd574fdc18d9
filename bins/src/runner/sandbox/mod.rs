//! The sandbox every agent call runs in (`SANDBOX`): the built-in workflow's agents
//! and `WORKFLOW_COMMAND` alike.
//!
//! It is made by the well-kept tools, not by us: Anthropic's sandbox-runtime
//! (`srt`, itself over bubblewrap, with its own filtering proxy) or bubblewrap
//! (`bwrap`) alone, with the worker's filtering proxy ([`proxy`]) bridged in over a
//! Unix socket. Either way one call gets
//! - **files**: its clone, a private home and a private temporary directory
//!   writable; the rest of the system read-only; the worker's home, `/root`,
//!   `/home`, the workspace (mirror cache, other tasks' clones, logs) and the
//!   worker's secrets directories unreadable (an empty directory in their place);
//!   a process namespace of its own, so no other process's `/proc/PID/environ`;
//! - **network**: none but a proxy that connects only to the allowed hosts
//!   (`SANDBOX_ALLOW_HOSTS`, the agent's API host, the workflow file's hosts);
//!   the orchestrator, metadata services and every other local port are closed;
//! - **environment**: an allow-list: the task's variables (`ISSUE_*`, …), the
//!   agent's API key and base URL, `PATH`, `LANG`, the private `HOME` and
//!   `TMPDIR`, and the names the operator adds; never the worker's tokens;
//! - **limits**: data memory (`ulimit -d`), processes (`ulimit -u`; the kernel
//!   does not enforce it for root) and the private temporary directory's size
//!   (bubblewrap: a tmpfs of that size).
//!
//! `SANDBOX=none` runs agents as the worker itself, with its environment minus its
//! tokens: only for a machine where nothing else is worth protecting.

mod bwrap;
pub mod proxy;
mod srt;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use scrum_core::AgentSandbox;
use tokio::process::Command;

/// What the workflow (command or agents) never sees: the forges' tokens (the
/// runner pushes and opens the pull or merge request) and the orchestrator's token.
pub const HIDDEN_ENV: [&str; 4] = [
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITLAB_TOKEN",
    "ORCHESTRATOR_API_TOKEN",
];

/// Variables a sandboxed agent gets from the worker's environment, beside the
/// task's own and those the operator names.
pub const PASSED_ENV: [&str; 7] = [
    "PATH",
    "LANG",
    "LC_ALL",
    "TERM",
    "TZ",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
];

/// Paths no agent reads, beside the worker's home and its workspace: other users'
/// homes, the deploy unit's environment file, container secrets.
pub const HIDDEN_PATHS: [&str; 5] = [
    "/root",
    "/home",
    "/etc/ai-scrum-master",
    "/run/secrets",
    "/var/run/secrets",
];

/// The port the proxy answers on inside a bubblewrap sandbox.
const PROXY_PORT: u16 = 3128;

/// `SANDBOX`: which sandbox agents run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    /// sandbox-runtime when `srt` is on `PATH`, else bubblewrap, else refuse to start.
    Auto,
    /// Anthropic's sandbox-runtime (`srt`).
    Srt,
    /// bubblewrap (`bwrap`) with the worker's filtering proxy.
    Bwrap,
    /// No sandbox: agents run as the worker.
    None,
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<SandboxMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(SandboxMode::Auto),
            "srt" => Ok(SandboxMode::Srt),
            "bwrap" | "bubblewrap" => Ok(SandboxMode::Bwrap),
            "none" => Ok(SandboxMode::None),
            other => Err(format!("{other:?} is not one of auto, srt, bwrap, none")),
        }
    }
}

/// Resource limits of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Data memory (heap and writable mappings) in MiB.
    pub memory_mb: u64,
    /// Processes of the worker's user (not enforced for root).
    pub processes: u64,
    /// The private temporary directory's size in MiB (bubblewrap).
    pub tmp_mb: u64,
}

/// What the worker decided about sandboxes at start.
#[derive(Clone, Debug)]
pub struct SandboxSettings {
    /// `SANDBOX`.
    pub mode: SandboxMode,
    /// Hosts agents may reach (`host`, `host:port`, `*.domain`).
    pub allow_hosts: Vec<String>,
    /// Variables of the worker's environment passed on by name, beside [`PASSED_ENV`].
    pub pass_env: Vec<String>,
    /// Paths agents may not read (those that do not exist are skipped).
    pub hidden: Vec<PathBuf>,
    /// Per-call limits.
    pub limits: Limits,
}

impl SandboxSettings {
    /// A worker's settings: the agent's API host (`ANTHROPIC_BASE_URL`'s, else
    /// `api.anthropic.com`) and `allow_hosts` allowed; `pass_env` passed;
    /// [`HIDDEN_PATHS`], the worker's `HOME`, `workspace` and `hide` hidden. Blank
    /// entries are dropped.
    pub fn new(
        mode: SandboxMode,
        workspace: &Path,
        allow_hosts: &[String],
        pass_env: &[String],
        hide: &[PathBuf],
        limits: Limits,
    ) -> SandboxSettings {
        let listed = |l: &[String]| -> Vec<String> {
            l.iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        };
        let api = std::env::var("ANTHROPIC_BASE_URL")
            .ok()
            .and_then(|u| host_of(&u))
            .unwrap_or_else(|| "api.anthropic.com".into());
        let mut allow = vec![api];
        allow.extend(listed(allow_hosts));
        allow.dedup();
        let mut hidden: Vec<PathBuf> = HIDDEN_PATHS.iter().map(PathBuf::from).collect();
        hidden.extend(std::env::var_os("HOME").map(PathBuf::from));
        hidden.push(std::path::absolute(workspace).unwrap_or_else(|_| workspace.to_path_buf()));
        hidden.extend(hide.iter().cloned());
        SandboxSettings {
            mode,
            allow_hosts: allow,
            pass_env: listed(pass_env),
            hidden,
            limits,
        }
    }
}

/// The sandbox of a worker: how each agent call is wrapped.
#[derive(Debug)]
pub struct Sandbox {
    tool: Tool,
    allow_hosts: Vec<String>,
    pass_env: Vec<String>,
    hidden: Vec<PathBuf>,
    limits: Limits,
}

#[derive(Debug)]
enum Tool {
    None,
    Srt(Box<srt::Host>),
    Bwrap { program: PathBuf, proxy: PathBuf },
}

/// Where one call runs: its clone, its private home and temporary directory, the
/// task's variables, and a directory of the worker's (outside the sandbox's reach)
/// for the sandbox's own files.
#[derive(Clone, Copy, Debug)]
pub struct Cell<'a> {
    /// The task's clone, the working directory.
    pub dir: &'a Path,
    /// The private home.
    pub home: &'a Path,
    /// The private temporary directory.
    pub tmp: &'a Path,
    /// The task's variables and the agent's key.
    pub env: &'a [(String, String)],
    /// Where the sandbox keeps its settings for this call.
    pub state: &'a Path,
}

impl Sandbox {
    /// The sandbox `settings` ask for, its tool found on `PATH`: with bubblewrap, the
    /// filtering proxy starts listening on a socket in `state_dir`; with
    /// sandbox-runtime, its host starts (and its proxies with it). Must run within a
    /// Tokio runtime. The error is one line naming what to install.
    pub async fn start(settings: &SandboxSettings, state_dir: &Path) -> Result<Sandbox, String> {
        if let Some(name) = settings
            .pass_env
            .iter()
            .find(|n| HIDDEN_ENV.contains(&n.as_str()))
        {
            return Err(format!(
                "SANDBOX_PASS_ENV names {name}, which agents never get"
            ));
        }
        let mut hidden: Vec<PathBuf> = settings
            .hidden
            .iter()
            .filter(|p| p.is_absolute() && p.parent().is_some() && p.exists())
            .cloned()
            .collect();
        hidden.sort_by_key(|p| p.components().count());
        hidden.dedup();
        let mut sandbox = Sandbox {
            tool: Tool::None,
            allow_hosts: settings.allow_hosts.clone(),
            pass_env: settings.pass_env.clone(),
            hidden,
            limits: settings.limits,
        };
        sandbox.tool = match settings.mode {
            SandboxMode::None => Tool::None,
            SandboxMode::Srt => sandbox.srt(state_dir).await?,
            SandboxMode::Bwrap => Sandbox::bwrap(settings, state_dir)?,
            // sandbox-runtime first, as the well-kept tool with more protections
            // (seccomp, the clone's shell and git files); its host keeps a call's
            // cost near bubblewrap's.
            SandboxMode::Auto if find("srt").is_some() => sandbox.srt(state_dir).await?,
            SandboxMode::Auto if find("bwrap").is_some() => Sandbox::bwrap(settings, state_dir)?,
            SandboxMode::Auto => {
                return Err("no sandbox for agents: install sandbox-runtime (npm install -g @anthropic-ai/sandbox-runtime, with bubblewrap, ripgrep and socat) or bubblewrap (apt-get install bubblewrap socat), or set SANDBOX=none to run agents unsandboxed".into());
            }
        };
        Ok(sandbox)
    }

    /// sandbox-runtime's host, its proxies allowing this sandbox's hosts.
    async fn srt(&self, state_dir: &Path) -> Result<Tool, String> {
        let program = find("srt").ok_or(
            "SANDBOX=srt but `srt` is not on PATH: install it with npm install -g @anthropic-ai/sandbox-runtime (it needs bubblewrap, ripgrep and socat)",
        )?;
        let host = srt::Host::start(&program, state_dir, &srt::base_settings(self)).await?;
        Ok(Tool::Srt(Box::new(host)))
    }

    /// No sandbox (`SANDBOX=none`): agents run as the worker, without its tokens.
    pub fn none() -> Sandbox {
        Sandbox {
            tool: Tool::None,
            allow_hosts: Vec::new(),
            pass_env: Vec::new(),
            hidden: Vec::new(),
            limits: Limits {
                memory_mb: 0,
                processes: 0,
                tmp_mb: 0,
            },
        }
    }

    fn bwrap(settings: &SandboxSettings, state_dir: &Path) -> Result<Tool, String> {
        let program = find("bwrap").ok_or(
            "SANDBOX=bwrap but `bwrap` is not on PATH: install bubblewrap and socat (apt-get install bubblewrap socat)",
        )?;
        if find("socat").is_none() {
            return Err("SANDBOX=bwrap needs socat to bridge the proxy into the sandbox: install it (apt-get install socat)".into());
        }
        let socket = state_dir.join("proxy.sock");
        proxy::serve(&socket, proxy::AllowList::new(&settings.allow_hosts)).map_err(|e| {
            format!(
                "the sandbox's proxy cannot listen on {}: {e}",
                socket.display()
            )
        })?;
        Ok(Tool::Bwrap {
            program,
            proxy: socket,
        })
    }

    /// Which sandbox this is, as the worker tells the orchestrator (`/workers`
    /// shows it).
    pub fn kind(&self) -> AgentSandbox {
        match self.tool {
            Tool::None => AgentSandbox::None,
            Tool::Srt(_) => AgentSandbox::Srt,
            Tool::Bwrap { .. } => AgentSandbox::Bwrap,
        }
    }

    /// `srt`, `bwrap` or `none`.
    pub fn mode(&self) -> &'static str {
        self.kind().as_str()
    }

    /// What agents can reach, in one line for the start-up log.
    pub fn describe(&self) -> String {
        match self.tool {
            Tool::None => {
                "agents run unsandboxed, as the worker, with its files and network".into()
            }
            _ => format!(
                "agents write only their clone and a private home and temp; network only to {}; {} MiB data memory, {} processes, {} MiB temp",
                if self.allow_hosts.is_empty() {
                    "no host".to_string()
                } else {
                    self.allow_hosts.join(", ")
                },
                self.limits.memory_mb,
                self.limits.processes,
                self.limits.tmp_mb
            ),
        }
    }

    /// The hosts agents may reach.
    pub fn allow_hosts(&self) -> &[String] {
        &self.allow_hosts
    }

    /// Readies a task's fresh clone for this sandbox: under sandbox-runtime, git
    /// passes over the mount points it leaves in the clone.
    pub fn prepare_clone(&self, clone: &Path) -> Result<(), String> {
        match self.tool {
            Tool::Srt(_) => srt::exclude_mount_points(clone)
                .map_err(|e| format!("cannot write {}/.git/info/exclude: {e}", clone.display())),
            _ => Ok(()),
        }
    }

    /// The command that runs `argv` in `cell`, sandboxed; its standard streams are
    /// the caller's to set.
    pub async fn command(&self, argv: &[String], cell: &Cell<'_>) -> Result<Command, String> {
        let (program, args) = argv.split_first().ok_or("an empty command")?;
        let mut cmd = match &self.tool {
            Tool::None => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                for k in HIDDEN_ENV {
                    cmd.env_remove(k);
                }
                cmd.envs(cell.env.iter().map(|(k, v)| (k, v)));
                cmd.current_dir(cell.dir);
                return Ok(cmd);
            }
            Tool::Srt(host) => {
                // Before the wrap: sandbox-runtime binds only what exists.
                Sandbox::make_dirs(cell)?;
                std::fs::create_dir_all(cell.state)
                    .map_err(|e| format!("cannot create {}: {e}", cell.state.display()))?;
                let settings = srt::settings(self, cell);
                let file = cell.state.join("srt-settings.json");
                std::fs::write(&file, settings.to_string())
                    .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                let mut script = srt::call_script(cell);
                script.push_str(&self.limits_script());
                script.push_str("exec");
                for a in argv {
                    script.push(' ');
                    script.push_str(&quote(a));
                }
                let wrapped = host.wrap(&script, &settings, cell.dir).await?;
                let mut cmd = Command::new("/bin/bash");
                cmd.arg("-c").arg(wrapped);
                cmd
            }
            Tool::Bwrap { program, proxy } => {
                Sandbox::make_dirs(cell)?;
                let mut script = self.limits_script();
                script.push_str(&bwrap::bridge(proxy, PROXY_PORT));
                script.push_str("exec \"$@\"\n");
                let mut cmd = Command::new(program);
                cmd.args(bwrap::args(self, cell, proxy))
                    .args(["--", "/bin/sh", "-c", &script, "sh"])
                    .args(argv);
                cmd
            }
        };
        cmd.env_clear();
        for name in PASSED_ENV
            .iter()
            .copied()
            .chain(self.pass_env.iter().map(String::as_str))
        {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        cmd.envs(cell.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", cell.home)
            .env("TMPDIR", cell.tmp)
            .env("NO_PROXY", "")
            .env("no_proxy", "")
            .current_dir(cell.dir);
        if let Tool::Bwrap { .. } = self.tool {
            let url = format!("http://127.0.0.1:{PROXY_PORT}");
            for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
                cmd.env(k, &url).env(k.to_ascii_lowercase(), &url);
            }
        }
        Ok(cmd)
    }

    /// Creates the call's private home and temporary directory.
    fn make_dirs(cell: &Cell<'_>) -> Result<(), String> {
        for dir in [cell.home, cell.tmp] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// The shell lines that set this call's limits.
    fn limits_script(&self) -> String {
        format!(
            "ulimit -d {} 2>/dev/null; ulimit -u {} 2>/dev/null\n",
            self.limits.memory_mb * 1024,
            self.limits.processes
        )
    }
}

/// `program`'s full path on `PATH`, if it is there.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The host (and port, when the URL names one) of `url`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

/// `s` quoted for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests;
