//! Logging for both binaries: `LOG_LEVEL` (the Python orchestrator's names: ERROR, WARN, INFO,
//! DEBUG), to standard error, where systemd's journal collects it.

use anyhow::bail;
use tracing_subscriber::EnvFilter;

/// Parses a `LOG_LEVEL` value.
pub fn parse_level(level: &str) -> anyhow::Result<tracing::Level> {
    match level.trim().to_ascii_uppercase().as_str() {
        "ERROR" | "CRITICAL" => Ok(tracing::Level::ERROR),
        "WARN" | "WARNING" => Ok(tracing::Level::WARN),
        "INFO" => Ok(tracing::Level::INFO),
        "DEBUG" => Ok(tracing::Level::DEBUG),
        "TRACE" => Ok(tracing::Level::TRACE),
        other => bail!("LOG_LEVEL {other:?} is not one of ERROR, WARN, INFO, DEBUG, TRACE"),
    }
}

/// Starts logging at `level` for this workspace's crates (and warnings from others).
pub fn init(level: &str) -> anyhow::Result<()> {
    let level = parse_level(level)?.to_string().to_ascii_lowercase();
    let filter = EnvFilter::new(format!(
        "warn,scrum_core={level},scrum_store={level},scrum_github={level},scrum_ssh={level},scrum_http={level},scrum_bins={level},scrum_orchestrator={level},scrum_worker={level}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
