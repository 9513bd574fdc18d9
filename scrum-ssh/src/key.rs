//! Loading the client's private key (`WORKER_SSH_KEY`) with errors that say what is wrong.

use std::io::ErrorKind as IoKind;
use std::path::Path;

use russh::keys::{self, PrivateKey};
use scrum_core::{Error, Result};

/// Reads the unencrypted private key at `path`.
///
/// Every failure is [`ErrorKind::Invalid`](scrum_core::ErrorKind::Invalid) and names
/// `WORKER_SSH_KEY` and the path, never the key's contents: missing, unreadable,
/// encrypted (the probe runs unattended and has no passphrase), or not a key.
pub(crate) fn load_client_key(path: &Path) -> Result<PrivateKey> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == IoKind::NotFound => {
            return Err(Error::invalid(format!(
                "WORKER_SSH_KEY {shown}: no such file"
            )));
        }
        Err(e) if e.kind() == IoKind::PermissionDenied => {
            return Err(Error::invalid(format!(
                "WORKER_SSH_KEY {shown}: permission denied (the orchestrator cannot read it)"
            )));
        }
        Err(e) if e.kind() == IoKind::InvalidData => {
            return Err(Error::invalid(format!(
                "WORKER_SSH_KEY {shown}: not a private key file (not text)"
            )));
        }
        Err(e) => {
            return Err(
                Error::invalid(format!("WORKER_SSH_KEY {shown}: cannot be read")).with_source(e),
            );
        }
    };
    match keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(key),
        Err(keys::Error::KeyIsEncrypted) => Err(Error::invalid(format!(
            "WORKER_SSH_KEY {shown}: the key is encrypted with a passphrase; \
             the probe runs unattended, so give it a key without one"
        ))),
        // The decoder's own message may quote parts of the input; name only its kind.
        Err(_) => Err(Error::invalid(format!(
            "WORKER_SSH_KEY {shown}: not a supported private key \
             (expected an OpenSSH or PEM ed25519, ECDSA or RSA key)"
        ))),
    }
}
