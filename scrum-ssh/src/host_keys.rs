//! Deciding whether a host's key is the one we expect: a `known_hosts` file, or pins
//! taken on first use.
//!
//! Nothing here ever accepts a key it has no record for, except to pin it when no
//! `known_hosts` file is configured and the host has no pin yet. A key that differs
//! from the record is refused and logged at `error` level, with both fingerprints
//! and the line to remove if the change is legitimate.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::known_host_keys_path;
use russh::keys::{HashAlg, PublicKey};
use scrum_core::{Error, ErrorKind, Result};

use crate::target::Target;

/// The file inside [`SshProbeConfig::pin_dir`](crate::SshProbeConfig::pin_dir) that
/// holds first-use pins, in OpenSSH `known_hosts` format (so `ssh -o
/// UserKnownHostsFile=…` can use it, and an operator can delete a line to re-pin).
pub const PINS_FILE: &str = "ssh_known_hosts";

/// Where trusted host keys come from.
#[derive(Debug)]
pub(crate) enum HostKeys {
    /// An operator-managed `known_hosts` file: the only authority.
    KnownHosts(PathBuf),
    /// First-use pins kept in `file`.
    Pins {
        file: PathBuf,
        /// Serialises look-up-then-append, so two concurrent first connections to one
        /// host cannot pin two different keys.
        lock: Mutex<()>,
    },
}

/// Why a host key was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl HostKeys {
    /// Pins in `dir`.
    pub(crate) fn pins(dir: &Path) -> HostKeys {
        HostKeys::Pins {
            file: dir.join(PINS_FILE),
            lock: Mutex::new(()),
        }
    }

    /// Accepts `key` for `target`, pinning it if this is the first time, or says why not.
    pub(crate) fn check(&self, target: &Target, key: &PublicKey) -> Result<(), Refusal> {
        match self {
            HostKeys::KnownHosts(file) => match lookup(file, target, key)? {
                Lookup::Match => Ok(()),
                Lookup::Different(lines) => Err(changed(target, key, file, &lines)),
                Lookup::Unknown => Err(Refusal {
                    kind: ErrorKind::Unauthorized,
                    message: format!(
                        "host key of {target} ({} {}) is not in known_hosts file {}; refusing to connect",
                        key.algorithm(),
                        key.fingerprint(HashAlg::Sha256),
                        file.display()
                    ),
                }),
            },
            HostKeys::Pins { file, lock } => {
                let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                match lookup(file, target, key)? {
                    Lookup::Match => Ok(()),
                    Lookup::Different(lines) => Err(changed(target, key, file, &lines)),
                    Lookup::Unknown => {
                        pin(file, target, key)?;
                        tracing::warn!(
                            host = %target,
                            fingerprint = %key.fingerprint(HashAlg::Sha256),
                            pins = %file.display(),
                            "pinned the host key of a new worker host on first use"
                        );
                        Ok(())
                    }
                }
            }
        }
    }
}

enum Lookup {
    Match,
    /// The host has records, none of them this key: the 1-based lines.
    Different(Vec<usize>),
    Unknown,
}

fn lookup(file: &Path, target: &Target, key: &PublicKey) -> Result<Lookup, Refusal> {
    let unreadable = |why: String| Refusal {
        kind: ErrorKind::Corrupt,
        message: format!("known hosts file {}: {why}", file.display()),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(unreadable(format!("cannot be read ({e})"))),
    };
    if revoked(&text, target, key) {
        return Err(Refusal {
            kind: ErrorKind::Unauthorized,
            message: format!(
                "host key of {target} ({}) is marked @revoked in {}; refusing to connect",
                key.fingerprint(HashAlg::Sha256),
                file.display()
            ),
        });
    }
    // russh matches plain and hashed (`|1|…`) host names, `[host]:port` included.
    let records = known_host_keys_path(&target.host, target.port, file)
        .map_err(|e| unreadable(format!("a line for {target} is not a valid key ({e})")))?;
    if records.is_empty() {
        return Ok(Lookup::Unknown);
    }
    // Compare the key material only: `PublicKey`'s `==` also compares the comment.
    if records
        .iter()
        .any(|(_, recorded)| recorded.key_data() == key.key_data())
    {
        Ok(Lookup::Match)
    } else {
        Ok(Lookup::Different(
            records.into_iter().map(|(line, _)| line).collect(),
        ))
    }
}

