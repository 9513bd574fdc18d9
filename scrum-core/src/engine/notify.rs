//! Sending the outbox's notifications ([`crate::state::notify`]) in the background.
//!
//! The dispatcher hands each due `Notify` effect to the leader's notification
//! loops instead of applying it, and goes on with the labels. The effect names an
//! event, not a target: it is fanned out here to every configured target. One loop
//! per target sends that target's notifications oldest first through the
//! [`Notifier`] (which paces and retries as the target asks), and the effect is
//! acknowledged in the store once every target took it (or was given up on). A
//! notification that fails waits in memory and is tried again later:
//! it is never marked failed in the store, so it never holds back its task's
//! later effects. After a crash the store still has every unacknowledged one, and
//! the next leader sends it; one sent but not yet acknowledged when the process
//! died is the only kind sent twice.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Orchestrator, lock};
use crate::error::Result;
use crate::model::TaskId;
use crate::queue::OutboxEntry;
use crate::state::{EffectKind, NotifyEvent};

/// A notification as its target is told it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Its outbox id: unique, the same when it is sent again (a delivery id).
    pub id: u64,
    /// The target's name (`slack`, `discord`, `webhook`).
    pub target: String,
    /// What happened.
    pub event: NotifyEvent,
    /// The task.
    pub task: TaskId,
    /// The title.
    pub title: String,
    /// The pull request of a completion, or the reason of a failure.
    pub detail: Option<String>,
    /// Attempts spent.
    pub attempts: u32,
    /// The most attempts the run may spend.
    pub max_attempts: u32,
}

impl Notification {
    /// The notification an outbox entry holds for `target`, if it holds one.
    pub fn from_entry(entry: &OutboxEntry, target: &str) -> Option<Notification> {
        match &entry.effect.kind {
            EffectKind::Notify {
                event,
                title,
                detail,
                attempts,
                max_attempts,
                ..
            } => Some(Notification {
                id: entry.id,
                target: target.to_string(),
                event: *event,
                task: entry.effect.task.clone(),
                title: title.clone(),
                detail: detail.clone(),
                attempts: *attempts,
                max_attempts: *max_attempts,
            }),
            _ => None,
        }
    }
}

/// Sends notifications to their targets.
///
/// # Contract
/// - `targets` names every target it sends to; notifications for others are
///   dropped by the engine (with a warning).
/// - `send` returns once the target took the notification; it paces its requests
///   as the target asks (Slack: one a second), waits out a `429` with
///   `Retry-After`, and retries server errors a few times. An error means "not
///   sent, try later"; it never carries the target's URL.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The names of the targets it sends to.
    fn targets(&self) -> Vec<String>;

    /// Sends `note` to its target.
    async fn send(&self, note: &Notification) -> Result<()>;
}

/// After failing for this long, a notification is dropped (and logged).
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two tries of one notification.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The notifications handed to the loops and not yet sent to every target, by
/// outbox id.
#[derive(Debug, Default)]
pub(super) struct Handed {
    waiting: BTreeMap<u64, BTreeMap<String, Waiting>>,
}

/// One notification for one target, until that target took it.
#[derive(Debug)]
struct Waiting {
    note: Notification,
    /// Not tried again before this.
    retry_at: Instant,
    failures: u32,
    first_failure: Option<Instant>,
}

impl Handed {
    /// How many wait: the dispatcher reads that many more due effects, so waiting
    /// notifications never crowd labels out of a round.
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Forgets `note` for its target; true when no target waits for it any more
    /// (the effect can be acknowledged).
    fn settle(&mut self, note: &Notification) -> bool {
        let Some(targets) = self.waiting.get_mut(&note.id) else {
            return false;
        };
        targets.remove(&note.target);
        let done = targets.is_empty();
        if done {
            self.waiting.remove(&note.id);
        }
        done
    }
}

