//! The [`WorkerProbe`](scrum_core::WorkerProbe) over SSH: is a worker host reachable,
//! is its worker service active, what did it log, and restart it.
//!
//! The Python orchestrator this project replaces shelled out to
//! `ssh -o StrictHostKeyChecking=no` and never killed a probe that hung. This crate
//! is a real SSH client (russh) that checks who it talks to and never waits forever:
//!
//! - **Key login** as `WORKER_SSH_USER` with `WORKER_SSH_KEY` (ed25519, ECDSA or
//!   RSA). A missing, unreadable or passphrase-protected key is refused when the
//!   probe is built, with an error naming the variable.
//! - **Host keys are checked.** With a `known_hosts` file configured, only the keys
//!   in it are accepted. Without one, a host's key is pinned on first use in
//!   [`PINS_FILE`] under the state directory, and a different key later is refused
//!   and logged at `error` level. Nothing ever accepts any key.
//! - **Deadlines.** Connect (TCP, handshake, login) and each command have their own
//!   timeout; a command that overruns is killed on the host (`SIGKILL` to its
//!   process group) and its channel closed.
//! - **Rounds.** [`SshProbe::probe_all`] probes many hosts with bounded concurrency
//!   and keeps one connection per host open for the next round.
//!
//! # Layout
//!
//! - [`config`]: [`SshProbeConfig`], checked when the probe is built.
//! - `probe`: [`SshProbe`], the connection pool and [`SshProbe::probe_all`].
//! - `connection`: one connection: connect, host key check, login, commands with
//!   deadlines.
//! - `host_keys`: `known_hosts` look-ups and first-use pins.
//! - `key`: loading the client key with errors that say what is wrong.
//! - `target`: host strings (`ip`, `ip:port`, `[v6]:port`, `name[:port]`).
//! - `testkit` (feature `testkit`): a throwaway OpenSSH server for tests and examples.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> scrum_core::Result<()> {
//! use scrum_core::{HostHealth, WorkerProbe};
//! use scrum_ssh::{SshProbe, SshProbeConfig};
//!
//! let config = SshProbeConfig::new("root", "/etc/scrum/worker_key", "/var/lib/scrum-orchestrator");
//! let probe = SshProbe::new(config)?;
//! for host in probe.probe_all(&["10.0.0.5", "10.0.0.6:2222"], 32).await {
//!     match host.report.health {
//!         HostHealth::Healthy => println!("{}: ok in {:?}", host.host, host.report.rtt),
//!         _ => println!("{}: {:?}", host.host, host.report.reason),
//!     }
//! }
//! let recent = probe.logs("10.0.0.5", 50).await?;
//! # let _ = recent; Ok(()) }
//! ```

pub mod config;
mod connection;
mod host_keys;
mod key;
mod probe;
mod target;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{DEFAULT_UNIT, SshProbeConfig};
pub use host_keys::PINS_FILE;
pub use probe::{HostReport, SshProbe};
