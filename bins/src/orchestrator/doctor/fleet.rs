//! The doctor's checks of the settings, the store, the worker hosts over SSH and
//! the sandbox of workers on this machine.

use std::net::IpAddr;
use std::sync::Arc;

use scrum_core::{ErrorKind, HostHealth, WorkerProbe};
use scrum_github::GitHubConfig;
use scrum_github::webhook::WebhookSecret;
use scrum_ssh::{SshProbe, SshProbeConfig};

use crate::doctor::Report;
use crate::orchestrator::settings::ServeArgs;
use crate::orchestrator::settings::policy::policy;
use crate::orchestrator::settings::store::StoreSettings;

/// The groups of settings that passed their checks.
#[derive(Default)]
pub struct Valid {
    /// GitHub's client configuration.
    pub github: Option<GitHubConfig>,
    /// GitLab's configuration, when projects are named.
    pub gitlab: Option<super::super::settings::gitlab::GitLab>,
    /// The webhook's secret, when one is set.
    pub webhook: Option<Arc<WebhookSecret>>,
    /// Where state lives.
    pub store: Option<StoreSettings>,
    /// The SSH probe's configuration, when hosts and a key are set.
    pub ssh: Option<SshProbeConfig>,
}

/// Checks every group of settings as the service does at start-up: one `FAIL`
/// per group at fault (its error names the variable), or one `ok`.
pub fn settings(a: &ServeArgs, report: &mut Report) -> Valid {
    let mut valid = Valid::default();
    let mut errors = Vec::new();
    match a.github.validate(a.gitlab.is_set()) {
        Ok((github, webhook)) => {
            valid.github = github;
            valid.webhook = webhook;
        }
        Err(e) => errors.push(e),
    }
    match a
        .github
        .labels()
        .and_then(|labels| a.gitlab.validate(&labels))
    {
        Ok(gitlab) => valid.gitlab = gitlab,
        Err(e) => errors.push(e),
    }
    let hosts = a.workers.hosts();
    if let Err(e) = a.api.validate(&hosts, None) {
        errors.push(e);
    }
    if let Err(e) = crate::logging::parse_level(&a.log.log_level) {
        errors.push(e);
    }
    if let Err(e) = a.notify.validate() {
        errors.push(e);
    }
    match a.store.validate() {
        Ok(store) => {
            match a.ssh.validate(&hosts, &store.state_dir) {
                Ok(ssh) => valid.ssh = ssh,
                Err(e) => errors.push(e),
            }
            valid.store = Some(store);
        }
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        report.ok("settings", "every setting is valid");
    }
    for e in errors {
        report.fail("settings", format!("{e:#}"), "");
    }
    valid
}

/// Opens the store as the service would, which applies the migrations it lacks.
pub async fn store(a: &ServeArgs, store: &StoreSettings, report: &mut Report) {
    let shown = scrum_store::redact_url(&store.database_url);
    let policy = policy(&a.leases, &a.budgets, &a.locks, &a.follow_ups);
    match scrum_store::open(&store.database_url, policy).await {
        Ok(queue) => match queue.counts().await {
            Ok(counts) => report.ok(
                "store",
                format!(
                    "{shown} opens and is migrated ({} tasks)",
                    counts.pending
                        + counts.in_progress
                        + counts.completed
                        + counts.failed
                        + counts.cancelled
                        + counts.parked
                ),
            ),
            Err(e) => report.fail(
                "store",
                format!("{shown} opened but cannot be read: {e}"),
                "check DATABASE_URL and the database's health",
            ),
        },
        // A SQLite file a running orchestrator owns: it opened it, migrations included.
        Err(e) if e.kind() == ErrorKind::Conflict => report.skip(
            "store",
            format!("{e}: the running orchestrator opened and migrated it"),
        ),
        Err(e) => report.fail(
            "store",
            format!("DATABASE_URL {shown} does not open: {e}"),
            "check DATABASE_URL (the server is up, the user may create tables) or STATE_DIR (writable)",
        ),
    }
}

