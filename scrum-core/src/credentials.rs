//! Short-lived credentials for one repository, handed to the worker that runs a
//! task of it (with a GitHub App: an installation token scoped to the task's
//! repository), so a worker needs no long-lived secret of its own.

use async_trait::async_trait;

use crate::model::{RepoName, Timestamp};
use crate::{Error, Result};

/// A token that may push to one repository and open pull requests there, and when
/// it expires. `Debug` leaves the secret out; it is never serialized with the
/// assignment that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoToken {
    secret: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl RepoToken {
    /// A token `secret` good until `expires_at`.
    ///
    /// # Errors
    /// `Invalid` when the secret is empty or holds whitespace or control characters.
    pub fn new(secret: &str, expires_at: Timestamp) -> Result<RepoToken> {
        if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "a repository token must be one word of printable characters",
            ));
        }
        Ok(RepoToken {
            secret: secret.to_string(),
            expires_at,
        })
    }

    /// The secret itself, for the request or the push that needs it.
    pub fn expose(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for RepoToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mints a [`RepoToken`] for the repository of a task being handed out.
///
/// # Contract
/// - Each call returns a new token that reaches `repo` alone.
/// - `Ok(None)` means this deployment hands out no tokens (workers use their own).
/// - An error (the forge is down, the app is not installed there) is the forge's.
#[async_trait]
pub trait RepoCredentials: Send + Sync + 'static {
    /// A token for `repo`.
    async fn token_for(&self, repo: &RepoName) -> Result<Option<RepoToken>>;
}
