//! What the load examples share: starting the real `scrum-orchestrator` against a
//! fake GitHub, as a user would, with its log in a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use scrum_github::fake::FakeGitHub;
use scrum_github::webhook::{WebhookSecret, sign};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Posts a signed `issues` delivery to the orchestrator on `port` (plain HTTP/1.1),
/// signed with `secret`, and fails unless it is accepted.
#[allow(dead_code)] // Not every example posts webhooks.
pub(crate) async fn post_webhook(port: u16, secret: &str, body: &[u8]) -> anyhow::Result<()> {
    let secret = WebhookSecret::new(secret).map_err(anyhow::Error::msg)?;
    let signature = sign(&secret, body);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    if !answer.starts_with("HTTP/1.1 202") {
        bail!(
            "the webhook was not accepted: {}",
            answer.lines().next().unwrap_or("")
        );
    }
    Ok(())
}
