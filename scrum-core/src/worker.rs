//! The worker loop: ask for work, run it while sending heartbeats, report the outcome.
//!
//! It is generic over [`WorkSource`] (the engine in-process, or the HTTP client) and
//! [`WorkflowRunner`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, Result};
use crate::model::{
    Assignment, Clarification, Completion, Failure, HeartbeatReply, TaskId, WorkerId,
};
use crate::runner::{RunOutcome, WorkflowRunner};

/// Where a worker gets work and reports on it: the engine in-process, or the
/// orchestrator's HTTP API.
///
/// # Contract
///
/// Reports carry the assignment's lease token; a stale one fails with `LeaseLost`.
/// Completing twice with the same token is safe, so a report that timed out may be
/// sent again.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WorkSource: Send + Sync + 'static {
    /// The next assignment, waiting up to `wait` for one.
    ///
    /// # Behavior
    /// - With nothing ready it answers `None`, waiting at most `wait` (a zero `wait`
    ///   does not wait).
    /// - A ready task comes as an assignment carrying the title, body and
    ///   labels, its branch name, a lease token, attempt 1 of the run's attempts, and
    ///   a heartbeat interval shorter than the time left on the lease.
    /// - A task is handed to one worker at a time: while it is held, `next` hands it
    ///   to no one else.
    async fn next(&self, worker: &WorkerId, wait: Duration) -> Result<Option<Assignment>>;
    /// Renews the lease; the reply says whether to stop.
    ///
    /// # Behavior
    /// - With the live assignment it renews the lease to one lease period from now
    ///   (so `lease_expires_at` grows as time passes) and answers `cancel: false`.
    /// - On a task being cancelled (its issue was closed) it answers `cancel: true`.
    /// - With a stale assignment (the task was handed back and handed out again) it
    ///   fails with `LeaseLost`, and the new assignment's heartbeat still succeeds.
    /// - For a task the orchestrator does not know it fails with `NotFound`.
    async fn heartbeat(&self, worker: &WorkerId, assignment: &Assignment)
    -> Result<HeartbeatReply>;
    /// Reports success.
    ///
    /// # Behavior
    /// - The task is done: `next` does not hand it out again.
    /// - Completing twice with the same assignment succeeds both times and takes
    ///   effect once.
    /// - With a stale assignment (another worker's attempt completed the task) it
    ///   fails with `LeaseLost` and changes nothing.
    async fn complete(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        completion: Completion,
    ) -> Result<()>;
    /// Reports a failed attempt.
    ///
    /// # Behavior
    /// - A retryable failure with attempts left puts the task back: a later `next`
    ///   hands it out again as attempt 2, once its backoff passed.
    /// - A non-retryable failure, or a failure of the last attempt, ends the task:
    ///   `next` does not hand it out again.
    /// - Failing twice with the same assignment succeeds both times and spends one
    ///   attempt.
    /// - With a stale assignment (another worker holds the task now) it fails with
    ///   `LeaseLost`, and the holder keeps its lease.
    async fn fail(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        failure: Failure,
    ) -> Result<()>;
    /// Hands the task back without spending an attempt.
    ///
    /// # Behavior
    /// - The task is back at once: `next` hands it out again with the same attempt
    ///   number and a new lease token.
    /// - Releasing twice with the same assignment succeeds both times.
    /// - Releasing a task being cancelled ends it: `next` does not hand it out again.
    /// - With a stale assignment (another worker holds the task now) it fails with
    ///   `LeaseLost`, and the holder keeps its lease.
    async fn release(&self, worker: &WorkerId, assignment: &Assignment, reason: &str)
    -> Result<()>;
    /// Reports that the issue needs a person's answers: the orchestrator posts the
    /// questions and parks the task without spending an attempt.
    ///
    /// # Behavior
    /// - The task is parked: `next` does not hand it out again (until the issue is
    ///   made ready again, a new run).
    /// - Parking twice with the same assignment succeeds both times.
    /// - With a stale assignment it fails with `LeaseLost`.
    ///
    /// A source that cannot park reports a failure that no retry fixes, with the
    /// questions as its reason (the default).
    async fn clarify(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        clarification: Clarification,
    ) -> Result<()> {
        let failure = Failure {
            reason: format!(
                "the issue needs clarification: {}",
                clarification.questions.join(" ")
            ),
            retryable: false,
            cost_usd: clarification.cost_usd,
            tokens: clarification.tokens,
        };
        self.fail(worker, assignment, failure).await
    }
}

