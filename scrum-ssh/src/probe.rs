//! [`SshProbe`]: the [`WorkerProbe`] over SSH, with a connection per host kept
//! between rounds, and [`SshProbe::probe_all`] for a bounded-concurrency round.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use scrum_core::redact::redact;
use scrum_core::{Error, ErrorKind, HostHealth, ProbeReport, Result, WorkerProbe};
use tokio::sync::Mutex as AsyncMutex;

use crate::config::SshProbeConfig;
use crate::connection::{self, Output, RunError, Session, Settings};
use crate::host_keys::HostKeys;
use crate::key::load_client_key;
use crate::target::Target;

/// How often an idle pooled connection checks that its peer is still there.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// One host's connection slot. The async mutex is held while connecting, so
/// concurrent probes of one host share one connection instead of racing to open two.
type Slot = Arc<AsyncMutex<Option<Arc<Session>>>>;

/// A [`WorkerProbe`] that logs in over SSH with a key and checks the host's key.
///
/// Cloning is cheap and clones share the connection pool.
///
/// # What it runs
///
/// - [`probe`](WorkerProbe::probe): `systemctl is-active <unit>`: `active` is
///   healthy, any other answer degraded; a host it cannot reach, log in to or trust
///   is unreachable. The round-trip time is that command's, from opening the channel
///   to its exit.
/// - [`logs`](WorkerProbe::logs): `journalctl -u <unit> -n <lines> --no-pager`.
/// - [`restart`](WorkerProbe::restart): `systemctl restart --no-block <unit>`: the
///   restart is queued and the call returns; the next probe shows how it went.
///
/// Each command is limited by the command timeout. One that overruns has its
/// process group killed on the host and the probe reports `Degraded` (the host
/// answered, the service check did not); when even the kill gets no answer, the
/// connection is dropped and the host reported `Unreachable`. Commands run through
/// the SSH user's login shell, which must be a POSIX shell (`sh`, `bash`, `dash`).
///
/// The SSH user must be allowed to run these; `root` (the default) is.
#[derive(Clone)]
pub struct SshProbe {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    unit: String,
    port: u16,
    pool: std::sync::Mutex<HashMap<Target, Slot>>,
}

/// One host's result in a [`SshProbe::probe_all`] round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostReport {
    /// The host as given.
    pub host: String,
    /// What probing it found.
    pub report: ProbeReport,
}

