//! bubblewrap's arguments for one call, and the bridge that brings the worker's
//! proxy into the sandbox's empty network.

use std::path::Path;

use super::{Cell, Sandbox};

/// `bwrap`'s options (everything before `--`): new process, network, IPC and UTS
/// namespaces; the system read-only; the hidden paths empty; the clone and the
/// private home writable; the private temp a tmpfs of the limited size; the proxy's
/// socket.
pub(super) fn args(sandbox: &Sandbox, cell: &Cell<'_>, proxy: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    .map(String::from)
    .into();
    // As root, bwrap keeps the capabilities (reading any file among them) unless told.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if root {
        a.extend(["--cap-drop", "ALL"].map(String::from));
    }
    let path = |p: &Path| p.display().to_string();
    for h in &sandbox.hidden {
        if h.is_dir() {
            a.extend(["--tmpfs".into(), path(h)]);
        } else {
            a.extend(["--ro-bind".into(), "/dev/null".into(), path(h)]);
        }
    }
    for dir in [cell.dir, cell.home] {
        a.extend(["--bind".into(), path(dir), path(dir)]);
    }
    a.extend([
        "--size".into(),
        (sandbox.limits.tmp_mb * 1024 * 1024).to_string(),
        "--tmpfs".into(),
        path(cell.tmp),
        "--bind".into(),
        path(proxy),
        path(proxy),
        "--chdir".into(),
        path(cell.dir),
    ]);
    // The hidden directories are empty and stay so: nothing written there could be
    // mistaken for a way out.
    for h in sandbox.hidden.iter().filter(|h| h.is_dir()) {
        a.extend(["--remount-ro".into(), path(h)]);
    }
    a
}

/// Shell lines that listen on `port` of the sandbox's loopback and carry each
/// connection to the proxy's socket, and wait (boundedly) until that listens.
pub(super) fn bridge(proxy: &Path, port: u16) -> String {
    let sock = super::quote(&proxy.display().to_string());
    format!(
        "socat TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{sock} >/dev/null 2>&1 &\n\
         i=0; while [ $i -lt 400 ] && ! socat -u OPEN:/dev/null TCP:127.0.0.1:{port} 2>/dev/null; do i=$((i+1)); sleep 0.005; done\n"
    )
}
