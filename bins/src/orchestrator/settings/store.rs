//! The store settings: where the orchestrator keeps its state.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// The store: the state directory and the database.
#[derive(Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// Where the SQLite store and pinned host keys live
    /// (default $XDG_STATE_HOME/scrum-orchestrator, else ~/.local/state/scrum-orchestrator).
    #[arg(long, env = "STATE_DIR", value_name = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The store: a SQLite path or sqlite:// URL (default: a file in STATE_DIR),
    /// postgres://… or redis://… to share state between orchestrators.
    /// `?synchronous=normal|full` sets how durable a commit is; `?schema=NAME`
    /// (PostgreSQL) or `?prefix=NAME` (Redis) keeps fleets apart on one server.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// Where state lives, checked: the directory exists, and the store's URL.
#[derive(Debug)]
pub struct StoreSettings {
    /// The state directory (created if it was missing).
    pub state_dir: PathBuf,
    /// The store's URL or SQLite path (it may hold a password: show it through
    /// `scrum_store::redact_url`).
    pub database_url: String,
}

impl StoreArgs {
    /// Creates the state directory when it is missing and picks the store; each
    /// error names the variable to fix.
    pub fn validate(&self) -> anyhow::Result<StoreSettings> {
        let state_dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir()
                .context("STATE_DIR is not set and neither XDG_STATE_HOME nor HOME is")?,
        };
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("STATE_DIR {} cannot be created", state_dir.display()))?;
        let database_url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => scrum_store::default_sqlite_path(&state_dir)
                .display()
                .to_string(),
        };
        Ok(StoreSettings {
            state_dir,
            database_url,
        })
    }
}

/// `$XDG_STATE_HOME/scrum-orchestrator`, else `~/.local/state/scrum-orchestrator`.
pub fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("scrum-orchestrator"))
}
