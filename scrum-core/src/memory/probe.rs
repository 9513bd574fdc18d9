//! [`ScriptedProbe`]: a [`WorkerProbe`] whose answers a test sets.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::probe::{HostHealth, ProbeReport, WorkerProbe};

/// A [`WorkerProbe`] answering from a table: hosts not in it are unreachable.
#[derive(Debug, Default)]
pub struct ScriptedProbe {
    hosts: Mutex<HashMap<String, (ProbeReport, String)>>,
}

impl ScriptedProbe {
    /// A probe that knows no host.
    pub fn new() -> ScriptedProbe {
        ScriptedProbe::default()
    }

    /// Sets what probing `host` reports, and its logs.
    pub fn set(&self, host: &str, report: ProbeReport, logs: &str) {
        self.lock()
            .insert(host.to_string(), (report, logs.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ProbeReport, String)>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reachable(&self, host: &str) -> Result<String> {
        match self.lock().get(host) {
            Some((r, logs)) if r.health != HostHealth::Unreachable => Ok(logs.clone()),
            _ => Err(Error::unavailable(format!("host {host} is unreachable"))),
        }
    }
}

#[async_trait]
impl WorkerProbe for ScriptedProbe {
    async fn probe(&self, host: &str) -> ProbeReport {
        self.lock().get(host).map_or_else(
            || ProbeReport {
                health: HostHealth::Unreachable,
                rtt: None,
                reason: Some(format!("host {host} is unknown")),
            },
            |(r, _)| r.clone(),
        )
    }

    async fn logs(&self, host: &str, lines: u32) -> Result<String> {
        let logs = self.reachable(host)?;
        let all: Vec<&str> = logs.lines().collect();
        let from = all.len().saturating_sub(lines as usize);
        Ok(all[from..].join("\n"))
    }

    async fn restart(&self, host: &str) -> Result<()> {
        self.reachable(host).map(|_| ())
    }
}
