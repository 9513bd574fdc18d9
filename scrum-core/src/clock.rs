//! Time: the engine reads it through [`Clock`], so tests can pause and advance it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::Timestamp;

/// Where the engine reads the time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// Wall-clock time anchored once, then advanced by tokio's clock.
///
/// Under `#[tokio::test(start_paused = true)]` it moves only when tokio's time does,
/// so lease expiry and backoff can be tested without sleeping; in production it is
/// the system time.
#[derive(Clone, Debug)]
pub struct TokioClock {
    anchor: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the system time now, then following tokio's clock.
    pub fn new() -> TokioClock {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        TokioClock::starting_at(Timestamp(ms))
    }

    /// A clock that reads `anchor` now, then follows tokio's clock.
    pub fn starting_at(anchor: Timestamp) -> TokioClock {
        TokioClock {
            anchor,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.anchor.plus(self.start.elapsed())
    }
}
