//! The orchestrator engine, generic over the four traits.
//!
//! [`Orchestrator`] is one handle (cheap to clone) on:
//! - the **work API** workers call ([`Orchestrator::next_work`], heartbeat, complete,
//!   fail, release), used by the HTTP server and by in-process workers alike;
//! - the **duties** only the leader runs ([`Orchestrator::run`] loops them until
//!   shutdown): the GitHub poll ([`Orchestrator::poll_once`]), the lease reaper
//!   ([`Orchestrator::reap_once`]), the outbox dispatcher
//!   ([`Orchestrator::dispatch_once`]) and the host probe ([`Orchestrator::probe_once`]);
//! - two handles: [`Orchestrator::reads`] ([`Reads`]: tasks, workers, gates,
//!   health, for operators' views) and [`Orchestrator::operator`] ([`Operator`]:
//!   pause, drain, retry, cancel, revive effects, mark pull requests).
//!
//! # Features
//!
//! What holds work back (pause, drain, the pull-request gate, refused writes,
//! budgets, trust, dependencies, locks) is a claim gate (`ClaimGate`,
//! `gate.rs`), and what a feature reads on each poll (trust, dependencies,
//! pull-request reviews, monthly spend) a poll step (`PollStep`, `step.rs`). Each
//! feature is a module with its own state, settings and tests; `features.rs`
//! lists them, and `next_work` and `poll_once` only compose them.
//!
//! # The worker registry
//!
//! Workers are remembered in the store ([`crate::WorkerRegistry`]), so `/workers`
//! answers the same after a restart and on every orchestrator sharing a store.
//! Every worker call counts as seen. A worker's first call to this orchestrator,
//! and a call from a new address, are written at once; the other calls are kept
//! in memory and written back in one batch a second
//! ([`crate::WorkerRegistry::workers_seen`]), so a long-polling or heartbeating
//! fleet costs one store call a second however large it is, and an idle long poll
//! none. A completion or failure counts the worker in the same write as its seen
//! time. A store that does not answer fails the call, as it would fail the claim; a count that cannot be written after the outcome
//! was stored is logged, and the outcome stands. What a worker holds is read from
//! the queue's in-progress tasks; the engine keeps only a cache of the tasks
//! claimed through it (to answer reports without a store read) and of the
//! draining flag its last write returned: an operator's drain on another
//! orchestrator takes effect here with the next batch, and a lifted drain at the
//! worker's first call a second after the last write. The leader stores its probe
//! reports and drops workers unseen for [`EngineConfig::worker_forget_after`] that
//! hold nothing, in its reap round.
//!
//! # Waiting workers
//!
//! Long-polling workers wait in a line (`waiters.rs`): a task that may have become
//! claimable wakes the one that waited longest, which wakes the next when it takes
//! a task, so a queued task costs a claim or two, not one per waiting worker.

mod budget;
mod deps;
mod dispatch;
mod drain;
mod duties;
mod features;
mod gate;
mod handles;
mod local;
mod locks;
mod notify;
mod pause;
mod poll;
mod pull_gate;
mod reads;
mod registry;
mod scaling;
mod step;
mod trust;
mod waiters;
mod work;
mod workers;
mod writes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::{Clock, TokioClock};
use crate::error::{Error, Result};
use crate::model::{Task, TaskId, Timestamp};
use crate::observe::{Observer, ObserverSlot};
use crate::probe::WorkerProbe;
use crate::queue::WorkQueue;
use crate::source::{IssueSource, Labels};
use crate::state::EffectRetry;

pub use budget::{Budgets, MonthSpend, month_start};
pub use dispatch::DispatchReport;
use features::Features;
pub use gate::Why;
pub use handles::{Operator, Reads};
use local::LocalWorkers;
pub use notify::{Notification, Notifier};
pub use poll::PollReport;
pub use pull_gate::{ReviewStatus, TRACK_FOR};
pub use reads::{Outcomes, TaskPage, TaskSearch};
pub use registry::{WorkerInfo, WorkerStatus};
pub use scaling::{Scaling, ScalingSettings, desired_workers};
pub use trust::TrustMode;
use waiters::{Freed, Waiters};
pub use work::{ABANDONED, ReportRef};
pub use writes::{RepoWrites, WriteHealth};

