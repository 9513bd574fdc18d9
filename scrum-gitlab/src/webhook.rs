//! GitLab webhooks: checking `X-Gitlab-Token` (the secret token set on the hook)
//! in constant time, and saying which task a delivery concerns, so the
//! orchestrator looks at it now instead of at the next poll.
//!
//! | `X-Gitlab-Event` | the task |
//! | --- | --- |
//! | `Issue Hook` (and confidential) | the issue |
//! | `Merge Request Hook` | the merge request (`gitlab:path#iid`, as GitHub's pull requests) |
//! | `Note Hook` (and confidential) | the issue or merge request noted on |
//! | `Pipeline Hook` | its merge request, when it ran for one |
//!
//! Any other event answers `None`.
//!
//! ```
//! use scrum_gitlab::webhook::affected_task;
//!
//! let body = br#"{"object_kind":"issue","project":{"path_with_namespace":"group/sub/project"},"object_attributes":{"iid":12,"action":"update"}}"#;
//! let task = affected_task("s3cret", Some("Issue Hook"), Some("s3cret"), body).unwrap();
//! assert_eq!(task.unwrap().to_string(), "gitlab:group/sub/project#12");
//! assert!(affected_task("s3cret", Some("Issue Hook"), Some("guess"), body).is_err());
//! ```

use std::fmt;

use scrum_core::{Delivery, Error, ErrorKind, IssueEvents, RepoName, Result, TaskId};
use serde::Deserialize;

use crate::config::FORGE;

/// The secret token of the webhook, checked against `X-Gitlab-Token`. `Debug`
/// hides it.
#[derive(Clone)]
pub struct WebhookToken(String);

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookToken([REDACTED])")
    }
}

impl WebhookToken {
    /// The token as configured on the hook.
    ///
    /// # Errors
    /// `Invalid` when it is empty.
    pub fn new(secret: &str) -> Result<WebhookToken> {
        if secret.is_empty() {
            return Err(Error::invalid(
                "the GitLab webhook secret is empty: set it to the secret token configured on the webhook",
            ));
        }
        Ok(WebhookToken(secret.to_string()))
    }
}

/// The orchestrator's HTTP API checks deliveries with the token: `X-Gitlab-Event`
/// as the event, `X-Gitlab-Token` as the signature. See [`affected_task`].
impl IssueEvents for WebhookToken {
    fn affected_task(&self, d: &Delivery<'_>) -> Result<Option<TaskId>> {
        affected_task(&self.0, d.event, d.signature, d.body)
    }
}

fn refused(why: &str) -> Error {
    Error::new(ErrorKind::Unauthorized, format!("webhook refused: {why}"))
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they
/// differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Checks `token` (the `X-Gitlab-Token` header) against the secret, then says
/// which task the delivery concerns (see the module's table).
///
/// # Errors
/// `Unauthorized` when the token is missing or wrong; then `Invalid` when the
/// event header is missing or a payload lacks what its kind must carry.
pub fn affected_task(
    secret: &str,
    event: Option<&str>,
    token: Option<&str>,
    body: &[u8],
) -> Result<Option<TaskId>> {
    let token = token.ok_or_else(|| refused("no X-Gitlab-Token header"))?;
    if secret.is_empty() || !same(token.as_bytes(), secret.as_bytes()) {
        return Err(refused("X-Gitlab-Token does not match the secret"));
    }
    parse_event(event, body)
}

#[derive(Deserialize)]
struct Payload {
    project: ProjectRef,
    #[serde(default)]
    object_attributes: Option<Attributes>,
    #[serde(default)]
    issue: Option<Iid>,
    #[serde(default)]
    merge_request: Option<Iid>,
}

#[derive(Deserialize)]
struct ProjectRef {
    path_with_namespace: String,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    iid: Option<u64>,
    #[serde(default)]
    noteable_type: Option<String>,
}

#[derive(Deserialize)]
struct Iid {
    iid: u64,
}

/// The task a (verified) delivery concerns; see [`affected_task`].
///
/// # Errors
/// `Invalid` when the event header is missing or the payload is malformed.
pub fn parse_event(event: Option<&str>, body: &[u8]) -> Result<Option<TaskId>> {
    let event = event
        .ok_or_else(|| Error::invalid("webhook has no X-Gitlab-Event header"))?
        .trim();
    let kind = match event {
        "Issue Hook" | "Confidential Issue Hook" => Kind::Issue,
        "Merge Request Hook" => Kind::MergeRequest,
        "Note Hook" | "Confidential Note Hook" => Kind::Note,
        "Pipeline Hook" => Kind::Pipeline,
        _ => return Ok(None),
    };
    let p: Payload = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("webhook {event} payload is malformed: {e}")))?;
    let attr_iid = p.object_attributes.as_ref().and_then(|a| a.iid);
    let iid = match kind {
        Kind::Issue | Kind::MergeRequest => Some(attr_iid.ok_or_else(|| {
            Error::invalid(format!(
                "webhook {event} payload has no object_attributes.iid"
            ))
        })?),
        Kind::Note => {
            let on = p
                .object_attributes
                .as_ref()
                .and_then(|a| a.noteable_type.as_deref());
            match on {
                Some("Issue") => p.issue.as_ref().map(|i| i.iid),
                Some("MergeRequest") => p.merge_request.as_ref().map(|m| m.iid),
                _ => None,
            }
        }
        Kind::Pipeline => p.merge_request.as_ref().map(|m| m.iid),
    };
    let Some(iid) = iid.filter(|n| *n > 0) else {
        return Ok(None);
    };
    let repo: RepoName = format!("{FORGE}:{}", p.project.path_with_namespace)
        .parse()
        .map_err(|e: Error| Error::invalid(format!("webhook {event} payload: {}", e.message())))?;
    Ok(Some(TaskId::in_repo(&repo, iid)))
}

enum Kind {
    Issue,
    MergeRequest,
    Note,
    Pipeline,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