/// A deadline that never comes (a year), for a timer armed later.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a task handed to this worker ended, from the worker's side.
#[derive(Clone, Debug, PartialEq)]
pub enum Handled {
    /// The outcome was reported.
    Reported(RunOutcome),
    /// The lease was lost mid-run (the orchestrator gave the task to someone else, or
    /// cancelled it past its grace period); nothing was reported.
    LeaseLost,
}

/// One worker: claims a task, runs it, heartbeats meanwhile, reports, repeats.
pub struct WorkerLoop {
    id: WorkerId,
    source: Arc<dyn WorkSource>,
    runner: Arc<dyn WorkflowRunner>,
    poll_interval: Duration,
    wait: Duration,
    shutdown_grace: Duration,
    /// How long a report is retried through transient errors.
    report_patience: Duration,
    /// Leave after this long without work (scale-in by idle workers leaving).
    exit_when_idle: Option<Duration>,
}

impl WorkerLoop {
    /// A worker named `id`. Defaults: 30 s between polls when idle
    /// (see [`WorkerLoop::poll_interval`]), long polls of 25 s, a 5 min grace on shutdown.
    pub fn new(
        id: WorkerId,
        source: Arc<dyn WorkSource>,
        runner: Arc<dyn WorkflowRunner>,
    ) -> WorkerLoop {
        WorkerLoop {
            id,
            source,
            runner,
            poll_interval: Duration::from_secs(30),
            wait: Duration::from_secs(25),
            shutdown_grace: Duration::from_secs(300),
            report_patience: Duration::from_secs(3600),
            exit_when_idle: None,
        }
    }

    /// Stops [`WorkerLoop::run`] once no work came for `d` (counted from start, or
    /// from the last task's end): an autoscaler scales in by idle workers leaving,
    /// never by stopping a busy one. A task in hand is always finished first.
    pub fn exit_when_idle(mut self, d: Duration) -> Self {
        self.exit_when_idle = Some(d);
        self
    }

    /// The pause after an empty or failed poll.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// How long one request for work waits for a task (long poll; zero to not wait).
    pub fn wait(mut self, d: Duration) -> Self {
        self.wait = d;
        self
    }

