//! The scaling signal an autoscaler reads (`GET /scaling`; KEDA's metrics-api
//! scaler, a systemd timer): how many tasks are ready, running and blocked, how
//! many workers are idle and busy, and how many workers the queue wants:
//! `min(MAX_WORKERS, MIN_IDLE_WORKERS + ready + in_progress)`. Scale-in is left to
//! the workers: `scrum-worker --exit-when-idle SECS` leaves when idle, never busy.

use serde::{Deserialize, Serialize};

use super::Reads;
use super::registry::{WorkerInfo, WorkerStatus};
use crate::error::Result;
use crate::model::{Task, TaskState};
use crate::queue::TaskFilter;

/// The settings of the signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingSettings {
    /// The most workers ever wanted (`MAX_WORKERS`, default 10).
    pub max_workers: u64,
    /// Idle workers kept beyond what the queue needs (`MIN_IDLE_WORKERS`, default 0).
    pub min_idle_workers: u64,
}

impl Default for ScalingSettings {
    fn default() -> ScalingSettings {
        ScalingSettings {
            max_workers: 10,
            min_idle_workers: 0,
        }
    }
}

/// What `GET /scaling` answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    /// Pending tasks a worker could take now or after their backoff.
    pub ready: u64,
    /// Tasks held by workers.
    pub in_progress: u64,
    /// Pending tasks nothing may take now: blocked by dependencies, held for review
    /// of an edit, waiting for a file lock, or in a repository held back (review
    /// gating, budget, refused writes).
    pub blocked: u64,
    /// Workers seen recently holding nothing.
    pub idle_workers: u64,
    /// Workers holding a task.
    pub busy_workers: u64,
    /// `min(max_workers, min_idle_workers + ready + in_progress)`.
    pub desired_workers: u64,
}

/// The desired worker count for these figures.
///
/// ```
/// use scrum_core::engine::{desired_workers, ScalingSettings};
/// let s = ScalingSettings { max_workers: 10, min_idle_workers: 1 };
/// assert_eq!(desired_workers(&s, 3, 2), 6);
/// assert_eq!(desired_workers(&s, 30, 2), 10);
/// ```
pub fn desired_workers(s: &ScalingSettings, ready: u64, in_progress: u64) -> u64 {
    s.max_workers.min(
        s.min_idle_workers
            .saturating_add(ready)
            .saturating_add(in_progress),
    )
}

impl Reads<'_> {
    /// The scaling signal (see the module docs).
    pub async fn scaling(self) -> Result<Scaling> {
        let live = self.inner.queue.list(&TaskFilter::live()).await?;
        let workers = self.workers().await?;
        self.scaling_of(&live, &workers).await
    }

    /// The scaling signal for `live` tasks and `workers` already read (the metrics
    /// scrape reads both for its own gauges).
    pub async fn scaling_of(self, live: &[Task], workers: &[WorkerInfo]) -> Result<Scaling> {
        let held = self.why(live).await?;
        let mut out = Scaling::default();
        for (t, why) in live.iter().zip(&held) {
            match t.state() {
                TaskState::InProgress => out.in_progress += 1,
                _ if t.stop_requested() => {}
                _ if why.is_some() => out.blocked += 1,
                _ => out.ready += 1,
            }
        }
        for w in workers {
            match w.status {
                WorkerStatus::Idle => out.idle_workers += 1,
                WorkerStatus::Busy => out.busy_workers += 1,
                _ => {}
            }
        }
        out.desired_workers =
            desired_workers(&self.inner.config.scaling, out.ready, out.in_progress);
        Ok(out)
    }
}
