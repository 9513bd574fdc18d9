//! The in-memory worker registry of [`MemoryQueue`]: two maps behind a lock.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;

use super::MemoryQueue;
use crate::error::Result;
use crate::model::{Timestamp, WorkerId};
use crate::workers::{AgentSandbox, HostReport, WorkerRecord, WorkerRegistry};

/// Workers by id and the latest probe report by host, both in listing order.
#[derive(Debug, Default)]
pub(super) struct Registry {
    workers: BTreeMap<WorkerId, WorkerRecord>,
    probes: BTreeMap<String, HostReport>,
}

impl Registry {
    fn record(&mut self, worker: &WorkerId) -> &mut WorkerRecord {
        self.workers
            .entry(worker.clone())
            .or_insert_with(|| WorkerRecord::unseen(worker.clone()))
    }
}

#[async_trait]
impl WorkerRegistry for MemoryQueue {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord> {
        let mut registry = self.registry();
        let record = registry.record(worker);
        record.seen_at(address, now);
        Ok(record.clone())
    }

    async fn worker_finished(
        &self,
        worker: &WorkerId,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        let mut registry = self.registry();
        let record = registry.record(worker);
        record.seen_at(None, now);
        match success {
            true => record.completed += 1,
            false => record.failed += 1,
        }
        Ok(())
    }

    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()> {
        self.registry().record(worker).draining = draining;
        Ok(())
    }

    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        self.registry().record(worker).sandbox = Some(sandbox);
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        Ok(self.registry().workers.values().cloned().collect())
    }

    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64> {
        let unseen = |r: &WorkerRecord| r.last_seen.is_some_and(|t| t < unseen_before);
        if !self.registry().workers.values().any(unseen) {
            return Ok(0);
        }
        // The tasks' lock is taken alone, never with the registry's.
        let holders = self.holders();
        let mut registry = self.registry();
        let before = registry.workers.len();
        registry
            .workers
            .retain(|id, r| !unseen(r) || holders.contains(id));
        Ok((before - registry.workers.len()) as u64)
    }

    async fn record_probe(&self, report: HostReport) -> Result<()> {
        self.registry().probes.insert(report.host.clone(), report);
        Ok(())
    }

    async fn probes(&self) -> Result<Vec<HostReport>> {
        Ok(self.registry().probes.values().cloned().collect())
    }
}
