//! [`WorkerRegistry`]: the workers that called and the leader's last probe of each
//! worker host, kept in the store, so that a restarted orchestrator, or any of
//! several sharing one store, shows the same fleet.

use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Timestamp, WorkerId};
use crate::probe::HostHealth;

/// One worker as the store remembers it.
///
/// What it holds is not part of the record: the queue's in-progress tasks say that
/// ([`crate::Task::holder`]), so the two can never disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The worker's id.
    pub id: WorkerId,
    /// The address it last called from, when known.
    pub address: Option<IpAddr>,
    /// When it first called; `None` for a worker an operator drained before it ever
    /// called.
    pub first_seen: Option<Timestamp>,
    /// When it last called (`None`: never).
    pub last_seen: Option<Timestamp>,
    /// Completions it reported that the queue accepted (one sent again after its
    /// reply was lost counts again).
    pub completed: u64,
    /// Failed attempts it reported that the queue accepted.
    pub failed: u64,
    /// Whether it is told to take no new work (an operator action).
    pub draining: bool,
    /// The sandbox its agents run in, as it last said when asking for work; `None`
    /// when it never said (a worker of an earlier release, a client of the Python
    /// orchestrator's API, or a record stored before workers said so).
    pub sandbox: Option<AgentSandbox>,
}

/// The sandbox a worker runs its agents in (its `SANDBOX` setting, resolved), as
/// the worker reports it: operators see in `/workers` which workers run agents
/// unsandboxed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentSandbox {
    /// Anthropic's sandbox-runtime (`srt`).
    Srt,
    /// bubblewrap with the worker's filtering proxy.
    Bwrap,
    /// No sandbox: agents run as the worker (`SANDBOX=none`, chosen explicitly).
    None,
}

impl AgentSandbox {
    /// Every sandbox, in the order [`AgentSandbox::as_str`] lists them.
    pub const ALL: [AgentSandbox; 3] = [AgentSandbox::Srt, AgentSandbox::Bwrap, AgentSandbox::None];

