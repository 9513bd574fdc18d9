//! The work API: what workers call, over HTTP or in-process.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::gate::ClaimCtx;
use super::{Orchestrator, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Assignment, Clarification, Completion, Failure, HeartbeatReply, LeaseKind, LeaseToken, Task,
    TaskId, Timestamp, WorkerId,
};
use crate::observe::AttemptEnd;
use crate::queue::TaskFilter;
use crate::worker::WorkSource;

impl Orchestrator {
    /// Hands `worker` the next task, waiting up to `wait` (capped at the configured
    /// maximum) for one to arrive. `None` when there is none, dispatch is paused, or
    /// the worker is draining. `address` is where the call came from, used to match
    /// the worker with a configured host.
    pub async fn next_work(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        lease: LeaseKind,
        wait: Duration,
    ) -> Result<Option<Assignment>> {
        let deadline = tokio::time::Instant::now() + wait.min(self.inner.config.max_wait);
        if lease == LeaseKind::RunTime {
            self.end_abandoned(worker).await?;
        }
        // In the line before looking, so a task queued during the look still wakes
        // this worker (see `waiters`).
        let mut place = self.inner.waiters.join();
        loop {
            let ctx = self.asking(worker, address).await?;
            if ctx.takes_no_work() {
                tokio::select! {
                    () = place.stand_aside() => continue,
                    () = tokio::time::sleep_until(deadline) => return Ok(None),
                }
            }
            if let Some(a) = self.claim(&ctx, lease).await? {
                place.served();
                return Ok(Some(a));
            }
            tokio::select! {
                () = place.woken() => {}
                () = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// What the claim gates see of `worker` asking now (the call counts as seen).
    async fn asking<'w>(
        &self,
        worker: &'w WorkerId,
        address: Option<IpAddr>,
    ) -> Result<ClaimCtx<'w>> {
        let now = self.now();
        Ok(ClaimCtx {
            worker: Some(worker),
            draining: self.seen(worker, address, now).await?,
            now,
        })
    }

    /// One claim for `ctx`'s worker through the claim gates: what they hold is
    /// passed over, and a claimed task a gate hands back is followed by another
    /// claim at once. `None` when nothing may be claimed now.
    async fn claim(&self, ctx: &ClaimCtx<'_>, lease: LeaseKind) -> Result<Option<Assignment>> {
        let (core, gates) = (&self.inner.core, &self.inner.features.gates);
        let Some(worker) = ctx.worker else {
            return Ok(None);
        };
        loop {
            let held = gates.held(core, ctx).await?;
            if !held.may_claim() {
                return Ok(None);
            }
            let hold = held.hold();
            let claimed = core.queue.claim_where(worker, lease, ctx.now, &hold);
            let Some(task) = claimed.await? else {
                return Ok(None);
            };
            if !gates.vet(core, &task).await? {
                continue;
            }
            lock(&self.inner.local).holds(worker, Some(task.id.clone()));
            self.observer().claimed(&task);
            tracing::info!(task = %task.id, worker = %worker, attempt = task.attempts(), "claimed");
            let heartbeat = core.queue.policy().heartbeat_interval();
            let mut a = Assignment::from_claimed(&task, heartbeat)?;
            gates.assign(core, &task, &mut a);
            return Ok(Some(a));
        }
    }

    /// Renews `worker`'s lease on `task`.
    pub async fn heartbeat(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        token: LeaseToken,
    ) -> Result<HeartbeatReply> {
        let now = self.now();
        self.seen(worker, None, now).await?;
        let reply = self.inner.queue.heartbeat(task, token, now).await;
        self.forget_on_lease_lost(worker, &reply);
        reply
    }

    /// Completes `task` (idempotent with the same token).
    pub async fn complete(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        token: LeaseToken,
        completion: Completion,
    ) -> Result<Task> {
        let now = self.now();
        let result = self
            .inner
            .queue
            .complete(task, token, completion, now)
            .await;
        if let Ok(done) = &result {
            self.inner.features.pulls.track_completed(done);
        }
        self.observe_end(&result, AttemptEnd::Completed, now);
        self.after_report(worker, &result, true, now).await;
        result
    }

    /// Reports that `worker`'s attempt on `task` failed.
    pub async fn fail(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        token: LeaseToken,
        failure: Failure,
    ) -> Result<Task> {
        let now = self.now();
        let result = self.inner.queue.fail(task, token, failure, now).await;
        self.observe_end(&result, AttemptEnd::Failed, now);
        self.after_report(worker, &result, false, now).await;
        result
    }

    /// Parks `task`: the issue needs a person's answers; its questions are posted
    /// and no attempt is spent.
    pub async fn clarify(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        token: LeaseToken,
        clarification: Clarification,
    ) -> Result<Task> {
        let now = self.now();
        let result = self
            .inner
            .queue
            .clarify(task, token, clarification, now)
            .await;
        // Neither a completion nor a failure in the worker's record: like a release.
        self.seen(worker, None, now).await?;
        if result.is_ok() {
            lock(&self.inner.local).holds(worker, None);
        }
        self.forget_on_lease_lost(worker, &result);
        result
    }

    /// Hands `task` back without spending an attempt.
    pub async fn release(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        token: LeaseToken,
        reason: &str,
    ) -> Result<Task> {
        let now = self.now();
        self.seen(worker, None, now).await?;
        let result = self
            .inner
            .queue
            .release(task, token, reason.to_string(), now)
            .await;
        self.observe_end(&result, AttemptEnd::Released, now);
        if let Ok(released) = &result {
            lock(&self.inner.local).holds(worker, None);
            // Its locks freed, tasks waiting for them may go too.
            if released.locks.is_empty() {
                self.inner.wake_for_one();
            } else {
                self.inner.wake();
            }
        }
        self.forget_on_lease_lost(worker, &result);
        result
    }

    /// The task and lease token a report is about. With a token the lease decides
    /// (a stale one fails with `LeaseLost` when the report is applied); without one
    /// (clients of the Python orchestrator's API) the report goes to the task the
    /// worker holds for that issue.
    ///
    /// A report naming the wrong worker is a confused client: it fails with
    /// `LeaseLost` rather than being applied to another worker's task.
    pub async fn resolve(&self, report: &ReportRef) -> Result<(TaskId, LeaseToken)> {
        let worker = &report.worker;
        match (report.token, &report.task) {
            (Some(token), Some(id)) => {
                // What this worker claimed here needs no read: the token is checked
                // when the report is applied.
                if self.current_task(worker).as_ref() != Some(id) {
                    let task = self.reads().task(id).await?;
                    if task.last_attempt().is_none_or(|a| &a.worker != worker) {
                        return Err(Error::new(
                            ErrorKind::LeaseLost,
                            format!("issue {id} is not leased to worker {worker}"),
                        ));
                    }
                }
                Ok((id.clone(), token))
            }
            (Some(token), None) => {
                let task = self.held_task(worker, report.number, None).await?;
                Ok((task.id, token))
            }
            (None, id) => {
                let repo = id.as_ref().map(TaskId::repo);
                match self.held_task(worker, report.number, repo).await {
                    Ok(task) => {
                        let token = task.last_attempt().map(|a| a.token).ok_or_else(|| {
                            Error::new(
                                ErrorKind::LeaseLost,
                                format!("issue {} holds no lease", task.id),
                            )
                        })?;
                        Ok((task.id, token))
                    }
                    Err(e) if e.kind() == ErrorKind::LeaseLost => match id {
                        // Unknown is not lost: say so.
                        Some(id) => Err(self.reads().task(id).await.err().unwrap_or(e)),
                        None => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The task `worker` holds for issue `number` (in `repo`, when given).
    async fn held_task(&self, worker: &WorkerId, number: u64, repo: Option<&str>) -> Result<Task> {
        // Fast path: the task this worker last claimed here, read by id instead of
        // listing the queue (a list scans every task in some stores).
        let remembered = self.current_task(worker);
        if let Some(id) =
            remembered.filter(|id| id.number() == number && repo.is_none_or(|r| id.repo() == r))
        {
            if let Some(task) = self.inner.queue.get(&id).await? {
                if task.holder() == Some(worker) {
                    return Ok(task);
                }
            }
        }
        let filter = TaskFilter {
            worker: Some(worker.clone()),
            ..TaskFilter::live()
        };
        let held = self.inner.queue.list(&filter).await?;
        let mut matching = held
            .into_iter()
            .filter(|t| t.id.number() == number && repo.is_none_or(|r| t.id.repo() == r));
        match (matching.next(), matching.next()) {
            (Some(t), None) => Ok(t),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "worker {worker} holds issue #{number} in several repositories; say which with `repository`"
            ))),
            (None, _) => Err(Error::new(
                ErrorKind::LeaseLost,
                format!("worker {worker} holds no task for issue #{number}"),
            )),
        }
    }

    /// A client without heartbeats works on one task at a time: when it asks for work
    /// while it still holds a run-time lease, it lost that task (it restarted, or
    /// never got our answer). End that attempt now, as a lapsed lease would, instead
    /// of holding the task for the whole maximum run time. A heartbeating client may
    /// hold several tasks on purpose, so heartbeat leases are left alone.
    async fn end_abandoned(&self, worker: &WorkerId) -> Result<()> {
        let Some(id) = self.current_task(worker) else {
            return Ok(());
        };
        let Some(task) = self.inner.queue.get(&id).await? else {
            return Ok(());
        };
        let Some(lease) = task
            .lease()
            .filter(|l| task.holder() == Some(worker) && l.kind == LeaseKind::RunTime)
        else {
            return Ok(());
        };
        tracing::warn!(task = %id, worker = %worker, "{ABANDONED}");
        let failure = Failure {
            reason: ABANDONED.to_string(),
            retryable: true,
            ..Failure::default()
        };
        match self.fail(worker, &id, lease.token, failure).await {
            // Someone else ended it meanwhile (the reaper, a late report): nothing to do.
            Err(e)
                if !matches!(
                    e.kind(),
                    ErrorKind::LeaseLost | ErrorKind::InvalidTransition
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Records a call from `worker` at `now` and says whether the worker is
    /// draining. A worker's first call here, or a call from a new address, is
    /// written at once; the calls of a known worker are written back in a batch
    /// (see [`super::local::SEEN_WRITE_EVERY`]), so a call costs no store call.
    async fn seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<bool> {
        let noted = {
            let mut local = lock(&self.inner.local);
            let noted = local.note(worker, address, now);
            noted.map(|draining| (draining, local.start_write_back()))
        };
        match noted {
            Some((draining, write_back)) => {
                if write_back {
                    tokio::spawn(self.clone().write_back_calls());
                }
                Ok(draining)
            }
            None => {
                let record = self.inner.queue.worker_seen(worker, address, now).await?;
                lock(&self.inner.local).wrote(&record, now);
                Ok(record.draining)
            }
        }
    }

    /// Writes the calls noted in memory back to the registry, one batch every
    /// [`super::local::SEEN_WRITE_EVERY`], until none is left; the records that
    /// come back refresh the draining flags (a drain set on another orchestrator).
    async fn write_back_calls(self) {
        loop {
            tokio::time::sleep(super::local::SEEN_WRITE_EVERY).await;
            let batch = lock(&self.inner.local).take_unwritten();
            if !batch.is_empty() {
                match self.inner.queue.workers_seen(&batch).await {
                    Ok(records) => {
                        let mut local = lock(&self.inner.local);
                        for record in &records {
                            local.wrote(record, record.last_seen.unwrap_or_default());
                        }
                    }
                    Err(e) => tracing::warn!(
                        workers = batch.len(),
                        error = %e,
                        "could not write the workers' calls back to the registry"
                    ),
                }
            }
            if lock(&self.inner.local).finish_write_back() {
                return;
            }
        }
    }

    /// Counts an accepted report in the store (which also marks the worker seen); a
    /// refused one is still a call. Neither fails the report: its outcome is stored.
    async fn after_report(
        &self,
        worker: &WorkerId,
        result: &Result<Task>,
        success: bool,
        now: Timestamp,
    ) {
        match result {
            Ok(_) => {
                // The count is written beside the answer, not before it: the report
                // is stored already, and waiting for a second commit would double
                // every report's latency on SQLite. A crash in the next moments can
                // lose one count, never the report.
                let (queue, w) = (self.inner.queue.clone(), worker.clone());
                tokio::spawn(async move {
                    if let Err(e) = queue.worker_finished(&w, success, now).await {
                        tracing::warn!(worker = %w, error = %e, "could not count the worker's report in the registry");
                    }
                });
                let mut local = lock(&self.inner.local);
                local.reported(worker, now);
                local.holds(worker, None);
            }
            Err(_) => {
                if let Err(e) = self.seen(worker, None, now).await {
                    tracing::warn!(worker = %worker, error = %e, "could not record the worker's call in the registry");
                }
            }
        }
        // A failure may have cancelled or freed nothing claimable now, but a waiting
        // worker re-checks cheaply; a task that held a lock freed its paths.
        if result
            .as_ref()
            .is_ok_and(|t| !success || !t.locks.is_empty())
        {
            self.inner.wake();
        }
        self.forget_on_lease_lost(worker, result);
    }

    /// Tells the observer of an attempt a report ended (or, repeated, ended before).
    fn observe_end(&self, result: &Result<Task>, end: AttemptEnd, now: Timestamp) {
        if let Ok(task) = result {
            self.observer().attempt_ended(task, end, now);
        }
    }

    fn forget_on_lease_lost<T>(&self, worker: &WorkerId, result: &Result<T>) {
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::LeaseLost)
        {
            lock(&self.inner.local).holds(worker, None);
        }
    }

    /// The task `worker` last claimed from this orchestrator and has not reported on
    /// (as the engine remembers it; the queue has the final word).
    fn current_task(&self, worker: &WorkerId) -> Option<TaskId> {
        lock(&self.inner.local).current_task(worker)
    }
}

/// The reason recorded when a client without heartbeats asks for work while still
/// holding a task.
pub const ABANDONED: &str = "worker lost: it asked for new work while still holding this task";

/// How a worker's report names its task: always by worker and issue number; by
/// repository and lease token too when the client sends them (clients of the
/// Python orchestrator's API send neither).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRef {
    /// Who reports.
    pub worker: WorkerId,
    /// The issue number.
    pub number: u64,
    /// The task, when the report names its repository.
    pub task: Option<TaskId>,
    /// The lease token, when the client sent one.
    pub token: Option<LeaseToken>,
}

impl ReportRef {
    /// A report's reference from its parts as a client sends them; fails on a
    /// malformed worker id, repository, issue number or token.
    pub fn new(
        worker: &str,
        number: u64,
        repository: Option<&str>,
        token: Option<&str>,
    ) -> Result<ReportRef> {
        let task = repository.map(|r| TaskId::new(r, number)).transpose()?;
        if number == 0 {
            return Err(Error::invalid("issue numbers start at 1"));
        }
        Ok(ReportRef {
            worker: WorkerId::new(worker)?,
            number,
            task,
            token: token.map(str::parse).transpose()?,
        })
    }
}

/// In-process workers talk to the engine directly.
#[async_trait]
impl WorkSource for Orchestrator {
    async fn next(&self, worker: &WorkerId, wait: Duration) -> Result<Option<Assignment>> {
        self.next_work(worker, None, LeaseKind::Heartbeat, wait)
            .await
    }

    async fn heartbeat(&self, worker: &WorkerId, a: &Assignment) -> Result<HeartbeatReply> {
        Orchestrator::heartbeat(self, worker, &a.task, a.lease_token).await
    }

    async fn complete(
        &self,
        worker: &WorkerId,
        a: &Assignment,
        completion: Completion,
    ) -> Result<()> {
        Orchestrator::complete(self, worker, &a.task, a.lease_token, completion)
            .await
            .map(|_| ())
    }

    async fn fail(&self, worker: &WorkerId, a: &Assignment, failure: Failure) -> Result<()> {
        Orchestrator::fail(self, worker, &a.task, a.lease_token, failure)
            .await
            .map(|_| ())
    }

    async fn release(&self, worker: &WorkerId, a: &Assignment, reason: &str) -> Result<()> {
        Orchestrator::release(self, worker, &a.task, a.lease_token, reason)
            .await
            .map(|_| ())
    }

    async fn clarify(
        &self,
        worker: &WorkerId,
        a: &Assignment,
        clarification: Clarification,
    ) -> Result<()> {
        Orchestrator::clarify(self, worker, &a.task, a.lease_token, clarification)
            .await
            .map(|_| ())
    }
}
