//! [`WorkerProbe`]: how a worker host is checked.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A worker host's health as a probe sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostHealth {
    /// Reachable and the worker service is active.
    Healthy,
    /// Reachable, but the service is not active.
    Degraded,
    /// Not reachable.
    Unreachable,
    /// Not probed yet (or no probe configured).
    Unknown,
}

impl HostHealth {
    /// Every health, in declaration order.
    pub const ALL: [HostHealth; 4] = [
        HostHealth::Healthy,
        HostHealth::Degraded,
        HostHealth::Unreachable,
        HostHealth::Unknown,
    ];

    /// The name JSON and the stores use: `healthy`, `degraded`, `unreachable`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostHealth::Healthy => "healthy",
            HostHealth::Degraded => "degraded",
            HostHealth::Unreachable => "unreachable",
            HostHealth::Unknown => "unknown",
        }
    }

    /// The health [`HostHealth::as_str`] names.
    pub fn from_name(name: &str) -> Option<HostHealth> {
        HostHealth::ALL.into_iter().find(|h| h.as_str() == name)
    }
}

/// One probe of one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The verdict.
    pub health: HostHealth,
    /// Round-trip time of the check, when reachable.
    pub rtt: Option<Duration>,
    /// Why it is not healthy.
    pub reason: Option<String>,
}

/// How a worker host is checked (SSH in production).
///
/// # Contract
///
/// A probe never hangs: it enforces its own connect and command timeouts and reports
/// a host it cannot reach as `Unreachable` with the reason, rather than failing.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WorkerProbe: Send + Sync + 'static {
    /// Checks reachability and whether the worker service is active.
    ///
    /// # Behavior
    /// - An unreachable host reports `Unreachable` with a reason, within the timeout.
    async fn probe(&self, host: &str) -> ProbeReport;

    /// The worker service's last `lines` log lines.
    ///
    /// # Behavior
    /// - An unreachable host fails with `Unavailable`.
    async fn logs(&self, host: &str, lines: u32) -> Result<String>;

    /// Restarts the worker service (an operator action).
    async fn restart(&self, host: &str) -> Result<()>;
}
