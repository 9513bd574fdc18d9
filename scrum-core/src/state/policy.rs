//! What a queue applies to every step: attempts, leases, backoff and budgets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::NotifyEvent;
use crate::model::Timestamp;

/// Retry and lease settings a queue applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Attempts a run may spend (default 2).
    pub max_attempts: u32,
    /// How long a lease lasts without a heartbeat (default 60 s).
    pub lease: Duration,
    /// The longest a task may be held, heartbeats or not (default 3 h).
    pub max_run: Duration,
    /// How long a worker has to stop after it is told its task was cancelled (default 60 s).
    pub cancel_grace: Duration,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// The most one run of an issue may cost, in US dollars (`ISSUE_BUDGET_USD`;
    /// default none): a failed attempt that brings the run's reported cost to it
    /// ends the run, with no further attempt.
    pub issue_budget_usd: Option<f64>,
    /// The events notifications are recorded for (default none: no target is
    /// configured): a step with one of them records one `Notify` effect, which the
    /// engine sends to every target ([`super::notify`]).
    pub notify: Vec<NotifyEvent>,
    /// How issues declare the paths they lock ([`crate::locks`]; default: no areas,
    /// the usual lockfiles and CI files as barriers).
    pub locks: crate::locks::LockRules,
    /// The most follow-up runs per pull request (`FOLLOW_UP_ROUNDS`, default 3):
    /// past it, a follow-up is not run and the pull request is left for people
    /// ([`crate::follow_up`]).
    pub follow_up_rounds: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_attempts: 2,
            lease: Duration::from_secs(60),
            max_run: Duration::from_secs(3 * 3600),
            cancel_grace: Duration::from_secs(60),
            backoff: Backoff::default(),
            issue_budget_usd: None,
            notify: Vec::new(),
            locks: crate::locks::LockRules::default(),
            follow_up_rounds: 3,
        }
    }
}

impl Policy {
    /// The interval at which workers should send heartbeats: a third of the lease,
    /// so two lost heartbeats do not lose the task.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(1))
    }
}

/// Exponential backoff with "equal jitter": the delay before attempt `n + 1` is
/// `min(cap, initial * 2^(n-1))`, of which the upper half is random.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The delay after the first failed attempt, before jitter.
    pub initial: Duration,
    /// The largest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(30),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay after `failed_attempts` failures, for a `jitter` in `[0, 1)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use scrum_core::state::Backoff;
    /// let b = Backoff { initial: Duration::from_secs(10), cap: Duration::from_secs(60) };
    /// assert_eq!(b.delay(1, 0.0), Duration::from_secs(5));
    /// assert_eq!(b.delay(2, 0.5), Duration::from_secs(15));
    /// assert_eq!(b.delay(10, 0.0), Duration::from_secs(30));
    /// ```
    pub fn delay(&self, failed_attempts: u32, jitter: f64) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(30);
        let full = self.initial.saturating_mul(1 << exp).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Where the randomness of backoff jitter comes from: the system by default, a fixed
/// sequence in tests.
#[derive(Clone)]
pub struct Jitter(Arc<dyn Fn() -> f64 + Send + Sync>);

impl Jitter {
    /// Uniform in `[0, 1)` from a fast non-cryptographic generator.
    pub fn random() -> Jitter {
        Jitter(Arc::new(fastrand::f64))
    }

    /// Always `value`: deterministic backoff for tests.
    pub fn fixed(value: f64) -> Jitter {
        Jitter(Arc::new(move || value))
    }

    /// A value in `[0, 1)`.
    pub fn sample(&self) -> f64 {
        (self.0)()
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jitter")
    }
}

/// The inputs of one step besides the task and the event.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The current time.
    pub now: Timestamp,
    /// The queue's policy.
    pub policy: &'a Policy,
    /// A jitter sample in `[0, 1)` for a backoff this step may schedule.
    pub jitter: f64,
}

impl<'a> Ctx<'a> {
    /// The context of a step at `now` under `policy`, with a fresh sample from
    /// `jitter`: what every queue builds before each transition.
    pub fn sample(now: Timestamp, policy: &'a Policy, jitter: &Jitter) -> Ctx<'a> {
        Ctx {
            now,
            policy,
            jitter: jitter.sample(),
        }
    }
}
