//! sandbox-runtime: the worker's one host of it ([`Host`]) and the settings of
//! each call.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{Cell, Sandbox};

/// The first line of a call's script under sandbox-runtime, which sets what it
/// set otherwise:
/// - `TMPDIR`: the call's private temporary directory, not sandbox-runtime's
///   `/tmp/claude` (missing, so read-only: Claude Code then exits without a word;
///   or, existing, shared by every task);
/// - `NO_PROXY`: empty, not loopback and the private ranges, which a client would
///   connect to directly, into the sandbox's empty network, and fail (a local API
///   stand-in, a registry mirror): every host goes through the proxy, which allows
///   only the allowed ones, as under bubblewrap.
pub(super) fn call_script(cell: &Cell<'_>) -> String {
    let tmp = super::quote(&cell.tmp.display().to_string());
    format!("export TMPDIR={tmp} NO_PROXY= no_proxy=\n")
}

/// The settings the host starts with: the network part serves every call; each
/// call brings its own files ([`settings`]).
pub(super) fn base_settings(sandbox: &Sandbox) -> Value {
    json!({
        "network": {
            "allowedDomains": sandbox.allow_hosts,
            "deniedDomains": [],
        },
        "filesystem": {
            "denyRead": sandbox.hidden,
            "allowRead": [],
            "allowWrite": [],
            "denyWrite": [],
        },
    })
}

/// The settings file: the hidden paths denied, the clone, home and temp readable
/// and writable, the allowed hosts. sandbox-runtime puts an empty writable
/// directory in place of a hidden one: those that hold none of the call's own
/// directories are also denied writes, so nothing lands there at all.
pub(super) fn settings(sandbox: &Sandbox, cell: &Cell<'_>) -> Value {
    let own = [cell.dir, cell.home, cell.tmp];
    let open = own.map(|p| p.display().to_string());
    let sealed: Vec<&std::path::PathBuf> = sandbox
        .hidden
        .iter()
        .filter(|h| !own.iter().any(|o| o.starts_with(h)))
        .collect();
    json!({
        "network": {
            "allowedDomains": sandbox.allow_hosts,
            "deniedDomains": [],
        },
        "filesystem": {
            "denyRead": sandbox.hidden,
            "allowRead": open,
            "allowWrite": open,
            "denyWrite": sealed,
        },
    })
}

/// The files sandbox-runtime always keeps from writes; those missing from the clone
/// show inside as read-only mount points, which `git add --all` cannot add.
const PROTECTED: [&str; 12] = [
    ".bashrc",
    ".bash_profile",
    ".zshrc",
    ".zprofile",
    ".profile",
    ".gitconfig",
    ".gitmodules",
    ".ripgreprc",
    ".mcp.json",
    ".vscode",
    ".idea",
    ".claude",
];

/// Tells git in `clone` to pass over those mount points (`.git/info/exclude`: only
/// files git does not track yet), so an agent's `git add --all` works.
pub(super) fn exclude_mount_points(clone: &Path) -> std::io::Result<()> {
    let info = clone.join(".git").join("info");
    std::fs::create_dir_all(&info)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(info.join("exclude"))?;
    writeln!(f, "# sandbox-runtime's mount points (scrum-worker)")?;
    for name in PROTECTED {
        writeln!(f, "/{name}")?;
    }
    Ok(())
}

/// The program the worker's sandbox-runtime host runs (see its header).
const HOST_SCRIPT: &str = include_str!("srt_host.mjs");

/// sandbox-runtime kept running for the worker: one Node process whose proxies
/// start once, asked to wrap each call's command (`srt -c` would start Node and the
/// proxies on every call: about 400 ms). Dropping it ends the process.
#[derive(Debug)]
pub(super) struct Host {
    io: tokio::sync::Mutex<HostIo>,
}

#[derive(Debug)]
struct HostIo {
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Held so the process ends with the host (`kill_on_drop`).
    _child: Child,
}

impl Host {
    /// Starts the host of `srt` (its library is `dist/index.js` beside the command)
    /// with `settings` (the network part serves every call), its script written in
    /// `state_dir`, and waits until its proxies listen.
    pub(super) async fn start(
        srt: &Path,
        state_dir: &Path,
        settings: &Value,
    ) -> Result<Host, String> {
        let cli = std::fs::canonicalize(srt).map_err(|e| format!("{}: {e}", srt.display()))?;
        let index = cli.with_file_name("index.js");
        if !index.is_file() {
            return Err(format!(
                "sandbox-runtime's library is not beside {} ({} is missing)",
                cli.display(),
                index.display()
            ));
        }
        let node = super::find("node").ok_or("SANDBOX=srt needs node on PATH")?;
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
        let script = state_dir.join("srt-host.mjs");
        std::fs::write(&script, HOST_SCRIPT)
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let mut child = Command::new(node)
            .arg(&script)
            .arg(&index)
            .arg(settings.to_string())
            .env_clear()
            .envs(
                ["PATH", "LANG"]
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start sandbox-runtime's host: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("sandbox-runtime's host has no pipes".into());
        };
        let mut io = HostIo {
            stdin,
            lines: BufReader::new(stdout).lines(),
            _child: child,
        };
        let ready = io.reply().await?;
        if ready.get("ready") != Some(&Value::Bool(true)) {
            return Err(format!("sandbox-runtime did not start: {}", reason(&ready)));
        }
        Ok(Host {
            io: tokio::sync::Mutex::new(io),
        })
    }

    /// The shell command that runs `script` in `cwd`, sandboxed by `settings`.
    pub(super) async fn wrap(
        &self,
        script: &str,
        settings: &Value,
        cwd: &Path,
    ) -> Result<String, String> {
        let call = json!({ "command": script, "config": settings, "cwd": cwd });
        let mut io = self.io.lock().await;
        let line = format!("{call}\n");
        io.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("sandbox-runtime's host is gone: {e}"))?;
        let reply = io.reply().await?;
        match reply.get("wrapped").and_then(Value::as_str) {
            Some(wrapped) => Ok(wrapped.to_string()),
            None => Err(format!(
                "sandbox-runtime refused the call: {}",
                reason(&reply)
            )),
        }
    }
}

impl HostIo {
    /// The host's next line, as JSON.
    async fn reply(&mut self) -> Result<Value, String> {
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("sandbox-runtime's host: {e}"))?
            .ok_or("sandbox-runtime's host exited")?;
        serde_json::from_str(&line)
            .map_err(|e| format!("sandbox-runtime's host said {line:?}: {e}"))
    }
}

/// The `error` of a host's reply, or the reply.
fn reason(reply: &Value) -> String {
    reply
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| reply.to_string(), str::to_string)
}