    /// How long a running task may go on after shutdown is asked before it is
    /// cancelled and released.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// The worker's id.
    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// Works until `shutdown` fires: a task running then gets the grace period to
    /// finish, then is cancelled and released.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut idle_since = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = self.source.next(&self.id, self.wait) => next,
            };
            match next {
                Ok(Some(a)) => {
                    self.handle(a, &shutdown).await;
                    idle_since = tokio::time::Instant::now();
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "could not get work"),
            }
            if let Some(limit) = self.exit_when_idle {
                if idle_since.elapsed() >= limit {
                    tracing::info!(worker = %self.id, idle_secs = limit.as_secs(), "no work for the idle limit: leaving (EXIT_WHEN_IDLE)");
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Claims one task (waiting up to the long-poll time), runs it and reports it.
    /// `None` when there was no work.
    pub async fn run_one(&self) -> Result<Option<(TaskId, Handled)>> {
        let Some(a) = self.source.next(&self.id, self.wait).await? else {
            return Ok(None);
        };
        let task = a.task.clone();
        Ok(Some((
            task,
            self.handle(a, &CancellationToken::new()).await,
        )))
    }

    /// Runs an assignment with heartbeats and reports how it ended.
    pub async fn handle(&self, a: Assignment, shutdown: &CancellationToken) -> Handled {
        if !a.text_matches() {
            // Not the approved text: run nothing on it.
            tracing::error!(worker = %self.id, task = %a.task, "the issue text does not match the approved digest; not running it");
            let outcome = RunOutcome::Failure(Failure {
                reason: TEXT_MISMATCH.to_string(),
                retryable: true,
                ..Failure::default()
            });
            return match self.report(&a, &outcome).await {
                Ok(()) => Handled::Reported(outcome),
                Err(_) => Handled::LeaseLost,
            };
        }
        let cancel = CancellationToken::new();
        let run = self.runner.run(&a, cancel.clone());
        tokio::pin!(run);
        // Heartbeats run beside the run, not between its polls: a slow heartbeat
        // never delays noticing that the run ended.
        let heartbeats = self.heartbeats(&a, &cancel);
        tokio::pin!(heartbeats);
        let grace = tokio::time::sleep(FAR_FUTURE);
        tokio::pin!(grace);
        let mut shutting_down = false;
        let mut lost = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                () = &mut heartbeats, if !lost => {
                    lost = true;
                    cancel.cancel();
                }
                () = shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    tracing::info!(worker = %self.id, task = %a.task, grace = ?self.shutdown_grace, "shutting down: finishing the task within the grace period");
                    grace.as_mut().reset(tokio::time::Instant::now() + self.shutdown_grace);
                }
                () = &mut grace, if shutting_down && !cancel.is_cancelled() => cancel.cancel(),
            }
        };
        if lost {
            return Handled::LeaseLost;
        }
        match self.report(&a, &outcome).await {
            Ok(()) => Handled::Reported(outcome),
            Err(_) => Handled::LeaseLost,
        }
    }

    /// Sends a heartbeat every interval; cancels the run when the orchestrator says
    /// so. Returns only when the lease is lost.
    async fn heartbeats(&self, a: &Assignment, cancel: &CancellationToken) {
        let every = a.heartbeat_interval.max(Duration::from_millis(10));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            beat.tick().await;
            match self.source.heartbeat(&self.id, a).await {
                Ok(reply) if reply.cancel && !cancel.is_cancelled() => {
                    tracing::info!(worker = %self.id, task = %a.task, "task cancelled by the orchestrator");
                    cancel.cancel();
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::LeaseLost || e.kind() == ErrorKind::NotFound => {
                    tracing::warn!(worker = %self.id, task = %a.task, "lease lost; stopping the run");
                    return;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.id, task = %a.task, error = %e, "heartbeat failed; will retry")
                }
            }
        }
    }

    /// Sends the outcome, retrying transient errors with backoff for up to an hour
    /// (safe: reports are idempotent per lease token). Retries are never further
    /// apart than the heartbeat interval: an orchestrator that restarts after an
    /// outage gives held leases one lease period to report in, and a report must
    /// arrive within it.
    async fn report(&self, a: &Assignment, outcome: &RunOutcome) -> Result<()> {
        let give_up = tokio::time::Instant::now() + self.report_patience;
        let widest = a
            .heartbeat_interval
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        let mut delay = Duration::from_millis(500).min(widest);
        loop {
            let sent = match outcome {
                RunOutcome::Success(c) => self.source.complete(&self.id, a, c.clone()).await,
                RunOutcome::Failure(f) => self.source.fail(&self.id, a, f.clone()).await,
                RunOutcome::Release(r) => self.source.release(&self.id, a, r).await,
                RunOutcome::Clarify(c) => self.source.clarify(&self.id, a, c.clone()).await,
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < give_up => {
                    tracing::warn!(worker = %self.id, task = %a.task, error = %e, "report failed; retrying");
                    tokio::time::sleep(e.retry_after().unwrap_or(delay).min(widest)).await;
                    delay = (delay * 2).min(widest);
                }
                Err(e) => {
                    tracing::error!(worker = %self.id, task = %a.task, error = %e, "report not accepted");
                    return Err(e);
                }
            }
        }
    }
}

/// The failure a worker reports when an assignment's text does not match its digest.
pub const TEXT_MISMATCH: &str =
    "the issue text received does not match the approved text's digest: nothing was run";

impl std::fmt::Debug for WorkerLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLoop")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
