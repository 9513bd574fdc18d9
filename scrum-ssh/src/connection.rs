//! One SSH connection: connect with a deadline, check the host key, authenticate, and
//! run commands that are killed when they overrun.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use scrum_core::{Error, ErrorKind, Result};
use tokio::time::timeout;

use crate::host_keys::{HostKeys, Refusal};
use crate::target::Target;

/// The most output kept from one command; the rest is read and dropped.
const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// How long killing an overrunning command may take before the whole connection
/// is dropped instead.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// What a connection needs, shared by all of a probe's connections.
pub(crate) struct Settings {
    pub(crate) user: String,
    pub(crate) key: Arc<PrivateKey>,
    pub(crate) host_keys: Arc<HostKeys>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) russh: Arc<client::Config>,
}

/// The russh handler: its only job is the host key check.
pub(crate) struct Client {
    target: Target,
    host_keys: Arc<HostKeys>,
    /// Why the host key was refused, for the error `connect` returns (russh itself
    /// only says "unknown key").
    refusal: Arc<Mutex<Option<Refusal>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.host_keys.check(&self.target, key)
            }
            PublicKeyOrCertificate::Certificate(_) => Err(Refusal {
                kind: ErrorKind::Unauthorized,
                message: format!(
                    "{} presented a host certificate; only plain host keys are checked, refusing",
                    self.target
                ),
            }),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(refusal) => {
                *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal);
                Ok(false)
            }
        }
    }
}

/// An authenticated connection.
pub(crate) type Session = Handle<Client>;

/// Connects to `target`, checks its host key and logs in, all within the connect timeout.
pub(crate) async fn connect(target: &Target, settings: &Settings) -> Result<Session> {
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        target: target.clone(),
        host_keys: settings.host_keys.clone(),
        refusal: refusal.clone(),
    };
    let attempt = async {
        let mut session = client::connect(
            settings.russh.clone(),
            (target.host.as_str(), target.port),
            handler,
        )
        .await
        .map_err(
            |e| match refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(refusal) => Error::from(refusal),
                None => connect_error(target, e),
            },
        )?;
        authenticate(&mut session, target, settings).await?;
        Ok(session)
    };
    match timeout(settings.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{target}: no SSH login within the connect timeout ({:?})",
                settings.connect_timeout
            ),
        )),
    }
}

async fn authenticate(session: &mut Session, target: &Target, settings: &Settings) -> Result<()> {
    let lost = |e: russh::Error| {
        Error::unavailable(format!("{target}: connection lost while logging in")).with_source(e)
    };
    let hash = if settings.key.algorithm().is_rsa() {
        session
            .best_supported_rsa_hash()
            .await
            .map_err(lost)?
            .flatten()
    } else {
        None
    };
    let key = PrivateKeyWithHashAlg::new(settings.key.clone(), hash);
    let result = session
        .authenticate_publickey(settings.user.clone(), key)
        .await
        .map_err(lost)?;
    if result.success() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{target}: the server refused WORKER_SSH_KEY for user {:?} \
                 (is its public key in that user's authorized_keys?)",
                settings.user
            ),
        ))
    }
}

fn connect_error(target: &Target, e: russh::Error) -> Error {
    use std::io::ErrorKind as Io;
    let what = match &e {
        russh::Error::IO(io) => match io.kind() {
            Io::ConnectionRefused => "connection refused (is sshd running?)",
            Io::TimedOut => "TCP connect timed out",
            Io::HostUnreachable | Io::NetworkUnreachable => "no route to host",
            Io::ConnectionReset | Io::UnexpectedEof => "connection closed during the SSH handshake",
            _ => "cannot connect",
        },
        russh::Error::Disconnect | russh::Error::HUP => {
            "connection closed during the SSH handshake"
        }
        russh::Error::NoCommonAlgo { .. } => "no SSH algorithm in common with the server",
        _ => "SSH handshake failed",
    };
    Error::unavailable(format!("{target}: {what}")).with_source(e)
}

/// What a remote command did.
#[derive(Debug)]
pub(crate) struct Output {
    /// The exit status, `None` when the command was killed by a signal.
    pub(crate) status: Option<u32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// From opening the channel to the command's exit.
    pub(crate) elapsed: Duration,
}

/// Why [`run`] failed: whether the connection could not even open a channel (a
/// pooled connection that went stale, worth one reconnect) or the command failed.
#[derive(Debug)]
pub(crate) enum RunError {
    Open(Error),
    /// The connection closed while the command ran.
    Lost(Error),
    Command(Error),
    /// The command overran and was killed; `clean` says whether the teardown
    /// finished (otherwise the connection should be dropped).
    TimedOut {
        error: Error,
        clean: bool,
    },
}

