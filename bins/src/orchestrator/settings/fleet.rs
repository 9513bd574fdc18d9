//! The settings about the worker fleet: which hosts run workers, when an idle
//! worker is forgotten, how many workers the scaling signal asks for, and how the
//! hosts are checked over SSH.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use scrum_core::engine::ScalingSettings;
use scrum_ssh::SshProbeConfig;

/// The workers: their hosts, how long an idle one is remembered, how many are wanted.
#[derive(Debug, Args)]
#[command(next_help_heading = "Workers")]
pub struct WorkerArgs {
    /// Worker hosts, comma-separated IPs: probed over SSH, allowed to call without a token.
    #[arg(
        long,
        env = "WORKER_IPS",
        value_name = "WORKER_IPS",
        default_value = ""
    )]
    pub worker_ips: String,
    /// Seconds after which a worker that has not called (and holds no task) is
    /// dropped from the worker list, which the store keeps across restarts.
    #[arg(long, env = "WORKER_FORGET_SECS", value_name = "WORKER_FORGET_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_forget_secs: u64,
    /// The scaling signal (GET /scaling): the most workers it ever asks for.
    #[arg(
        long,
        env = "MAX_WORKERS",
        value_name = "MAX_WORKERS",
        default_value_t = 10
    )]
    pub max_workers: u64,
    /// The scaling signal: idle workers to keep beyond what the queue needs
    /// (desired = min(MAX_WORKERS, MIN_IDLE_WORKERS + ready + in progress)).
    #[arg(
        long,
        env = "MIN_IDLE_WORKERS",
        value_name = "MIN_IDLE_WORKERS",
        default_value_t = 0
    )]
    pub min_idle_workers: u64,
}

impl WorkerArgs {
    /// The worker hosts `WORKER_IPS` names.
    pub fn hosts(&self) -> Vec<String> {
        self.worker_ips
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// How long an idle worker is remembered.
    pub fn forget_after(&self) -> Duration {
        Duration::from_secs(self.worker_forget_secs)
    }

    /// The scaling signal's settings.
    pub fn scaling(&self) -> ScalingSettings {
        ScalingSettings {
            max_workers: self.max_workers,
            min_idle_workers: self.min_idle_workers,
        }
    }
}

/// SSH checks of the worker hosts.
#[derive(Debug, Args)]
#[command(next_help_heading = "SSH")]
pub struct SshArgs {
    /// Private key for SSH checks of the worker hosts (ed25519 or RSA, unencrypted).
    /// Unset: the hosts are not checked.
    #[arg(long, env = "WORKER_SSH_KEY", value_name = "WORKER_SSH_KEY")]
    pub worker_ssh_key: Option<PathBuf>,
    /// User for SSH checks.
    #[arg(
        long,
        env = "WORKER_SSH_USER",
        value_name = "WORKER_SSH_USER",
        default_value = "root"
    )]
    pub worker_ssh_user: String,
    /// A known_hosts file to check worker host keys against (default: pin on first use).
    #[arg(
        long,
        env = "WORKER_SSH_KNOWN_HOSTS",
        value_name = "WORKER_SSH_KNOWN_HOSTS"
    )]
    pub worker_ssh_known_hosts: Option<PathBuf>,
    /// The worker's systemd unit on each host.
    #[arg(
        long,
        env = "WORKER_SERVICE_UNIT",
        value_name = "WORKER_SERVICE_UNIT",
        default_value = scrum_ssh::DEFAULT_UNIT
    )]
    pub worker_service_unit: String,
    /// Seconds between SSH checks of the worker hosts.
    #[arg(long, env = "WORKER_HEALTH_CHECK_INTERVAL", value_name = "WORKER_HEALTH_CHECK_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_health_check_interval: u64,
}

impl SshArgs {
    /// The probe's configuration when there are hosts to probe and a key to probe
    /// them with (first-use host keys are pinned in `state_dir`); each error names
    /// the variable to fix.
    pub fn validate(
        &self,
        hosts: &[String],
        state_dir: &Path,
    ) -> anyhow::Result<Option<SshProbeConfig>> {
        let Some(key) = &self.worker_ssh_key else {
            if !hosts.is_empty() {
                tracing::warn!(
                    "WORKER_IPS is set but WORKER_SSH_KEY is not: worker hosts are not probed"
                );
            }
            return Ok(None);
        };
        if !key.is_file() {
            bail!("WORKER_SSH_KEY {} is not a readable file", key.display());
        }
        if hosts.is_empty() {
            return Ok(None);
        }
        let mut ssh =
            SshProbeConfig::new(&self.worker_ssh_user, key, state_dir.join("known_hosts"));
        ssh.known_hosts = self.worker_ssh_known_hosts.clone();
        ssh.unit = self.worker_service_unit.clone();
        ssh.validate()
            .map_err(|e| anyhow::anyhow!("WORKER_SERVICE_UNIT or WORKER_SSH_USER: {e}"))?;
        Ok(Some(ssh))
    }

    /// How often the hosts are checked.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.worker_health_check_interval)
    }
}