/// How the engine runs. The defaults are those of the Python orchestrator this
/// project replaces.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How often the issue source is polled (default 60 s).
    pub poll_interval: Duration,
    /// How often lapsed leases are reaped (default 5 s).
    pub reap_interval: Duration,
    /// How often the outbox is applied (default 1 s).
    pub dispatch_interval: Duration,
    /// How often worker hosts are probed (default 30 s).
    pub probe_interval: Duration,
    /// How many hosts are probed at once (default 32).
    pub probe_concurrency: usize,
    /// The worker hosts to probe, as the probe addresses them (`ip` or `ip:port`).
    pub worker_hosts: Vec<String>,
    /// A worker not seen for this long (and holding nothing) shows as offline.
    pub worker_stale_after: Duration,
    /// A worker not seen for this long (and holding nothing) is dropped from the
    /// registry by the leader (default 24 h).
    pub worker_forget_after: Duration,
    /// The label names.
    pub labels: Labels,
    /// This orchestrator's name in the leader lease.
    pub instance: String,
    /// How long a leader lease lasts without renewal.
    pub leader_ttl: Duration,
    /// The longest a `next_work` long poll waits.
    pub max_wait: Duration,
    /// Whether a failed attempt that will be retried gets a short comment.
    pub comment_on_retry: bool,
    /// How effects that fail to apply are retried, and when they are set aside.
    pub effect_retry: EffectRetry,
    /// Whose text reaches an agent (`TRUST_MODE`; see [`TrustMode`]).
    pub trust: TrustMode,
    /// Pull-request review gating (`MAX_PENDING_PRS` and friends; see
    /// [`crate::pull_gate`]).
    pub review: crate::pull_gate::ReviewSettings,
    /// Which causes start a follow-up run on a completed task's pull request, and
    /// which checks count (`FOLLOW_UP_ON`, `FOLLOW_UP_CHECKS`; the most rounds is
    /// the queue's [`crate::state::Policy::follow_up_rounds`]).
    pub follow_ups: crate::follow_up::FollowUpSettings,
    /// Cost budgets (`ISSUE_BUDGET_USD`, `REPO_MONTHLY_BUDGET_USD`; none by default).
    pub budgets: Budgets,
    /// The scaling signal's settings (`MAX_WORKERS`, `MIN_IDLE_WORKERS`).
    pub scaling: ScalingSettings,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            poll_interval: Duration::from_secs(60),
            reap_interval: Duration::from_secs(5),
            dispatch_interval: Duration::from_secs(1),
            probe_interval: Duration::from_secs(30),
            probe_concurrency: 32,
            worker_hosts: Vec::new(),
            worker_stale_after: Duration::from_secs(300),
            worker_forget_after: Duration::from_secs(86_400),
            labels: Labels::default(),
            instance: format!("orchestrator-{:08x}", fastrand::u32(..)),
            leader_ttl: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            comment_on_retry: true,
            effect_retry: EffectRetry::default(),
            trust: TrustMode::default(),
            review: crate::pull_gate::ReviewSettings::default(),
            follow_ups: crate::follow_up::FollowUpSettings::default(),
            budgets: Budgets::default(),
            scaling: ScalingSettings::default(),
        }
    }
}

/// What the engine knows of its own health, for `/health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// Whether the last GitHub poll succeeded.
    pub github_connected: bool,
    /// Why GitHub is degraded (rate limit, outage, bad token), when it is.
    pub github_reason: Option<String>,
    /// When the last poll succeeded.
    pub last_poll: Option<Timestamp>,
    /// Whether this orchestrator holds the leader lease.
    pub leader: bool,
    /// Whether dispatch is paused (an operator action).
    pub paused: bool,
    /// Effects that failed to apply in the last dispatch round.
    pub effects_failing: u64,
    /// The issue source's rate limit: points left, from its last answer.
    #[serde(default)]
    pub rate_limit_remaining: Option<u64>,
    /// When that rate limit resets.
    #[serde(default)]
    pub rate_limit_reset: Option<Timestamp>,
    /// Each forge's own view when the source serves several (GitHub beside
    /// GitLab: [`crate::forges::Forges`]), by forge name; the fields above then
    /// speak for the listing as a whole.
    #[serde(default)]
    pub forges: std::collections::BTreeMap<String, ForgeStatus>,
}

