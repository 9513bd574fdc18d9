//! What one orchestrator keeps in memory of the workers calling it, so that a
//! worker's call costs no store call while nothing changed: the tasks they claimed
//! here (the fast paths of `work.rs`), the last registry write per worker (the
//! draining flag and sandbox it returned), and the calls seen since, written back
//! in one batch at most once per [`SEEN_WRITE_EVERY`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::model::{TaskId, Timestamp, WorkerId};
use crate::workers::{AgentSandbox, Sighting, WorkerRecord};

/// The calls of known workers are written back to the registry in one batch at most
/// this often: `/workers` shows a last seen time to within about a second, and a
/// fleet long-polling or heartbeating costs one store call a second, however many
/// workers it has. A worker's first call here, and a call from a new address, are
/// written at once.
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
    /// Calls seen since the last write of each worker, not yet written back.
    unwritten: HashMap<WorkerId, Sighting>,
    /// Whether a write-back of `unwritten` is on its way.
    writing_back: bool,
}

impl LocalWorkers {
    /// `Some(draining)` when a call from `worker` at `now` can be written back later
    /// (it is then remembered for the next batch): the worker was written before
    /// and calls from the same address (or an unknown one), and is not draining
    /// since a second or more. `None` when the call must be written now.
    pub(crate) fn note(
        &mut self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Option<bool> {
        let w = self.written.get(worker)?;
        // A draining worker's call reads its flag again once a second, so a drain
        // lifted on another orchestrator lets it work within a second; anyone's
        // drain set elsewhere comes back with the next batch.
        let recheck = w.draining && now.since(w.at) >= SEEN_WRITE_EVERY;
        if recheck || address.is_some() && address != w.address {
            return None;
        }
        let draining = w.draining;
        let seen = self.unwritten.entry(worker.clone()).or_insert(Sighting {
            worker: worker.clone(),
            address,
            at: now,
        });
        seen.at = seen.at.max(now);
        seen.address = address.or(seen.address);
        Some(draining)
    }

    /// Whether the caller is to start writing the noted calls back: none is on its
    /// way yet (then one is, from now on).
    pub(crate) fn start_write_back(&mut self) -> bool {
        !std::mem::replace(&mut self.writing_back, true)
    }

    /// Ends a write-back round: `false` when calls were noted meanwhile, and the
    /// write-back goes on.
    pub(crate) fn finish_write_back(&mut self) -> bool {
        self.writing_back = !self.unwritten.is_empty();
        !self.writing_back
    }

    /// The calls not yet written back, forgotten here (the caller writes them).
    pub(crate) fn take_unwritten(&mut self) -> Vec<Sighting> {
        self.unwritten.drain().map(|(_, s)| s).collect()
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
    fn a_known_workers_calls_wait_for_the_batch_unless_its_address_changes() {
        let w = WorkerId::new("w").unwrap();
        let here: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let mut local = LocalWorkers::default();
        assert_eq!(local.note(&w, here, Timestamp(0)), None, "never written");
        let mut record = WorkerRecord::unseen(w.clone());
        record.seen_at(here, Timestamp(0));
        local.wrote(&record, Timestamp(0));
        assert_eq!(local.note(&w, here, Timestamp(999)), Some(false));
        assert_eq!(local.note(&w, None, Timestamp(5000)), Some(false));
        assert_eq!(local.note(&w, here, Timestamp(2000)), Some(false));
        let elsewhere = Some("10.0.0.2".parse().unwrap());
        assert_eq!(local.note(&w, elsewhere, Timestamp(10)), None);
        let batch = local.take_unwritten();
        assert_eq!(batch.len(), 1, "one sighting per worker: {batch:?}");
        assert_eq!((batch[0].at, batch[0].address), (Timestamp(5000), here));
        assert!(local.take_unwritten().is_empty());
        local.forget_before(Timestamp(5000));
        assert_eq!(local.note(&w, here, Timestamp(6000)), None, "forgotten");
    }

    #[test]
    fn a_draining_workers_call_reads_its_flag_again_after_a_second() {
        let w = WorkerId::new("w").unwrap();
        let mut local = LocalWorkers::default();
        let mut record = WorkerRecord::unseen(w.clone());
        record.seen_at(None, Timestamp(0));
        record.draining = true;
        local.wrote(&record, Timestamp(0));
        assert_eq!(local.note(&w, None, Timestamp(999)), Some(true));
        assert_eq!(local.note(&w, None, Timestamp(1000)), None);
    }
}
