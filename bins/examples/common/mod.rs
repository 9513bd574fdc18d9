//! What the load examples share: starting the real `scrum-orchestrator` against a
//! fake GitHub, as a user would, with its log in a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use scrum_github::fake::FakeGitHub;

/// Starts `bin` on `127.0.0.1:port` with its state in `dir/state`, serving
/// `acme/widgets` from `github`, with `env` on top; its log goes to
/// `dir/orchestrator.log`, returned beside the process.
pub(crate) fn spawn_orchestrator(
    bin: &Path,
    dir: &Path,
    port: u16,
    github: &FakeGitHub,
    env: &[(&str, &str)],
) -> anyhow::Result<(Child, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let log = dir.join("orchestrator.log");
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_TOKEN", github.token())
        .env("GITHUB_API_URL", github.url())
        .env("GITHUB_REPOS", "acme/widgets")
        .env("STATE_DIR", dir.join("state"))
        .env("ORCHESTRATOR_HOST", "127.0.0.1")
        .env("ORCHESTRATOR_PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok((child, log))
}