/// One forge's health as `/health` shows it apart from the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeStatus {
    /// Whether its last listing (or its client's last answer) succeeded.
    pub connected: bool,
    /// Why it is degraded, when it is (free text: keep it to logs).
    pub reason: Option<String>,
    /// Its rate limit's points left, from its client's last answer.
    #[serde(default)]
    pub rate_limit_remaining: Option<u64>,
    /// When that rate limit resets.
    #[serde(default)]
    pub rate_limit_reset: Option<Timestamp>,
}

/// What a forge's client says of itself ([`Orchestrator::report_forge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForgeReport {
    /// Its last listing, or its client's view (a rate limit being waited out, an
    /// outage).
    Health {
        /// Whether it answers.
        connected: bool,
        /// Why not, when it does not.
        reason: Option<String>,
    },
    /// Its rate limit as its client last read it.
    RateLimit {
        /// Points left.
        remaining: Option<u64>,
        /// When they reset.
        reset: Option<Timestamp>,
    },
}

/// Builds an [`Orchestrator`].
pub struct OrchestratorBuilder {
    queue: Arc<dyn WorkQueue>,
    source: Arc<dyn IssueSource>,
    probe: Option<Arc<dyn WorkerProbe>>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    notifier: Option<Arc<dyn Notifier>>,
}