    /// Its name: `srt`, `bwrap` or `none` (the worker's `SANDBOX` values).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentSandbox::Srt => "srt",
            AgentSandbox::Bwrap => "bwrap",
            AgentSandbox::None => "none",
        }
    }

    /// The sandbox [`AgentSandbox::as_str`] names.
    pub fn from_name(name: &str) -> Option<AgentSandbox> {
        AgentSandbox::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for AgentSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call from a worker, to be recorded ([`WorkerRegistry::workers_seen`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Who called.
    pub worker: WorkerId,
    /// From where, when known.
    pub address: Option<IpAddr>,
    /// When.
    pub at: Timestamp,
}

impl WorkerRecord {
    /// A worker that never called: nothing counted, not draining.
    pub fn unseen(id: WorkerId) -> WorkerRecord {
        WorkerRecord {
            id,
            address: None,
            first_seen: None,
            last_seen: None,
            completed: 0,
            failed: 0,
            draining: false,
            sandbox: None,
        }
    }

    /// Records a call at `now` from `address` (kept when `None`), as every backend
    /// stores it: first seen is set once, last seen never moves backwards.
    pub fn seen_at(&mut self, address: Option<IpAddr>, now: Timestamp) {
        self.first_seen.get_or_insert(now);
        self.last_seen = Some(self.last_seen.map_or(now, |t| t.max(now)));
        if address.is_some() {
            self.address = address;
        }
    }
}

/// The leader's last probe of one worker host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// The host as configured (`ip` or `ip:port`).
    pub host: String,
    /// The verdict.
    pub health: HostHealth,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// When the probe ran.
    pub at: Timestamp,
}

/// The worker registry of a store: who called, from where and when, what they
/// finished, whether an operator drained them, and how their hosts looked to the
/// leader's probe. Every [`crate::WorkQueue`] is one (a supertrait), so an
/// orchestrator reads and writes it through its `Arc<dyn WorkQueue>`.
///
/// # Contract
///
/// Everything written is stored, as task changes are: a restarted orchestrator and
/// every orchestrator sharing the store read the same records. Methods take `now`
/// instead of reading a clock. A backend is done when the conformance suite
/// (`scrum_core::conformance::workers`, feature `testkit`) passes unchanged; each
/// `# Behavior` bullet below is one test there.
///
/// The engine calls [`WorkerRegistry::worker_seen`] on worker calls, but at most
/// once a second per worker unless the worker's address changed (see
/// `scrum_core::engine`), and [`WorkerRegistry::worker_finished`] once per report;
/// the other methods are operator actions and the leader's rounds. A backend
/// keeps each call to one cheap write.
#[async_trait]
pub trait WorkerRegistry: Send + Sync {
    /// Records a call from `worker` at `now`, from `address` when known, and returns
    /// the worker's record as stored after it (an upsert).
    ///
    /// # Behavior
    /// - A first call creates the record: first and last seen `now`, the address it
    ///   called from, nothing counted, not draining.
    /// - A later call moves last seen to `now`, never backwards, and keeps first
    ///   seen; a new address replaces the old one, and a call without one keeps it.
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord>;

    /// Records the calls of many workers, each as [`WorkerRegistry::worker_seen`]
    /// records one, and returns their records as stored after them (in any order).
    /// The engine writes the calls of workers it knows back in one such
    /// batch a second, so a store that can should write them in one transaction.
    ///
    /// # Behavior
    /// - Each sighting is recorded as `worker_seen` records it, and each comes
    ///   back as one record.
    async fn workers_seen(&self, seen: &[Sighting]) -> Result<Vec<WorkerRecord>> {
        let mut records = Vec::with_capacity(seen.len());
        for s in seen {
            records.push(self.worker_seen(&s.worker, s.address, s.at).await?);
        }
        Ok(records)
    }

    /// Counts one attempt `worker` reported at `now`: completed when `success`, else
    /// failed. The report is a call too: last seen moves to `now` as with
    /// [`WorkerRegistry::worker_seen`].
    ///
    /// # Behavior
    /// - Completions and failures are counted apart, and a report counts as a call.
    /// - Concurrent reports, from one orchestrator or several, are all counted.
    async fn worker_finished(&self, worker: &WorkerId, success: bool, now: Timestamp)
    -> Result<()>;

    /// Tells `worker` to take no new work (`true`) or to take work again.
    ///
    /// # Behavior
    /// - Draining stays set across the worker's calls until it is cleared.
    /// - A worker drained before it ever called is listed, draining and never seen.
    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()>;

    /// Records the sandbox `worker` says its agents run in (it says so when it
    /// asks for work; the engine writes it when it changed).
    ///
    /// # Behavior
    /// - The sandbox is kept across the worker's calls, reports and drains until
    ///   it says another; a record that never had one lists none.
    /// - A worker that says so before it ever called is listed with it, never seen.
    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()>;

    /// Every worker the store knows, ordered by id.
    ///
    /// # Behavior
    /// - Each worker is listed once, in id order, with what was recorded of it.
    /// - A queue opened again on the same store (a restarted orchestrator, or
    ///   another one sharing the store) lists the same workers and probe reports.
    async fn workers(&self) -> Result<Vec<WorkerRecord>>;

    /// Drops the workers last seen before `unseen_before` that hold no in-progress
    /// task, and returns how many it dropped. The leader calls it in its reap round.
    ///
    /// # Behavior
    /// - Only workers last seen before `unseen_before` and holding no in-progress
    ///   task are dropped; workers seen since, workers holding a task, and drained
    ///   workers that never called are kept.
    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64>;

    /// Stores the leader's latest probe of a host, replacing the one before.
    ///
    /// # Behavior
    /// - Each host keeps only its latest report; reports are listed by host.
    async fn record_probe(&self, report: HostReport) -> Result<()>;

    /// The latest probe report of every host probed, ordered by host.
    async fn probes(&self) -> Result<Vec<HostReport>>;
}
