//! The outbox's rules: what a failed attempt to apply an effect means for it. Pure,
//! like the task transitions: the engine asks, the store records the answer.

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::model::Timestamp;
use crate::queue::{EffectFailure, OutboxEntry};
use crate::state::Backoff;

/// How the outbox retries a failed effect.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectRetry {
    /// The delay between attempts: exponential with jitter, capped (default 2 s
    /// doubling up to 10 min).
    pub backoff: Backoff,
    /// How many refusals a retry cannot fix (403, 401, 422) an effect gets before it
    /// is set aside (default 3). A 404 or 410 sets it aside at once.
    pub refusals: u32,
}

impl Default for EffectRetry {
    fn default() -> EffectRetry {
        EffectRetry {
            backoff: Backoff {
                initial: Duration::from_secs(2),
                cap: Duration::from_secs(600),
            },
            refusals: 3,
        }
    }
}

/// How a failure to apply an effect is read, once: by its error's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// A passing fault (5xx, timeout, lost connection): back off and retry.
    Transient,
    /// A rate limit: retry when it resets; every write to that tracker waits.
    RateLimited,
    /// Refused for lack of access (403 that is not a rate limit, 401): retry a few
    /// times, then set aside. The repository is degraded meanwhile.
    Refused,
    /// Malformed for the tracker (422): retry a few times, then set aside.
    Rejected,
    /// The issue or repository is gone (404, 410): set aside at once.
    Gone,
}

impl FailureClass {
    /// The class of `error`.
    pub fn of(error: &Error) -> FailureClass {
        match error.kind() {
            ErrorKind::RateLimited => FailureClass::RateLimited,
            ErrorKind::Forbidden | ErrorKind::Unauthorized => FailureClass::Refused,
            ErrorKind::Invalid | ErrorKind::Conflict => FailureClass::Rejected,
            ErrorKind::NotFound => FailureClass::Gone,
            _ => FailureClass::Transient,
        }
    }

    /// Whether the failure concerns the tracker as a whole (a rate limit, which is
    /// the token's), so the rest of a dispatch round would fail the same way. A
    /// passing fault or a refusal takes only its repository out of the round.
    pub fn ends_round(self) -> bool {
        matches!(self, FailureClass::RateLimited)
    }
}

/// What `error`, a failed attempt to apply `entry` at `now`, means for it: when it
/// is tried again, or that it is set aside. `jitter` is in `[0, 1)`.
pub fn effect_failure(
    entry: &OutboxEntry,
    error: &Error,
    now: Timestamp,
    retry: &EffectRetry,
    jitter: f64,
) -> EffectFailure {
    let class = FailureClass::of(error);
    let failures = entry.failures + 1;
    let backoff = retry.backoff.delay(failures, jitter);
    let retry_at = match class {
        FailureClass::Gone => None,
        FailureClass::Refused | FailureClass::Rejected if failures >= retry.refusals => None,
        FailureClass::RateLimited => Some(now.plus(error.retry_after().unwrap_or(backoff))),
        _ => Some(now.plus(backoff)),
    };
    EffectFailure {
        error: error.message().to_string(),
        refused: class == FailureClass::Refused,
        retry_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Effect, EffectKind};

    fn entry(failures: u32) -> OutboxEntry {
        let effect = Effect {
            task: "acme/widgets#1".parse().unwrap(),
            run: 1,
            attempt: 0,
            kind: EffectKind::Queued,
        };
        OutboxEntry {
            failures,
            ..OutboxEntry::new(1, effect)
        }
    }

    #[test]
    fn failures_back_off_and_refusals_are_set_aside() {
        let (now, retry) = (Timestamp(1_000_000), EffectRetry::default());
        let outage = Error::unavailable("502");
        let first = effect_failure(&entry(0), &outage, now, &retry, 0.0);
        let later = effect_failure(&entry(5), &outage, now, &retry, 0.0);
        assert!(
            first.retry_at.unwrap() < later.retry_at.unwrap(),
            "exponential"
        );
        assert!(!first.refused);
        let capped = effect_failure(&entry(40), &outage, now, &retry, 0.99);
        assert!(capped.retry_at.unwrap() <= now.plus(retry.backoff.cap));

        let refusal = Error::new(ErrorKind::Forbidden, "403");
        let tried = effect_failure(&entry(0), &refusal, now, &retry, 0.0);
        assert!(
            tried.refused && tried.retry_at.is_some(),
            "tried again first"
        );
        let last = effect_failure(&entry(retry.refusals - 1), &refusal, now, &retry, 0.0);
        assert_eq!(
            last.retry_at, None,
            "set aside after {} refusals",
            retry.refusals
        );

        let gone = effect_failure(&entry(0), &Error::not_found("404"), now, &retry, 0.0);
        assert_eq!(gone.retry_at, None, "a 404 is set aside at once");
        assert!(
            !gone.refused,
            "a missing issue does not degrade its repository"
        );

        let limited = Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(42));
        let waits = effect_failure(&entry(0), &limited, now, &retry, 0.0);
        assert_eq!(waits.retry_at, Some(now.plus(Duration::from_secs(42))));
        assert!(FailureClass::of(&limited).ends_round());
        assert!(!FailureClass::of(&refusal).ends_round());
    }
}
