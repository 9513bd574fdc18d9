//! [`Observer`]: what the engine and the backends report as it happens, for
//! metrics. The core stays free of any metrics crate: the HTTP API implements
//! this trait with Prometheus metrics (`scrum_http`'s `/metrics`) and hands it to
//! the engine ([`crate::engine::Orchestrator::observe`]) and to the tracker's client.
//!
//! Every method has an empty default, so an observer implements only what it
//! counts; none may block (they run on the request path).

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Task, Timestamp};

/// How one attempt (one worker's hold on a task) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptEnd {
    /// The worker reported success.
    Completed,
    /// The worker reported a failure.
    Failed,
    /// The worker handed the task back without spending the attempt.
    Released,
    /// The lease lapsed: the worker was lost.
    Lost,
}

impl AttemptEnd {
    /// Every way an attempt ends.
    pub const ALL: [AttemptEnd; 4] = [
        AttemptEnd::Completed,
        AttemptEnd::Failed,
        AttemptEnd::Released,
        AttemptEnd::Lost,
    ];

    /// The snake_case name (a metric label value).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptEnd::Completed => "completed",
            AttemptEnd::Failed => "failed",
            AttemptEnd::Released => "released",
            AttemptEnd::Lost => "lost",
        }
    }
}

/// Receives what happened, as it happened.
///
/// # Behavior
/// - `claimed` is called once per claim, with the task as stored after it (In
///   Progress, its new lease's `claimed_at` is the claim time).
/// - `attempt_ended` is called once per attempt that ends, with the task as stored
///   after it (its `lease` is the lease that ended). A repeated report, which
///   changes nothing, is passed on again: the lease's token is the attempt's
///   identity, so an observer that counts tells the two apart by it.
/// - `source_request` is called once per request the tracker's client sends
///   (retries are requests of their own), with a short fixed `kind` and the
///   answer's HTTP status, or `timeout` or `error` when none came.
/// - `source_points` is called once per answer that cost rate-limit points, with
///   the budget it cost them from.
pub trait Observer: Send + Sync + 'static {
    /// A worker claimed `task`.
    fn claimed(&self, _task: &Task) {}

    /// An attempt on `task` ended at `now` as `end`.
    fn attempt_ended(&self, _task: &Task, _end: AttemptEnd, _now: Timestamp) {}

    /// The tracker answered one request (`kind`, `status`) after `elapsed`.
    fn source_request(&self, _kind: &'static str, _status: &str, _elapsed: Duration) {}

    /// One answer of the tracker cost `points` of its rate-limit `budget` (on
    /// GitHub `rest` or `graphql`, which it counts apart).
    fn source_points(&self, _budget: &'static str, _points: u64) {}
    /// A completed task's pull request got a follow-up run for `cause`, or, with
    /// `exhausted`, none because its rounds were used up.
    fn follow_up(&self, _task: &Task, _cause: crate::follow_up::FollowUpCause, _exhausted: bool) {}
}

/// The observer that counts nothing: the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// A slot for an observer set after construction (the engine is built before the
/// HTTP API that observes it). Cheap to read: one uncontended lock and a clone.
pub struct ObserverSlot(std::sync::RwLock<Arc<dyn Observer>>);

impl ObserverSlot {
    /// A slot holding [`NoObserver`].
    pub fn new() -> ObserverSlot {
        ObserverSlot(std::sync::RwLock::new(Arc::new(NoObserver)))
    }

    /// Replaces the observer.
    pub fn set(&self, observer: Arc<dyn Observer>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = observer;
    }

    /// The current observer.
    pub fn get(&self) -> Arc<dyn Observer> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Default for ObserverSlot {
    fn default() -> ObserverSlot {
        ObserverSlot::new()
    }
}

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObserverSlot")
    }
}
