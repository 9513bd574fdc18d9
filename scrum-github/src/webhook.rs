//! GitHub webhooks: checking `X-Hub-Signature-256` and turning `issues` events into
//! the task whose issue should be looked at now, instead of at the next poll.
//!
//! The HTTP route lives in `scrum-http`: it takes any [`IssueEvents`], which
//! [`WebhookSecret`] implements with [`affected_task`], and maps the errors:
//! `Unauthorized` to 401 (bad or missing signature), `Invalid` to 400.
//!
//! ```
//! use scrum_github::webhook::{WebhookSecret, affected_task, sign};
//!
//! let secret = WebhookSecret::new("s3cret").unwrap();
//! let body = br#"{"action":"labeled","issue":{"number":7},"repository":{"full_name":"acme/widgets"}}"#;
//! let signature = sign(&secret, body);
//! let task = affected_task(&secret, Some("issues"), Some(&signature), body).unwrap();
//! assert_eq!(task.unwrap().to_string(), "acme/widgets#7");
//! assert!(affected_task(&secret, Some("issues"), Some("sha256=00"), body).is_err());
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use scrum_core::{Delivery, Error, ErrorKind, IssueEvents, Result, TaskId};
use serde::Deserialize;
use sha2::Sha256;

/// The `issues` actions that can change whether an issue is ready.
pub const ISSUE_ACTIONS: [&str; 5] = ["labeled", "unlabeled", "closed", "reopened", "opened"];

/// The shared secret of the webhook (`GITHUB_WEBHOOK_SECRET`). `Debug` hides it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl WebhookSecret {
    /// The secret as configured.
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_WEBHOOK_SECRET` when it is empty.
    pub fn new(secret: &str) -> Result<WebhookSecret> {
        if secret.is_empty() {
            return Err(Error::invalid(
                "GITHUB_WEBHOOK_SECRET is empty: set it to the secret configured on the webhook",
            ));
        }
        Ok(WebhookSecret(secret.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

/// The `X-Hub-Signature-256` value GitHub would send for `body`: `sha256=<hex>`.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn refused(why: &str) -> Error {
    Error::new(ErrorKind::Unauthorized, format!("webhook refused: {why}"))
}

/// Checks `signature` (the `X-Hub-Signature-256` header) against `body`, in constant
/// time.
///
/// # Errors
/// `Unauthorized` when the header is missing, malformed or does not match.
pub fn verify_signature(
    secret: &WebhookSecret,
    signature: Option<&str>,
    body: &[u8],
) -> Result<()> {
    let signature = signature.ok_or_else(|| refused("no X-Hub-Signature-256 header"))?;
    let hex = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| refused("X-Hub-Signature-256 does not start with sha256="))?;
    let tag = decode_hex(hex).ok_or_else(|| refused("X-Hub-Signature-256 is not hexadecimal"))?;
    let mut mac = secret.mac();
    mac.update(body);
    mac.verify_slice(&tag)
        .map_err(|_| refused("X-Hub-Signature-256 does not match the body"))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Deserialize)]
struct IssuesPayload {
    action: String,
    issue: IssueRef,
    repository: RepoRef,
}

#[derive(Deserialize)]
struct IssueRef {
    number: u64,
}

#[derive(Deserialize)]
struct RepoRef {
    full_name: String,
}

/// The task an event affects: `Some` for an `issues` event whose action is one of
/// [`ISSUE_ACTIONS`], for an `issue_dependencies` event (its blocked issue), and
/// for `pull_request` and `pull_request_review` events (the pull request);
/// `None` for every other event or action (`ping` included).
///
/// # Errors
/// `Invalid` when the `X-GitHub-Event` header is missing, or an `issues` payload is
/// not JSON or lacks the action, issue number or repository.
pub fn parse_event(event: Option<&str>, body: &[u8]) -> Result<Option<TaskId>> {
    let event = event.ok_or_else(|| Error::invalid("webhook has no X-GitHub-Event header"))?;
    if event.trim() == "issue_dependencies" {
        return dependency_event(body);
    }
    if matches!(event.trim(), "pull_request" | "pull_request_review") {
        return pull_event(body);
    }
    if event.trim() != "issues" {
        return Ok(None);
    }
    let payload: IssuesPayload = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("webhook issues payload is malformed: {e}")))?;
    if !ISSUE_ACTIONS.contains(&payload.action.as_str()) {
        return Ok(None);
    }
    TaskId::new(&payload.repository.full_name, payload.issue.number)
        .map(Some)
        .map_err(|e| Error::invalid(format!("webhook issues payload: {}", e.message())))
}

/// An `issue_dependencies` event (a blocker added or removed): the blocked issue's
/// task, whose blockers the poll it starts checks again.
fn dependency_event(body: &[u8]) -> Result<Option<TaskId>> {
    let payload: DependencyPayload = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(format!(
            "webhook issue_dependencies payload is malformed: {e}"
        ))
    })?;
    TaskId::new(&payload.repository.full_name, payload.blocked_issue.number)
        .map(Some)
        .map_err(|e| {
            Error::invalid(format!(
                "webhook issue_dependencies payload: {}",
                e.message()
            ))
        })
}

/// A `pull_request` or `pull_request_review` event: the pull request (as
/// `owner/repo#N`), whose review state the poll it starts reads again.
fn pull_event(body: &[u8]) -> Result<Option<TaskId>> {
    let payload: PullPayload = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("webhook pull request payload is malformed: {e}")))?;
    TaskId::new(&payload.repository.full_name, payload.pull_request.number)
        .map(Some)
        .map_err(|e| Error::invalid(format!("webhook pull request payload: {}", e.message())))
}

#[derive(Deserialize)]
struct PullPayload {
    pull_request: IssueRef,
    repository: RepoRef,
}

#[derive(Deserialize)]
struct DependencyPayload {
    blocked_issue: IssueRef,
    repository: RepoRef,
}

/// [`verify_signature`], then [`parse_event`]: what the webhook route calls.
///
/// # Errors
/// As those two: `Unauthorized` first, then `Invalid`.
pub fn affected_task(
    secret: &WebhookSecret,
    event: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Option<TaskId>> {
    verify_signature(secret, signature, body)?;
    parse_event(event, body)
}

/// The orchestrator's HTTP API (`POST /webhooks/github`) checks deliveries with the
/// secret: see [`affected_task`].
impl IssueEvents for WebhookSecret {
    fn affected_task(&self, d: &Delivery<'_>) -> Result<Option<TaskId>> {
        affected_task(self, d.event, d.signature, d.body)
    }
}
