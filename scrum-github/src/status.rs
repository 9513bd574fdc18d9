//! [`GitHubStatus`]: how GitHub looks from here, for the orchestrator's `/health`.

use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

/// Whether GitHub answers normally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Health {
    /// No request has been answered yet.
    Unknown,
    /// The last request was answered normally.
    Healthy,
    /// GitHub is rate limiting, failing or refusing us; the text says why.
    Degraded(String),
}

/// A snapshot of GitHub's state as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitHubStatus {
    /// Healthy, degraded (with the reason) or not yet known.
    pub health: Health,
    /// The primary rate limit's remaining points, from the last answer.
    pub rate_limit_remaining: Option<u64>,
    /// When the primary rate limit resets (Unix seconds), from the last answer.
    pub rate_limit_reset: Option<u64>,
    /// When a rate limit ends that the client is waiting out (Unix seconds).
    pub waiting_until: Option<u64>,
}

impl GitHubStatus {
    /// Whether GitHub answered the last request normally: `/health`'s
    /// `github_connected`, as the Python orchestrator this project replaces had it.
    pub fn is_connected(&self) -> bool {
        self.health == Health::Healthy
    }

    /// The reason GitHub is degraded, if it is.
    pub fn degraded_reason(&self) -> Option<&str> {
        match &self.health {
            Health::Degraded(r) => Some(r),
            _ => None,
        }
    }
}

/// The status shared between the client and whoever reads it.
#[derive(Debug)]
pub(crate) struct StatusCell {
    tx: watch::Sender<GitHubStatus>,
}

impl StatusCell {
    pub(crate) fn new() -> StatusCell {
        let (tx, _) = watch::channel(GitHubStatus {
            health: Health::Unknown,
            rate_limit_remaining: None,
            rate_limit_reset: None,
            waiting_until: None,
        });
        StatusCell { tx }
    }

    pub(crate) fn get(&self) -> GitHubStatus {
        self.tx.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<GitHubStatus> {
        self.tx.subscribe()
    }

    pub(crate) fn healthy(&self) {
        self.tx.send_if_modified(|s| {
            let changed = s.health != Health::Healthy || s.waiting_until.is_some();
            s.health = Health::Healthy;
            s.waiting_until = None;
            changed
        });
    }

    pub(crate) fn degraded(&self, reason: String, waiting_until: Option<SystemTime>) {
        let until = waiting_until.and_then(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())
        });
        self.tx.send_modify(|s| {
            s.health = Health::Degraded(reason);
            s.waiting_until = until;
        });
    }

    pub(crate) fn rate_limit(&self, remaining: Option<u64>, reset: Option<u64>) {
        if remaining.is_none() && reset.is_none() {
            return;
        }
        self.tx.send_if_modified(|s| {
            let before = (s.rate_limit_remaining, s.rate_limit_reset);
            s.rate_limit_remaining = remaining.or(s.rate_limit_remaining);
            s.rate_limit_reset = reset.or(s.rate_limit_reset);
            before != (s.rate_limit_remaining, s.rate_limit_reset)
        });
    }
}
