//! sandbox-runtime's settings for one call.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{Cell, Sandbox};

/// The first line of every call's script under sandbox-runtime. It lists
/// loopback and the private ranges in `NO_PROXY`, so a client would connect to
/// an allowed host there (a local API stand-in, a registry mirror) directly, into
/// the sandbox's empty network, and fail: every host goes through its proxy, which
/// allows only the allowed ones, as under bubblewrap.
pub(super) const CALL_SCRIPT: &str = "export NO_PROXY= no_proxy=\n";

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
