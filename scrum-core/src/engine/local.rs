//! What one orchestrator keeps in memory of the workers calling it, so that a
//! worker's call costs at most one registry write: the tasks they claimed here
//! (the fast paths of `work.rs`), and its last `worker_seen` write per worker
//! (the rate limit, and the draining flag and sandbox that write returned).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::model::{TaskId, Timestamp, WorkerId};
use crate::workers::{AgentSandbox, WorkerRecord};

/// A worker's calls write its last seen time at most this often, unless its address
/// changed: `/workers` shows it to within a second, and a worker long-polling or
/// heartbeating in a tight loop costs one write a second, not one per call.
pub(crate) const SEEN_WRITE_EVERY: Duration = Duration::from_secs(1);

/// The last registry write this orchestrator made for one worker.
#[derive(Clone, Copy, Debug)]
struct Written {
    at: Timestamp,
    address: Option<IpAddr>,
    draining: bool,
    sandbox: Option<AgentSandbox>,
}

/// The in-process memory of the workers: a cache, never the record (the store is).
#[derive(Debug, Default)]
pub(crate) struct LocalWorkers {
    /// The task each worker last claimed here and has not reported on.
    claims: HashMap<WorkerId, TaskId>,
    written: HashMap<WorkerId, Written>,
}

impl LocalWorkers {
    /// `Some(draining)` when a call from `worker` at `now` needs no `worker_seen`
    /// write: one was made less than [`SEEN_WRITE_EVERY`] ago and the address is
    /// the same (or not known). `None` when the call must be written.
    pub(crate) fn fresh(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Option<bool> {
        let w = self.written.get(worker)?;
        let same_address = address.is_none() || address == w.address;
        (same_address && now.since(w.at) < SEEN_WRITE_EVERY).then_some(w.draining)
    }

    /// Remembers a `worker_seen` write at `now` and the record it returned.
    pub(crate) fn wrote(&mut self, record: &WorkerRecord, now: Timestamp) {
        let written = Written {
            at: now,
            address: record.address,
            draining: record.draining,
            sandbox: record.sandbox,
        };
        self.written.insert(record.id.clone(), written);
    }

    /// Remembers that a report written at `now` also marked `worker` seen.
    pub(crate) fn reported(&mut self, worker: &WorkerId, now: Timestamp) {
        if let Some(w) = self.written.get_mut(worker) {
            w.at = w.at.max(now);
        }
    }

    /// Remembers an operator's drain (the store has it already).
    pub(crate) fn set_draining(&mut self, worker: &WorkerId, draining: bool) {
        if let Some(w) = self.written.get_mut(worker) {
            w.draining = draining;
        }
    }

    /// Whether the store has `worker`'s sandbox as `sandbox`, as this orchestrator's
    /// last write for it (at most [`SEEN_WRITE_EVERY`] old while the worker calls)
    /// returned it: `false` when it never wrote one.
    pub(crate) fn has_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> bool {
        self.written
            .get(worker)
            .is_some_and(|w| w.sandbox == Some(sandbox))
    }

    /// Remembers a sandbox written for `worker`.
    pub(crate) fn set_sandbox(&mut self, worker: &WorkerId, sandbox: AgentSandbox) {
        if let Some(w) = self.written.get_mut(worker) {
            w.sandbox = Some(sandbox);
        }
    }

    /// Remembers what `worker` claimed here (`None`: it holds nothing from here).
    pub(crate) fn holds(&mut self, worker: &WorkerId, task: Option<TaskId>) {
        match task {
            Some(id) => self.claims.insert(worker.clone(), id),
            None => self.claims.remove(worker),
        };
    }

    /// The task `worker` last claimed here and has not reported on.
    pub(crate) fn current_task(&self, worker: &WorkerId) -> Option<TaskId> {
        self.claims.get(worker).cloned()
    }

    /// Forgets `task`'s holder (the reaper ended its lease).
    pub(crate) fn drop_task(&mut self, task: &TaskId) {
        self.claims.retain(|_, id| id != task);
    }

    /// Forgets the writes made before `cutoff` of workers holding nothing from here,
    /// so the memory follows the store's forgetting.
    pub(crate) fn forget_before(&mut self, cutoff: Timestamp) {
        let claims = &self.claims;
        self.written
            .retain(|worker, w| w.at >= cutoff || claims.contains_key(worker));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_written_once_a_second_unless_the_address_changes() {
        let w = WorkerId::new("w").unwrap();
        let here: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let mut local = LocalWorkers::default();
        assert_eq!(local.fresh(&w, here, Timestamp(0)), None, "never written");
        let mut record = WorkerRecord::unseen(w.clone());
        record.seen_at(here, Timestamp(0));
        record.draining = true;
        local.wrote(&record, Timestamp(0));
        assert_eq!(local.fresh(&w, here, Timestamp(999)), Some(true));
        assert_eq!(local.fresh(&w, None, Timestamp(999)), Some(true));
        let elsewhere = Some("10.0.0.2".parse().unwrap());
        assert_eq!(local.fresh(&w, elsewhere, Timestamp(10)), None);
        assert_eq!(
            local.fresh(&w, here, Timestamp(1000)),
            None,
            "a second later"
        );
        local.reported(&w, Timestamp(1500));
        assert_eq!(local.fresh(&w, here, Timestamp(2000)), Some(true));
        local.forget_before(Timestamp(5000));
        assert_eq!(local.fresh(&w, here, Timestamp(2000)), None, "forgotten");
    }
}
