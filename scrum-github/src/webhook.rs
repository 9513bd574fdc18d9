//! GitHub webhooks: checking `X-Hub-Signature-256` and turning events into the
//! task whose issue or pull request should be looked at now, instead of at the
//! next poll: `issues` and `issue_dependencies` events (the issue), and for
//! follow-ups `pull_request`, `pull_request_review`,
//! `pull_request_review_comment`, `issue_comment` on a pull request, `check_run`,
//! `check_suite` and `status` (the pull request).
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

use crate::follow_ups::PullHeads;

/// The `issues` actions that can change whether an issue is ready.
pub const ISSUE_ACTIONS: [&str; 5] = ["labeled", "unlabeled", "closed", "reopened", "opened"];

/// The shared secret of the webhook (`GITHUB_WEBHOOK_SECRET`). `Debug` hides it.
///
/// With the client's [`PullHeads`] ([`WebhookSecret::with_pull_heads`]), a
/// `status` delivery, which names a commit rather than a pull request, is routed
/// to the tracked pull request whose head it is.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    heads: Option<PullHeads>,
}

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
        Ok(WebhookSecret {
            key: secret.as_bytes().to_vec(),
            heads: None,
        })
    }

    /// Routes deliveries that name a commit (`status`, and check events without
    /// a pull request) through `heads`, the client's index of tracked pull
    /// requests by head commit ([`crate::GitHubClient::pull_heads`]).
    pub fn with_pull_heads(mut self, heads: PullHeads) -> WebhookSecret {
        self.heads = Some(heads);
        self
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC accepts any key length")
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
pub(crate) struct IssueRef {
    pub(crate) number: u64,
}

#[derive(Deserialize)]
pub(crate) struct RepoRef {
    pub(crate) full_name: String,
}

/// An `issue_comment` event: the pull request it is on; `None` on an issue.
fn comment_event(body: &[u8]) -> Result<Option<TaskId>> {
    let payload: CommentPayload = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("webhook issue_comment payload is malformed: {e}")))?;
    if payload.issue.pull_request.is_none() {
        return Ok(None);
    }
    TaskId::new(&payload.repository.full_name, payload.issue.number)
        .map(Some)
        .map_err(|e| Error::invalid(format!("webhook issue_comment payload: {}", e.message())))
}

#[derive(Deserialize)]
struct CommentPayload {
    issue: CommentedIssue,
    repository: RepoRef,
}

#[derive(Deserialize)]
struct CommentedIssue {
    number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

/// The task an event affects: `Some` for an `issues` event whose action is one of
/// [`ISSUE_ACTIONS`], for an `issue_dependencies` event (its blocked issue), for
/// `pull_request`, `pull_request_review` and `pull_request_review_comment` events
/// and `issue_comment` events on a pull request (the pull request, as
/// `owner/repo#N`), and for `check_run` and `check_suite` events that name a pull
/// request (its first); `None` for every other event or action (`ping`, `status`
/// and a comment on an issue included). [`parse_event_with`] also routes commits.
///
/// # Errors
/// `Invalid` when the `X-GitHub-Event` header is missing, or a payload of one of
/// those events is not JSON or lacks what names its issue or pull request.
pub fn parse_event(event: Option<&str>, body: &[u8]) -> Result<Option<TaskId>> {
    parse_event_with(event, body, None)
}

/// As [`parse_event`], with `heads` to route a delivery that names only a commit
/// (`status`; a `check_run` or `check_suite` of a fork's pull request) to the
/// tracked pull request whose head it is.
///
/// # Errors
/// As [`parse_event`].
pub fn parse_event_with(
    event: Option<&str>,
    body: &[u8],
    heads: Option<&PullHeads>,
) -> Result<Option<TaskId>> {
    let event = event.ok_or_else(|| Error::invalid("webhook has no X-GitHub-Event header"))?;
    match event.trim() {
        "issue_dependencies" => return dependency_event(body),
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            return pull_event(body);
        }
        "issue_comment" => return comment_event(body),
        "check_run" | "check_suite" | "status" => {
            return crate::webhook_checks::check_event(event.trim(), body, heads);
        }
        _ => {}
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
    parse_event_with(event, body, secret.heads.as_ref())
}

/// The orchestrator's HTTP API (`POST /webhooks/github`) checks deliveries with the
/// secret: see [`affected_task`].
impl IssueEvents for WebhookSecret {
    fn affected_task(&self, d: &Delivery<'_>) -> Result<Option<TaskId>> {
        affected_task(self, d.event, d.signature, d.body)
    }
}