impl SshProbe {
    /// A probe for `config`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Invalid`] when the config is invalid, the key is missing,
    /// unreadable, encrypted or not a key, or the configured `known_hosts` file does
    /// not exist. Nothing is connected yet.
    pub fn new(config: SshProbeConfig) -> Result<SshProbe> {
        config.validate()?;
        let key = load_client_key(&config.key_path)?;
        let host_keys = match &config.known_hosts {
            Some(file) => {
                if !file.is_file() {
                    return Err(Error::invalid(format!(
                        "known_hosts file {} does not exist",
                        file.display()
                    )));
                }
                HostKeys::KnownHosts(file.clone())
            }
            None => HostKeys::pins(&config.pin_dir),
        };
        let russh = russh::client::Config {
            nodelay: true,
            // Pooled connections idle between rounds: keepalives notice a peer that
            // vanished (so the next round reconnects instead of waiting out a timeout).
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Default::default()
        };
        Ok(SshProbe {
            inner: Arc::new(Inner {
                settings: Settings {
                    user: config.user,
                    key: Arc::new(key),
                    host_keys: Arc::new(host_keys),
                    connect_timeout: config.connect_timeout,
                    command_timeout: config.command_timeout,
                    russh: Arc::new(russh),
                },
                unit: config.unit,
                port: config.port,
                pool: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Probes every host, at most `concurrency` at a time (at least one), and returns
    /// one report per host in the order given. Connections stay open for the next round.
    pub async fn probe_all<S: AsRef<str>>(
        &self,
        hosts: &[S],
        concurrency: usize,
    ) -> Vec<HostReport> {
        stream::iter(hosts)
            .map(|host| async move {
                HostReport {
                    host: host.as_ref().to_string(),
                    report: self.probe(host.as_ref()).await,
                }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    /// Closes every pooled connection. The next probe of a host connects again.
    pub async fn disconnect_all(&self) {
        let slots: Vec<Slot> = self.pool().drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            if let Some(session) = slot.lock().await.take() {
                connection::close(&session).await;
            }
        }
    }

    /// Closes the pooled connection to `host` (a host taken out of the fleet).
    /// Probing it again connects again.
    pub async fn disconnect(&self, host: &str) {
        let Ok(target) = Target::parse(host, self.inner.port) else {
            return;
        };
        let slot = self.pool().remove(&target);
        if let Some(slot) = slot
            && let Some(session) = slot.lock().await.take()
        {
            connection::close(&session).await;
        }
    }

    /// How many hosts currently have an open pooled connection.
    pub async fn open_connections(&self) -> usize {
        let slots: Vec<Slot> = self.pool().values().cloned().collect();
        let mut open = 0;
        for slot in slots {
            if slot.lock().await.as_ref().is_some_and(|s| !s.is_closed()) {
                open += 1;
            }
        }
        open
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Slot>> {
        self.inner.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pooled connection to `target`, connecting if there is none (or it closed).
    /// The flag says whether it is new.
    async fn session(&self, target: &Target) -> Result<(Arc<Session>, bool)> {
        let slot = self.pool().entry(target.clone()).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(session) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok((session.clone(), false));
        }
        *slot = None;
        let session = Arc::new(connection::connect(target, &self.inner.settings).await?);
        tracing::debug!(host = %target, "connected and logged in");
        *slot = Some(session.clone());
        Ok((session, true))
    }

    /// Drops `session` from the pool if it is still the one pooled for `target`.
    async fn evict(&self, target: &Target, session: &Arc<Session>) {
        let slot = self.pool().get(target).cloned();
        if let Some(slot) = slot {
            let mut slot = slot.lock().await;
            if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
                *slot = None;
            }
        }
        connection::close(session).await;
    }

    /// Runs `command` on `host`, reconnecting once if a pooled connection went stale.
    async fn run(&self, host: &str, command: &str) -> Result<Output, Failure> {
        let target = Target::parse(host, self.inner.port).map_err(Failure::unreached)?;
        let limit = self.inner.settings.command_timeout;
        let (session, fresh) = self.session(&target).await.map_err(Failure::unreached)?;
        match connection::run(&session, &target, command, limit).await {
            Err(RunError::Open(_)) if !fresh => {
                self.evict(&target, &session).await;
                let (session, _) = self.session(&target).await.map_err(Failure::unreached)?;
                let result = connection::run(&session, &target, command, limit).await;
                self.after(&target, &session, result).await
            }
            result => self.after(&target, &session, result).await,
        }
    }

    async fn after(
        &self,
        target: &Target,
        session: &Arc<Session>,
        result: Result<Output, RunError>,
    ) -> Result<Output, Failure> {
        match result {
            Ok(output) => Ok(output),
            Err(RunError::TimedOut { error, clean }) => {
                if !clean {
                    // The host did not even answer the kill: treat the connection as dead.
                    self.evict(target, session).await;
                }
                Err(Failure {
                    error,
                    reached: clean,
                })
            }
            Err(RunError::Open(error) | RunError::Lost(error)) => {
                self.evict(target, session).await;
                Err(Failure::unreached(error))
            }
            Err(RunError::Command(error)) => Err(Failure {
                error,
                reached: true,
            }),
        }
    }

    fn command(&self, verb: &str) -> String {
        // The unit name was checked by `SshProbeConfig::validate`: no quoting needed.
        format!("systemctl {verb} {}", self.inner.unit)
    }
}

/// Why a command did not produce output.
struct Failure {
    error: Error,
    /// Whether the host answered at all (logged in and reacted), which makes a
    /// failed check `Degraded` rather than `Unreachable`.
    reached: bool,
}

impl Failure {
    fn unreached(error: Error) -> Failure {
        Failure {
            error,
            reached: false,
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        failure.error
    }
}

/// Non-zero exit of an operator command: what it printed, redacted and capped.
fn failed(host: &str, what: &str, output: &Output) -> Error {
    let said = if output.stderr.trim().is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    let status = output
        .status
        .map_or_else(|| "was killed".to_string(), |s| format!("exited {s}"));
    Error::new(
        ErrorKind::Internal,
        format!("{host}: {what} {status}: {}", redact(said.trim())),
    )
}

#[async_trait]
impl WorkerProbe for SshProbe {
    async fn probe(&self, host: &str) -> ProbeReport {
        match self.run(host, &self.command("is-active")).await {
            Err(Failure { error, reached }) => ProbeReport {
                health: if reached {
                    HostHealth::Degraded
                } else {
                    HostHealth::Unreachable
                },
                rtt: None,
                reason: Some(error.to_string()),
            },
            Ok(output) => {
                let state = output.stdout.trim();
                let (health, reason) = match output.status {
                    Some(0) if state == "active" => (HostHealth::Healthy, None),
                    Some(127) => (
                        HostHealth::Degraded,
                        Some(format!("{host}: systemctl was not found on the host")),
                    ),
                    _ if !state.is_empty() && !state.contains('\n') => (
                        HostHealth::Degraded,
                        Some(format!(
                            "{host}: service {} is {}",
                            self.inner.unit,
                            redact(state)
                        )),
                    ),
                    _ => (
                        HostHealth::Degraded,
                        Some(
                            failed(host, "`systemctl is-active`", &output)
                                .message()
                                .to_string(),
                        ),
                    ),
                };
                ProbeReport {
                    health,
                    rtt: Some(output.elapsed),
                    reason,
                }
            }
        }
    }

    async fn logs(&self, host: &str, lines: u32) -> Result<String> {
        let command = format!("journalctl -u {} -n {lines} --no-pager", self.inner.unit);
        let output = self.run(host, &command).await?;
        if output.status == Some(0) {
            Ok(output.stdout)
        } else {
            Err(failed(host, "`journalctl`", &output))
        }
    }

    async fn restart(&self, host: &str) -> Result<()> {
        // `--no-block`: queue the restart and return. A worker finishing a task may
        // take longer to stop than any sensible command timeout, and killing the
        // `systemctl` client would not cancel the restart anyway.
        let output = self.run(host, &self.command("restart --no-block")).await?;
        if output.status == Some(0) {
            tracing::info!(host, unit = %self.inner.unit, "queued a restart of the worker service");
            Ok(())
        } else {
            Err(failed(host, "`systemctl restart`", &output))
        }
    }
}

impl std::fmt::Debug for SshProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshProbe")
            .field("user", &self.inner.settings.user)
            .field("unit", &self.inner.unit)
            .field("host_keys", &self.inner.settings.host_keys)
            .finish_non_exhaustive()
    }
}
