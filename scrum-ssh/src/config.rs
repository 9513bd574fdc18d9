//! [`SshProbeConfig`]: who the probe logs in as, which keys it trusts, its timeouts.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use scrum_core::{Error, Result};

/// The systemd unit of the worker service when none is configured (the name the
/// Python orchestrator this project replaces used).
pub const DEFAULT_UNIT: &str = "ai-scrum-worker";

/// How [`SshProbe`](crate::SshProbe) reaches worker hosts.
///
/// Build it with [`SshProbeConfig::new`] and adjust the public fields; the probe
/// checks the whole config when it is created ([`SshProbe::new`](crate::SshProbe::new)),
/// so a mistake shows at start-up rather than at the first probe.
///
/// `Debug` prints no secret: the private key is only named by its path, and the
/// probe reads it itself.
#[derive(Clone)]
pub struct SshProbeConfig {
    /// The SSH user (`WORKER_SSH_USER`, default `root`). It must be allowed to run
    /// `systemctl` and `journalctl` for the unit; restarting needs the right to
    /// restart it.
    pub user: String,
    /// The private key (`WORKER_SSH_KEY`): an unencrypted OpenSSH or PEM ed25519,
    /// ECDSA or RSA key. Encrypted keys are refused: the probe runs unattended.
    pub key_path: PathBuf,
    /// An OpenSSH `known_hosts` file. When set, it is the only authority: a host
    /// missing from it is refused. When `None`, host keys are pinned on first use.
    pub known_hosts: Option<PathBuf>,
    /// Where first-use pins are kept (a `known_hosts`-format file named
    /// [`PINS_FILE`](crate::PINS_FILE) inside; normally the orchestrator's `STATE_DIR`).
    pub pin_dir: PathBuf,
    /// The systemd unit of the worker service (default [`DEFAULT_UNIT`]).
    pub unit: String,
    /// The longest a TCP connect plus SSH handshake and authentication may take.
    pub connect_timeout: Duration,
    /// The longest one remote command may run before it is killed and torn down.
    pub command_timeout: Duration,
    /// The port used for hosts given without one (default 22).
    pub port: u16,
}

impl SshProbeConfig {
    /// A config for `user` with the key at `key_path`, pinning host keys in
    /// `pin_dir`, and defaults for the rest: unit `ai-scrum-worker`, connect timeout
    /// 5 s, command timeout 10 s, port 22.
    pub fn new(
        user: impl Into<String>,
        key_path: impl Into<PathBuf>,
        pin_dir: impl Into<PathBuf>,
    ) -> SshProbeConfig {
        SshProbeConfig {
            user: user.into(),
            key_path: key_path.into(),
            known_hosts: None,
            pin_dir: pin_dir.into(),
            unit: DEFAULT_UNIT.to_string(),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            port: 22,
        }
    }

    /// Checks the fields that do not need the file system.
    ///
    /// The unit name is put into remote shell commands, so it is restricted to the
    /// characters systemd allows in unit names; anything else is refused here.
    pub fn validate(&self) -> Result<()> {
        if self.user.is_empty() || !self.user.chars().all(is_user_char) {
            return Err(Error::invalid(format!(
                "WORKER_SSH_USER {:?} is not a valid user name",
                self.user
            )));
        }
        if !is_unit_name(&self.unit) {
            return Err(Error::invalid(format!(
                "worker unit {:?} is not a valid systemd unit name \
                 (letters, digits and :-_.\\@ only)",
                self.unit
            )));
        }
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return Err(Error::invalid(
                "SSH connect and command timeouts must be above zero",
            ));
        }
        if self.port == 0 {
            return Err(Error::invalid("SSH port must not be 0"));
        }
        Ok(())
    }
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Whether `unit` is a systemd unit name safe to put in a shell command unquoted.
pub(crate) fn is_unit_name(unit: &str) -> bool {
    !unit.is_empty()
        && unit.len() <= 255
        && !unit.starts_with('-')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\' | '@'))
}

impl fmt::Debug for SshProbeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshProbeConfig")
            .field("user", &self.user)
            .field("key_path", &self.key_path)
            .field("known_hosts", &self.known_hosts)
            .field("pin_dir", &self.pin_dir)
            .field("unit", &self.unit)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("port", &self.port)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_that_could_inject_shell_are_refused() {
        let mut config = SshProbeConfig::new("root", "/k", "/p");
        assert!(config.validate().is_ok());
        for bad in ["", "a b", "x;reboot", "$(id)", "-n", "a'b", "u\n"] {
            config.unit = bad.to_string();
            assert!(config.validate().is_err(), "{bad:?} accepted");
        }
        config.unit = "worker@1.service".to_string();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn bad_users_and_zero_timeouts_are_refused() {
        let mut config = SshProbeConfig::new("root;id", "/k", "/p");
        assert!(config.validate().is_err());
        config.user = "deploy".to_string();
        config.command_timeout = Duration::ZERO;
        assert!(config.validate().is_err());
    }
}