/// Whether a `@revoked` line names this key for this host (plain host names only).
fn revoked(text: &str, target: &Target, key: &PublicKey) -> bool {
    let name = target.known_hosts_name();
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("@revoked") {
            return false;
        }
        let (Some(hosts), Some(_), Some(base64)) = (words.next(), words.next(), words.next())
        else {
            return false;
        };
        let host_matches = hosts.split(',').any(|h| h == name || h == "*");
        host_matches
            && russh::keys::parse_public_key_base64(base64)
                .is_ok_and(|revoked| revoked.key_data() == key.key_data())
    })
}

fn changed(target: &Target, key: &PublicKey, file: &Path, lines: &[usize]) -> Refusal {
    let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
    let message = format!(
        "HOST KEY CHANGED for {target}: it now presents {} {}, which does not match the key \
         recorded in {} (line {}). Refusing to connect: this may be a man-in-the-middle attack. \
         If the host was legitimately reinstalled, remove that line and probe again.",
        key.algorithm(),
        key.fingerprint(HashAlg::Sha256),
        file.display(),
        lines.join(", ")
    );
    tracing::error!(host = %target, "{message}");
    Refusal {
        kind: ErrorKind::Unauthorized,
        message,
    }
}

fn pin(file: &Path, target: &Target, key: &PublicKey) -> Result<(), Refusal> {
    let failed = |e: std::io::Error| Refusal {
        kind: ErrorKind::Unavailable,
        message: format!(
            "cannot record the host key of {target} in {}: {e}",
            file.display()
        ),
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().map_err(|e| Refusal {
        kind: ErrorKind::Internal,
        message: format!("cannot encode the host key of {target}: {e}"),
    })?;
    let existing = std::fs::read(file).unwrap_or_default();
    let separator = if existing.is_empty() || existing.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(failed)?;
    // One write of one whole line, then fsync: a crash leaves the pin or nothing.
    out.write_all(format!("{separator}{} {encoded}\n", target.known_hosts_name()).as_bytes())
        .map_err(failed)?;
    out.sync_all().map_err(failed)
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Error {
        Error::new(refusal.kind, refusal.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9R3gMr6EQkcZC51xkFXlblhy3ILfZ+08GmCW7ICmq0 one";
    const TWO: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSG9lyRt6KYvpQVMK1ZHDMwvv8RpZIkf6EH66SjQ2sm two";

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scrum-ssh-hostkeys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn target(port: u16) -> Target {
        Target {
            host: "10.0.0.5".into(),
            port,
        }
    }

    #[test]
    fn first_use_pins_and_a_different_key_is_refused() {
        let dir = scratch("pins");
        let pins = HostKeys::pins(&dir.join("state"));
        assert_eq!(pins.check(&target(2222), &key(ONE)), Ok(()));
        assert_eq!(pins.check(&target(2222), &key(ONE)), Ok(()));
        let refused = pins.check(&target(2222), &key(TWO)).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Unauthorized);
        assert!(
            refused
                .message
                .contains("HOST KEY CHANGED for 10.0.0.5:2222"),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("line 1"), "{}", refused.message);
        // Another port of the same address is another host: pinned separately.
        assert_eq!(pins.check(&target(22), &key(TWO)), Ok(()));
        let text = std::fs::read_to_string(dir.join("state").join(PINS_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("[10.0.0.5]:2222 ssh-ed25519 AAAAC3"));
        assert!(lines[1].starts_with("10.0.0.5 ssh-ed25519 AAAAC3"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_comment_does_not_make_a_key_different() {
        let dir = scratch("comment");
        let file = dir.join("known_hosts");
        std::fs::write(
            &file,
            format!("10.0.0.5 {}\n", ONE.replace(" one", " laptop")),
        )
        .unwrap();
        let known = HostKeys::KnownHosts(file);
        assert_eq!(known.check(&target(22), &key(ONE)), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn known_hosts_never_pins_and_honours_revocation() {
        let dir = scratch("known");
        let file = dir.join("known_hosts");
        std::fs::write(
            &file,
            format!("# fleet\n10.0.0.5 {ONE}\n@revoked * {TWO}\n"),
        )
        .unwrap();
        let known = HostKeys::KnownHosts(file.clone());
        assert_eq!(known.check(&target(22), &key(ONE)), Ok(()));
        let unknown = known.check(&target(2222), &key(ONE)).unwrap_err();
        assert!(unknown.message.contains("not in known_hosts"));
        let revoked = known.check(&target(2222), &key(TWO)).unwrap_err();
        assert!(revoked.message.contains("@revoked"), "{}", revoked.message);
        assert!(
            std::fs::read_to_string(&file).unwrap().lines().count() == 3,
            "the file was written"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
