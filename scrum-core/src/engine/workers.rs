//! The engine's side of the worker registry: what `/workers` shows, operators'
//! drains, the leader's host probes and forgetting, and worker logs. The records
//! live in the store ([`crate::WorkerRegistry`]); see the [module docs](super).

use std::sync::Arc;

use super::{Operator, Orchestrator, Reads, WorkerInfo, lock, registry};
use crate::error::{Error, Result};
use crate::model::{TaskState, Timestamp, WorkerId};
use crate::queue::TaskFilter;
use crate::workers::{AgentSandbox, HostReport};

impl Orchestrator {
    /// Probes every configured host, `probe_concurrency` at a time, and stores the
    /// reports, so every orchestrator on the store shows them.
    pub async fn probe_once(&self) {
        let Some(probe) = self.inner.probe.clone() else {
            return;
        };
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.inner.config.probe_concurrency.max(1),
        ));
        let mut set = tokio::task::JoinSet::new();
        for host in self.inner.config.worker_hosts.clone() {
            let (probe, limit) = (probe.clone(), limit.clone());
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let report = probe.probe(&host).await;
                (host, report)
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok((host, report)) = done {
                let report = HostReport {
                    host,
                    health: report.health,
                    reason: report.reason,
                    at: self.now(),
                };
                if let Err(e) = self.inner.queue.record_probe(report).await {
                    tracing::warn!(error = %e, "could not store a host's probe report");
                }
            }
        }
    }

    /// Records the sandbox `worker` says its agents run in (it says so when it
    /// asks for work), unless the store has it so as this orchestrator's last
    /// write for the worker found it: a worker saying it on every call costs a
    /// write only when it changed, and a change written through another
    /// orchestrator on the store is seen here within a second.
    pub async fn record_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        if lock(&self.inner.local).has_sandbox(worker, sandbox) {
            return Ok(());
        }
        self.inner.queue.set_sandbox(worker, sandbox).await?;
        lock(&self.inner.local).set_sandbox(worker, sandbox);
        Ok(())
    }

    /// Drops the workers unseen for [`super::EngineConfig::worker_forget_after`]
    /// that hold nothing (the leader's reap round). A store error is logged: the
    /// next round tries again.
    pub(super) async fn forget_workers(&self, now: Timestamp) {
        let forget_after = i64::try_from(self.inner.config.worker_forget_after.as_millis());
        let cutoff = Timestamp(now.0.saturating_sub(forget_after.unwrap_or(i64::MAX)));
        match self.inner.queue.forget_workers(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(workers = n, "forgot workers unseen for a long time"),
            Err(e) => tracing::warn!(error = %e, "could not forget long-unseen workers"),
        }
        lock(&self.inner.local).forget_before(cutoff);
    }
}

impl Reads<'_> {
    /// Every worker the store knows and every configured host, with the health the
    /// leader's last probe found, as any orchestrator on the store sees them.
    pub async fn workers(self) -> Result<Vec<WorkerInfo>> {
        let q = &self.inner.queue;
        let records = q.workers().await?;
        let reports = q.probes().await?;
        let in_progress = q.list(&TaskFilter::states([TaskState::InProgress])).await?;
        let c = &self.inner.config;
        Ok(registry::list(
            records,
            &reports,
            &in_progress,
            &c.worker_hosts,
            self.now(),
            c.worker_stale_after,
        ))
    }

    /// Whether worker hosts are probed over SSH, so their logs can be fetched
    /// ([`Reads::worker_logs`]).
    pub fn probes_hosts(self) -> bool {
        self.inner.probe.is_some() && !self.inner.config.worker_hosts.is_empty()
    }

    /// The last `lines` lines of the worker service's log on the host of `worker` (a
    /// worker id, matched by the address it calls from, or a configured host), and
    /// that host. Only the configured worker hosts are ever contacted.
    pub async fn worker_logs(self, worker: &str, lines: u32) -> Result<(String, String)> {
        // Not configured is not a passing outage: say so as a missing resource.
        let probe = self.inner.probe.clone().ok_or_else(|| {
            Error::not_found(
                "worker logs are fetched over SSH from the worker hosts, and no SSH \
                 probe is configured (the orchestrator's --help: worker SSH settings)",
            )
        })?;
        let records = self.inner.queue.workers().await?;
        let host = registry::host_of(worker, &records, &self.inner.config.worker_hosts)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "worker {worker:?} is not a configured worker host and calls from none of them"
                ))
            })?;
        let logs = probe.logs(&host, lines).await?;
        Ok((host, logs))
    }
}

impl Operator<'_> {
    /// Stops (or, with `false`, resumes) handing new work to `worker`; its current
    /// task goes on. Stored, so every orchestrator on the store and the next one to
    /// start honour it.
    pub async fn drain(self, worker: &WorkerId, draining: bool) -> Result<()> {
        self.inner.queue.set_draining(worker, draining).await?;
        lock(&self.inner.local).set_draining(worker, draining);
        if !draining {
            self.inner.waiters.drain_lifted();
            self.inner.wake();
        }
        Ok(())
    }
}