/// Logs in to each worker host with `WORKER_SSH_KEY` and checks its host key
/// (`WORKER_SSH_KNOWN_HOSTS`, or the key pinned on first use) and its worker service.
pub async fn ssh(hosts: &[String], config: Option<&SshProbeConfig>, report: &mut Report) {
    if hosts.is_empty() {
        report.skip("ssh", "WORKER_IPS is empty: no worker host to check");
        return;
    }
    let Some(config) = config else {
        report.skip(
            "ssh",
            "WORKER_IPS is set but WORKER_SSH_KEY is not: worker hosts are not checked (set it to have them watched)",
        );
        return;
    };
    let probe = match SshProbe::new(config.clone()) {
        Ok(p) => p,
        Err(e) => {
            let fix = "point WORKER_SSH_KEY at an unencrypted ed25519, ECDSA or RSA private key";
            report.fail("ssh", format!("WORKER_SSH_KEY: {e}"), fix);
            return;
        }
    };
    for host in hosts {
        let found = probe.probe(host).await;
        let reason = found.reason.unwrap_or_default();
        match found.health {
            HostHealth::Healthy => report.ok(
                "ssh",
                format!(
                    "{host} answers as {} with its pinned host key; service {} is active",
                    config.user, config.unit
                ),
            ),
            HostHealth::Degraded => report.fail(
                "ssh",
                format!("{host} answers over SSH, but {reason}"),
                format!(
                    "start the worker service on {host} (systemctl start {}), or set WORKER_SERVICE_UNIT to its name",
                    config.unit
                ),
            ),
            _ => report.fail(
                "ssh",
                format!("{host} does not answer: {reason}"),
                ssh_fix(host, &reason, &config.user),
            ),
        }
    }
    probe.disconnect_all().await;
}

/// What to do about an SSH failure, by what it said.
fn ssh_fix(host: &str, reason: &str, user: &str) -> String {
    if reason.contains("HOST KEY CHANGED") {
        format!(
            "if {host} was reinstalled, remove its line from the file named above; otherwise find out who answers"
        )
    } else if reason.contains("refused WORKER_SSH_KEY") {
        format!("add WORKER_SSH_KEY's public key to ~{user}/.ssh/authorized_keys on {host}")
    } else if reason.contains("known_hosts") {
        format!("add {host}'s host key to WORKER_SSH_KNOWN_HOSTS")
    } else {
        format!(
            "check that {host} in WORKER_IPS is right, is up and runs sshd, and that SSH from here is not blocked"
        )
    }
}

/// Workers on this machine (a loopback address in `WORKER_IPS`) need a sandbox
/// for their agents: bubblewrap with socat, or sandbox-runtime.
pub fn sandbox(hosts: &[String], report: &mut Report) {
    if !hosts.iter().any(|h| is_loopback(h)) {
        report.skip(
            "sandbox",
            "no worker runs on this machine (WORKER_IPS): run `scrum-worker doctor` on each worker host",
        );
        return;
    }
    use crate::runner::sandbox::find;
    let bwrap = find("bwrap").is_some() && find("socat").is_some();
    if bwrap || find("srt").is_some() {
        let tool = if bwrap {
            "bubblewrap"
        } else {
            "sandbox-runtime"
        };
        report.ok(
            "sandbox",
            format!("{tool} is installed for the workers on this machine"),
        );
    } else {
        report.fail(
            "sandbox",
            "workers run on this machine but neither bubblewrap (with socat) nor sandbox-runtime is installed",
            "apt-get install bubblewrap socat (or npm install -g @anthropic-ai/sandbox-runtime), or set SANDBOX=none on those workers",
        );
    }
}

/// Whether a `WORKER_IPS` entry (`ip`, `ip:port`, `[v6]:port`, `name`) is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| match host.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.parse::<u16>().is_ok() => h,
            _ => host,
        });
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_found_in_every_form_worker_ips_takes() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:2222",
            "localhost",
            "[::1]:22",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.5", "10.0.0.5:22", "worker-1", "[2001:db8::1]:22"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
