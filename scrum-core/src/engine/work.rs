//! The work API: what workers call, over HTTP or in-process.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::{Orchestrator, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Assignment, Completion, Failure, HeartbeatReply, LeaseKind, LeaseToken, Task, TaskId, WorkerId,
};
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
        loop {
            // Register interest before looking, so a task queued between the look
            // and the wait still wakes us.
            let notified = self.inner.work_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let now = self.now();
            let blocked = {
                let mut reg = lock(&self.inner.registry);
                reg.seen(worker, address, now);
                reg.is_draining(worker)
                    || self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
            };
            if !blocked {
                if let Some(task) = self.inner.queue.claim(worker, lease, now).await? {
                    lock(&self.inner.registry).holds(worker, Some(task.id.clone()));
                    tracing::info!(task = %task.id, worker = %worker, attempt = task.attempts, "claimed");
                    return Assignment::from_claimed(
                        &task,
                        self.inner.queue.policy().heartbeat_interval(),
                    )
                    .map(Some);
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return Ok(None),
            }
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
        lock(&self.inner.registry).seen(worker, None, now);
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
        let result = self
            .inner
            .queue
            .complete(task, token, completion, self.now())
            .await;
        self.after_report(worker, &result, true);
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
        let result = self
            .inner
            .queue
            .fail(task, token, failure, self.now())
            .await;
        self.after_report(worker, &result, false);
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
        let result = self
            .inner
            .queue
            .release(task, token, reason.to_string(), self.now())
            .await;
        if result.is_ok() {
            lock(&self.inner.registry).holds(worker, None);
            self.inner.work_ready.notify_waiters();
        }
        self.forget_on_lease_lost(worker, &result);
        result
    }

    /// The task `worker` holds for issue `number` (in `repo`, when given): how reports
    /// from clients that send no lease token are matched.
    pub async fn held_task(
        &self,
        worker: &WorkerId,
        number: u64,
        repo: Option<&str>,
    ) -> Result<Task> {
        // Fast path: the task this worker last claimed here, read by id instead of
        // listing the queue (a list scans every task in some stores).
        let remembered = lock(&self.inner.registry).current_task(worker);
        if let Some(id) =
            remembered.filter(|id| id.number() == number && repo.is_none_or(|r| id.repo() == r))
        {
            if let Some(task) = self.inner.queue.get(&id).await? {
                if task.holder() == Some(worker) {
                    return Ok(task);
                }
            }
        }
        let filter = crate::queue::TaskFilter {
            worker: Some(worker.clone()),
            ..crate::queue::TaskFilter::live()
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

    fn after_report(&self, worker: &WorkerId, result: &Result<Task>, success: bool) {
        if result.is_ok() {
            lock(&self.inner.registry).finished(worker, success);
            // A failure may have cancelled or freed nothing claimable now, but a
            // waiting worker re-checks cheaply.
            if !success {
                self.inner.work_ready.notify_waiters();
            }
        }
        self.forget_on_lease_lost(worker, result);
    }

    fn forget_on_lease_lost<T>(&self, worker: &WorkerId, result: &Result<T>) {
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::LeaseLost)
        {
            lock(&self.inner.registry).holds(worker, None);
        }
    }

    /// The address `worker` last called from.
    pub fn worker_address(&self, worker: &WorkerId) -> Option<IpAddr> {
        lock(&self.inner.registry).address(worker)
    }

    /// The task `worker` last claimed from this orchestrator and has not reported on
    /// (as the registry remembers it; the queue has the final word).
    pub fn current_task(&self, worker: &WorkerId) -> Option<TaskId> {
        lock(&self.inner.registry).current_task(worker)
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
}