/// Runs `command` on a new channel of `session`, within `limit`.
///
/// The command runs as `echo scrum-pgid=$$; exec COMMAND` in the login shell: sshd
/// starts each command in a new session, so that line names the command's process
/// group (and is removed from the output). A command that overruns has that whole group killed (`kill -KILL -PGID`,
/// sent on a second channel) and its channel closed. (OpenSSH refuses the SSH
/// `signal` request for root logins, so it cannot be relied on.)
pub(crate) async fn run(
    session: &Session,
    target: &Target,
    command: &str,
    limit: Duration,
) -> Result<Output, RunError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let overran = |killed: bool| {
        let fate = if killed {
            "it was killed"
        } else {
            "killing it failed"
        };
        Error::new(
            ErrorKind::Timeout,
            format!("{target}: `{command}` did not finish within {limit:?}; {fate}"),
        )
    };
    let mut channel = match tokio::time::timeout_at(deadline, session.channel_open_session()).await
    {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => {
            return Err(RunError::Open(
                Error::unavailable(format!("{target}: cannot open an SSH channel")).with_source(e),
            ));
        }
        Err(_) => {
            let error = Error::new(
                ErrorKind::Timeout,
                format!("{target}: the connection did not open a channel within {limit:?}"),
            );
            return Err(RunError::TimedOut {
                error,
                clean: false,
            });
        }
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut status = None;
    let mut signalled = false;
    let exchange = async {
        channel
            .exec(true, format!("echo {GROUP_MARKER}$$; exec {command}"))
            .await
            .map_err(|e| {
                Error::unavailable(format!("{target}: cannot start `{command}`")).with_source(e)
            })?;
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => append(&mut stdout, &data),
                ChannelMsg::ExtendedData { data, ext: 1 } => append(&mut stderr, &data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { .. } => signalled = true,
                ChannelMsg::Failure => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("{target}: the server refused to run `{command}`"),
                    ));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok(())
    };
    let finished = tokio::time::timeout_at(deadline, exchange).await;
    let (group, stdout) = split_group(&stdout);
    match finished {
        Ok(Ok(())) if status.is_none() && !signalled => Err(RunError::Lost(Error::unavailable(
            format!("{target}: the connection closed while `{command}` ran"),
        ))),
        Ok(Ok(())) => Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: started.elapsed(),
        }),
        Ok(Err(e)) => Err(RunError::Command(e)),
        Err(_) => {
            let killed = match group {
                Some(group) => kill_group(session, group).await,
                None => false,
            };
            let _ = timeout(TEARDOWN_TIMEOUT, channel.close()).await;
            tracing::warn!(host = %target, command, killed, "a remote command overran its timeout");
            Err(RunError::TimedOut {
                error: overran(killed),
                clean: killed,
            })
        }
    }
}

/// Starts the line naming the remote command's process group.
const GROUP_MARKER: &str = "scrum-pgid=";

/// Takes the process group line `run` adds out of the command's output (a login
/// script may have printed before it).
fn split_group(stdout: &[u8]) -> (Option<u32>, Vec<u8>) {
    let mut start = 0;
    while let Some(length) = stdout[start..].iter().position(|b| *b == b'\n') {
        let line = &stdout[start..start + length];
        if let Some(id) = line.strip_prefix(GROUP_MARKER.as_bytes()) {
            let group = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.trim().parse::<u32>().ok())
                .filter(|id| *id > 1);
            let mut rest = stdout[..start].to_vec();
            rest.extend_from_slice(&stdout[start + length + 1..]);
            return (group, rest);
        }
        start += length + 1;
    }
    (None, stdout.to_vec())
}

/// Kills process group `group` on the host; whether that was confirmed in time.
async fn kill_group(session: &Session, group: u32) -> bool {
    let kill = async {
        let mut channel = session.channel_open_session().await.ok()?;
        channel
            .exec(true, format!("kill -KILL -{group}"))
            .await
            .ok()?;
        let mut status = None;
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        status
    };
    matches!(timeout(TEARDOWN_TIMEOUT, kill).await, Ok(Some(0)))
}

fn append(buffer: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT_BYTES.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
}

/// Says goodbye politely; used when a connection is dropped from the pool.
pub(crate) async fn close(session: &Session) {
    let _ = timeout(
        Duration::from_secs(1),
        session.disconnect(Disconnect::ByApplication, "", "en"),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_line_is_found_and_removed_even_after_login_noise() {
        assert_eq!(
            split_group(b"scrum-pgid=4242\nactive\n"),
            (Some(4242), b"active\n".to_vec())
        );
        assert_eq!(
            split_group(b"welcome!\nscrum-pgid=77\nline\n"),
            (Some(77), b"welcome!\nline\n".to_vec())
        );
        assert_eq!(split_group(b"scrum-pgid=1\n"), (None, Vec::new()));
        assert_eq!(
            split_group(b"scrum-pgid=12"),
            (None, b"scrum-pgid=12".to_vec())
        );
        assert_eq!(split_group(b"no marker\n"), (None, b"no marker\n".to_vec()));
    }
}