impl Orchestrator {
    /// Takes a due `Notify` effect from the dispatcher and fans it out: the loop of
    /// each configured target sends it (only its own target, for one recorded per
    /// target by an older release). With no target for it, it is dropped
    /// (acknowledged).
    pub(super) async fn hand_notification(&self, entry: &OutboxEntry) -> Result<()> {
        let EffectKind::Notify { target: only, .. } = &entry.effect.kind else {
            return Ok(());
        };
        let targets: Vec<String> = self
            .inner
            .notifier
            .iter()
            .flat_map(|n| n.targets())
            .filter(|t| only.as_ref().is_none_or(|o| o == t))
            .collect();
        if targets.is_empty() {
            tracing::warn!(task = %entry.effect.task, target = ?only, "no notification target is configured for it now; dropping the notification");
            return self.inner.queue.ack_effect(entry.id, self.now()).await;
        }
        let mut handed = lock(&self.inner.notes);
        if let std::collections::btree_map::Entry::Vacant(slot) = handed.waiting.entry(entry.id) {
            let waiting = targets.into_iter().filter_map(|target| {
                let note = Notification::from_entry(entry, &target)?;
                let retry_at = Instant::now();
                Some((
                    target,
                    Waiting {
                        note,
                        retry_at,
                        failures: 0,
                        first_failure: None,
                    },
                ))
            });
            slot.insert(waiting.collect());
            self.inner.notes_ready.notify_waiters();
        }
        Ok(())
    }

    /// How many notifications wait to be sent.
    pub(super) fn notifications_waiting(&self) -> usize {
        lock(&self.inner.notes).len()
    }

    /// Sends `target`'s notifications, oldest first, while this orchestrator
    /// leads, until `stop`.
    pub(super) async fn notify_loop(&self, target: String, stop: CancellationToken) {
        let Some(notifier) = self.inner.notifier.clone() else {
            return;
        };
        loop {
            // Interest first, then the look: a notification handed in between wakes us.
            let ready = self.inner.notes_ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let next = self.next_notification(&target);
            let wait = match &next {
                Some((_, at)) => at.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(1),
            };
            if wait > Duration::ZERO || next.is_none() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = ready => {}
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            if stop.is_cancelled() {
                return;
            }
            let Some((note, _)) = next else { continue };
            if !lock(&self.inner.status).leader {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let sent = tokio::select! {
                () = stop.cancelled() => return,
                sent = notifier.send(&note) => sent,
            };
            match sent {
                Ok(()) => {
                    let all_sent = lock(&self.inner.notes).settle(&note);
                    if all_sent {
                        if let Err(e) = self.inner.queue.ack_effect(note.id, self.now()).await {
                            tracing::warn!(task = %note.task, target = %target, error = %e, "notification sent, but not acknowledged in the store: it may be sent again");
                        }
                    }
                }
                Err(e) => self.notification_failed(&note, &e),
            }
        }
    }

    /// The oldest notification for `target` and when it may be tried.
    fn next_notification(&self, target: &str) -> Option<(Notification, Instant)> {
        lock(&self.inner.notes)
            .waiting
            .values()
            .find_map(|targets| targets.get(target))
            .map(|w| (w.note.clone(), w.retry_at))
    }

    /// Schedules `note` for another try after a failure, or drops it after
    /// [`GIVE_UP_AFTER`].
    fn notification_failed(&self, note: &Notification, e: &crate::Error) {
        let mut handed = lock(&self.inner.notes);
        let Some(w) = handed
            .waiting
            .get_mut(&note.id)
            .and_then(|targets| targets.get_mut(&note.target))
        else {
            return;
        };
        let now = Instant::now();
        w.failures += 1;
        let first = *w.first_failure.get_or_insert(now);
        if now.duration_since(first) >= GIVE_UP_AFTER {
            tracing::error!(task = %note.task, target = %note.target, event = %note.event, error = %e, "notification failed for a day; dropping it");
            if !handed.settle(note) {
                return;
            }
            let (queue, id, at) = (self.inner.queue.clone(), note.id, self.now());
            tokio::spawn(async move {
                let _ = queue.ack_effect(id, at).await;
            });
            return;
        }
        let wait = Duration::from_secs(1u64 << w.failures.min(9)).min(MAX_WAIT);
        w.retry_at = now + wait;
        tracing::warn!(task = %note.task, target = %note.target, event = %note.event, error = %e, retry_in = ?wait, "notification not sent; will retry (labels are not held back)");
    }
}
