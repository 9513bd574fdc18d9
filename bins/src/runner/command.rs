//! Running the workflow command: in its own process group, with the issue in its
//! environment, output to a per-task log, a timeout, and the whole group killed on
//! cancel or timeout.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use scrum_core::{Error, ErrorKind, Result};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::sandbox::{Cell, Sandbox};

/// How a workflow command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by a signal it did not expect (OOM killer, a person).
    Signalled,
    /// It ran past the timeout and was killed.
    TimedOut,
    /// The run was cancelled and the command was killed.
    Cancelled,
}

/// How long a command has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Runs `sh -c command` in `sandbox`, in `cell`, its output appended to `log`.
pub(super) async fn run(
    command: &str,
    sandbox: &Sandbox,
    cell: &Cell<'_>,
    log: &Path,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Exit> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("could not open the log {}", log.display()),
            )
            .with_source(e)
        })?;
    let err = out.try_clone().map_err(|e| {
        Error::new(ErrorKind::Internal, "could not share the log file").with_source(e)
    })?;
    let argv = ["sh", "-c", command].map(String::from);
    let mut cmd = sandbox
        .command(&argv, cell)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, e))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    supervise(cmd, "the workflow command", timeout, cancel).await
}

/// Runs `cmd` (its stdio already set) in a process group of its own until it
/// exits, `timeout` passes or `cancel` fires; then ends whatever is left of the
/// group. `what` names it in errors.
pub(super) async fn supervise(
    mut cmd: Command,
    what: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Exit> {
    cmd.process_group(0).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(ErrorKind::Internal, format!("could not start {what}")).with_source(e)
    })?;
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let ended = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep(timeout) => None,
        () = cancel.cancelled() => None,
    };
    let exit = match ended {
        Some(status) => {
            let status = status.map_err(|e| {
                Error::new(ErrorKind::Internal, format!("lost {what}")).with_source(e)
            })?;
            status.code().map_or(Exit::Signalled, Exit::Code)
        }
        None if cancel.is_cancelled() => Exit::Cancelled,
        None => Exit::TimedOut,
    };
    // The group outlives its leader when the command left children behind (a test
    // server, an editor): end all of it, politely first.
    if let Some(pgid) = group {
        if killpg(pgid, Signal::SIGTERM).is_ok() {
            let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
    let _ = child.wait().await;
    Ok(exit)
}

/// The last `n` lines of the log, for a failure reason.
pub(super) fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run_sh(
        script: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> (Exit, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let env = vec![("GREETING".to_string(), "hello".to_string())];
        let cell = Cell {
            dir: dir.path(),
            home: dir.path(),
            tmp: dir.path(),
            env: &env,
            state: dir.path(),
        };
        let exit = run(script, &Sandbox::none(), &cell, &log, timeout, cancel)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        (exit, text, dir)
    }

    #[tokio::test]
    async fn output_and_exit_code_are_captured() {
        let (exit, log, _d) = run_sh(
            "echo $GREETING; echo oops >&2; exit 3",
            Duration::from_secs(10),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(exit, Exit::Code(3));
        assert_eq!(log, "hello\noops\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let cancel = CancellationToken::new();
        // The command leaves a grandchild behind that would outlive a plain kill.
        let (exit, _log, dir) = run_sh(
            "sleep 30 & echo $! > child.pid; wait",
            Duration::from_millis(300),
            &cancel,
        )
        .await;
        assert_eq!(exit, Exit::TimedOut);
        let pid: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is delivered at once, but the kernel takes a moment to tear the
        // process down: wait for that, boundedly.
        let gone = || !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(gone(), "the grandchild {pid} survived");
    }

    #[tokio::test]
    async fn cancelling_stops_the_command() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let started = std::time::Instant::now();
        let (exit, _log, _d) = run_sh("sleep 30", Duration::from_secs(60), &cancel).await;
        assert_eq!(exit, Exit::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    }
}
