//! [`IssueEvents`]: push notifications from the issue tracker (webhooks), so an
//! orchestrator looks at a changed issue at once instead of at its next poll.

use crate::error::Result;
use crate::model::TaskId;

/// One push notification as the HTTP API received it.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// What kind of event it is (GitHub sends it as `X-GitHub-Event`).
    pub event: Option<&'a str>,
    /// The sender's signature over the body (GitHub: `X-Hub-Signature-256`).
    pub signature: Option<&'a str>,
    /// The body, byte for byte as received: the signature covers it.
    pub body: &'a [u8],
}

/// Checks push notifications from an issue tracker and says which task each is
/// about. The orchestrator answers a verified one by polling now; polling on its
/// interval stays the safety net, so a lost delivery delays, never loses, work.
///
/// # Behavior
/// - A delivery whose signature is missing or wrong fails with `Unauthorized`.
/// - A signed delivery with a malformed body fails with `Invalid`.
/// - A signed event that cannot change whether an issue is ready answers `None`.
pub trait IssueEvents: Send + Sync + 'static {
    /// The task a verified delivery concerns, if any.
    fn affected_task(&self, delivery: &Delivery<'_>) -> Result<Option<TaskId>>;
}