impl OrchestratorBuilder {
    /// Sends the outbox's notifications through `notifier` (the queue's
    /// [`crate::state::Policy::notify`] says which are recorded).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Probes worker hosts with `probe`.
    pub fn probe(mut self, probe: Arc<dyn WorkerProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Reads time from `clock` (default: [`TokioClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The orchestrator.
    pub fn build(self) -> Orchestrator {
        let features = Features::new(&self.config);
        Orchestrator {
            inner: Arc::new(Inner {
                core: Core {
                    queue: self.queue,
                    source: self.source,
                    probe: self.probe,
                    clock: self.clock,
                    config: self.config,
                    waiters: Waiters::default(),
                    observer: ObserverSlot::new(),
                },
                local: Mutex::new(LocalWorkers::default()),
                status: Mutex::new(EngineStatus::default()),
                poll_requested: Notify::new(),
                features,
                notifier: self.notifier,
                notes: Mutex::new(notify::Handed::default()),
                notes_ready: Notify::new(),
            }),
        }
    }
}

/// The orchestrator: the work API, the leader's duties and the worker registry.
/// Clones share one engine.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

/// What the engine and every feature share: the four traits' implementations,
/// the clock, the configuration, and the wake-up of long-polling workers.
pub(crate) struct Core {
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) source: Arc<dyn IssueSource>,
    pub(crate) probe: Option<Arc<dyn WorkerProbe>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    /// The long-polling workers, woken one at a time when a task may have become
    /// claimable ([`waiters`]).
    pub(crate) waiters: Waiters,
    /// Told of claims, ended attempts and follow-ups (the HTTP API's metrics).
    pub(crate) observer: ObserverSlot,
}

impl Core {
    /// The current time on the engine's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Wakes the long-polling worker that has waited longest: tasks may have
    /// become claimable. It wakes the next if it takes one ([`waiters`]).
    pub(crate) fn wake(&self) {
        self.waiters.wake_one(Freed::Several);
    }

    /// Wakes the long-polling worker that has waited longest for one task that
    /// may have become claimable (queued, released, retried).
    pub(crate) fn wake_for_one(&self) {
        self.waiters.wake_one(Freed::One);
    }

    /// The task of an issue, in any state; `NotFound` when there is none.
    pub(crate) async fn task(&self, id: &TaskId) -> Result<Task> {
        self.queue
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no task for issue {id}")))
    }

    /// A core over an empty in-memory queue and issue source, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Core {
        use crate::memory::{MemoryIssueSource, MemoryQueue};
        Core {
            queue: Arc::new(MemoryQueue::new(crate::state::Policy::default())),
            source: Arc::new(MemoryIssueSource::new(Labels::default())),
            probe: None,
            clock: Arc::new(TokioClock::new()),
            config: EngineConfig::default(),
            waiters: Waiters::default(),
            observer: ObserverSlot::new(),
        }
    }
}

struct Inner {
    core: Core,
    // std Mutexes: held for a few field updates, never across an await.
    /// The engine's cache of the workers calling it (the store has the registry).
    local: Mutex<LocalWorkers>,
    status: Mutex<EngineStatus>,
    /// Woken by a webhook (or an operator) to poll GitHub now.
    poll_requested: Notify,
    /// The features, each with its own state: the claim gates and poll steps.
    features: Features,
    /// Sends the outbox's notifications, on the leader, in the background.
    notifier: Option<Arc<dyn Notifier>>,
    /// The notifications handed to the notification loops and not yet sent.
    notes: Mutex<notify::Handed>,
    /// Woken when a notification is handed over.
    notes_ready: Notify,
}

/// The engine's own fields reach the shared core as theirs (`inner.queue`).
impl std::ops::Deref for Inner {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("instance", &self.inner.config.instance)
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    /// A builder for an orchestrator over `queue` and `source`.
    pub fn builder(queue: Arc<dyn WorkQueue>, source: Arc<dyn IssueSource>) -> OrchestratorBuilder {
        OrchestratorBuilder {
            queue,
            source,
            probe: None,
            clock: Arc::new(TokioClock::new()),
            config: EngineConfig::default(),
            notifier: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Records how the issue source looks from its own client (a rate limit being
    /// waited out, an outage), so `/health` shows it while a poll is still waiting,
    /// not only after the poll fails.
    pub fn report_source_health(&self, connected: bool, reason: Option<String>) {
        self.update_status(|s| {
            s.github_connected = connected;
            s.github_reason = reason;
        });
    }

    /// Records the issue source's rate limit as its client last read it: points
    /// left, and when they reset (for the dashboard).
    pub fn report_rate_limit(&self, remaining: Option<u64>, reset: Option<Timestamp>) {
        self.update_status(|s| {
            s.rate_limit_remaining = remaining;
            s.rate_limit_reset = reset;
        });
    }

    /// Records what one forge's client says of itself, when the source serves
    /// several: `/health` shows each forge apart.
    pub fn report_forge(&self, forge: &str, report: ForgeReport) {
        self.update_status(|s| {
            let f = s.forges.entry(forge.to_string()).or_default();
            match report {
                ForgeReport::Health { connected, reason } => {
                    f.connected = connected;
                    f.reason = reason;
                }
                ForgeReport::RateLimit { remaining, reset } => {
                    f.rate_limit_remaining = remaining;
                    f.rate_limit_reset = reset;
                }
            }
        });
    }

    fn update_status(&self, f: impl FnOnce(&mut EngineStatus)) {
        f(&mut lock(&self.inner.status));
    }

    /// Tells `observer` of every claim and every ended attempt from now on
    /// (replacing the one set before). The HTTP API's state sets its metrics here.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.inner.observer.set(observer);
    }

    /// The observer of claims and ended attempts.
    pub(crate) fn observer(&self) -> Arc<dyn Observer> {
        self.inner.observer.get()
    }

    /// Asks the poll loop to poll GitHub now (a webhook said an issue changed).
    pub fn request_poll(&self) {
        self.inner.poll_requested.notify_one();
    }

    /// Gives the workers that kept running while no orchestrator served them one
    /// lease period to report in ([`crate::WorkQueue::resume_leases`]); returns how
    /// many leases it extended. Call it at start, before serving workers.
    pub async fn resume_leases(&self) -> Result<usize> {
        let resumed = self.inner.queue.resume_leases(self.now()).await?;
        if !resumed.is_empty() {
            tracing::info!(
                leases = resumed.len(),
                "tasks held when the orchestrator started get one lease period to report in"
            );
        }
        Ok(resumed.len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
