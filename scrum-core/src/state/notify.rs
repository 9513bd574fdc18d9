//! Notifications as outbox effects: a transition that people want to hear about
//! (a task completed, failed for good, was parked with questions for a person,
//! lost its worker) records one [`EffectKind::Notify`] for the event, after the
//! effects that write its labels, in the same commit as the transition, when
//! [`Policy::notify`] lists the event. Where it goes is not the state machine's
//! business: the engine's notification loops fan each one out to every configured
//! target when they send it ([`crate::engine::Notifier`]), and acknowledge it once
//! every target took it. A crash loses none.
//!
//! They never hold labels back: the dispatcher hands them to the notifier instead
//! of applying them, and a notification that fails is retried by the notifier
//! without being marked failed in the store, so the task's later effects stay due
//! (see [`crate::engine`]'s dispatcher).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Effect, EffectKind, Policy};
use crate::error::Error;
use crate::model::Task;

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A task completed.
    Completed,
    /// A task failed for good (no attempts left, or a failure not worth retrying).
    Failed,
    /// A worker stopped answering while it held a task (its lease lapsed).
    WorkerLost,
    /// The issue is too vague: its questions were posted, and it waits, parked,
    /// for a person's answer.
    NeedsClarification,
    /// The follow-up rounds on a pull request are used up (`FOLLOW_UP_ROUNDS`):
    /// it is left for people with what is still wrong.
    FollowUpsExhausted,
}

impl NotifyEvent {
    /// Every event a notification can be about, in `NOTIFY_EVENTS` order.
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::Completed,
        NotifyEvent::Failed,
        NotifyEvent::NeedsClarification,
        NotifyEvent::WorkerLost,
        NotifyEvent::FollowUpsExhausted,
    ];

    /// The name `NOTIFY_EVENTS` uses: `completed`, `failed`, `needs_clarification`,
    /// `worker_lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "completed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::NeedsClarification => "needs_clarification",
            NotifyEvent::WorkerLost => "worker_lost",
            NotifyEvent::FollowUpsExhausted => "follow_ups_exhausted",
        }
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotifyEvent {
    type Err = Error;
    fn from_str(s: &str) -> Result<NotifyEvent, Error> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        NotifyEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown notification event {s:?}: one of completed, failed, needs_clarification, worker_lost, follow_ups_exhausted"
                ))
            })
    }
}

/// The notifications one transition causes, one per event [`Policy::notify`] lists.
/// `effects` are the transition's own effects (labels, comments): a notification
/// follows the one it is about. `expired` says the transition was a lapsed lease.
pub(super) fn notifications(
    next: &Task,
    effects: &[Effect],
    expired: bool,
    policy: &Policy,
) -> Vec<Effect> {
    if policy.notify.is_empty() {
        return Vec::new();
    }
    let mut events = Vec::new();
    if expired {
        events.push(NotifyEvent::WorkerLost);
    }
    for e in effects {
        match &e.kind {
            EffectKind::Completed { .. } => events.push(NotifyEvent::Completed),
            EffectKind::Failed { .. } => events.push(NotifyEvent::Failed),
            EffectKind::ClarificationRequested { .. } => {
                events.push(NotifyEvent::NeedsClarification);
            }
            EffectKind::FollowUpsExhausted { .. } => events.push(NotifyEvent::FollowUpsExhausted),
            _ => {}
        }
    }
    let detail = match (next.follow_ups_exhausted(), next.completion()) {
        (Some(f), _) => Some(format!("{}: {}", f.pr_url, f.cause.describe())),
        (None, Some(c)) => c.pr_url.clone(),
        (None, None) => next.last_error().map(str::to_string),
    };
    let mut out = Vec::new();
    for event in events.into_iter().filter(|e| policy.notify.contains(e)) {
        out.push(super::effect_of(
            next,
            EffectKind::Notify {
                target: None,
                event,
                title: next.issue.title.clone(),
                detail: detail.clone(),
                attempts: next.last_attempt().map_or(0, |a| a.number),
                max_attempts: next.run.max_attempts,
            },
        ));
    }
    out
}
