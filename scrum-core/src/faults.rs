//! [`Faulty`]: a wrapper that injects errors and delays into any of the four traits,
//! and into a worker's [`WorkSource`] (an orchestrator that is down), in the spirit
//! of OpenDAL's chaos layer.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use scrum_core::{faults::{Faults, Faulty}, memory::MemoryIssueSource, IssueSource};
//! let source = Faulty::new(MemoryIssueSource::default(), Faults::default());
//! source.faults().fail_next(1);
//! assert!(source.list_ready().await.is_err());
//! assert!(source.list_ready().await.is_ok());
//! # });
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Assignment, Completion, Failure, HeartbeatReply, LeaseKind, Person, ReadyIssue, Task, TaskId,
    Timestamp, WorkerId,
};
use crate::probe::{HostHealth, ProbeReport, WorkerProbe};
use crate::queue::{
    Claimed, EffectFailure, EffectSelector, Enqueued, OutboxEntry, QueueCounts, RepoHolds,
    TaskFilter, WorkQueue,
};
use crate::runner::{RunOutcome, WorkflowRunner};
use crate::source::{Commented, IssueSource, IssueState};
use crate::state::{Event, Policy};
use crate::worker::WorkSource;
use crate::workers::{AgentSandbox, HostReport, Sighting, WorkerRecord, WorkerRegistry};

/// What to inject, shared and adjustable while the wrapper is in use.
#[derive(Debug)]
pub struct Faults {
    kind: ErrorKind,
    fail_next: AtomicU32,
    // Stored as parts per million so they can be atomics.
    error_ppm: AtomicU32,
    lost_reply_ppm: AtomicU32,
    delay_ms: AtomicU32,
    rng: Mutex<fastrand::Rng>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults::seeded(0x5eed)
    }
}

impl Faults {
    /// No faults yet, with a seeded generator so a failing run can be replayed.
    pub fn seeded(seed: u64) -> Faults {
        Faults {
            kind: ErrorKind::Unavailable,
            fail_next: AtomicU32::new(0),
            error_ppm: AtomicU32::new(0),
            lost_reply_ppm: AtomicU32::new(0),
            delay_ms: AtomicU32::new(0),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            calls: Mutex::default(),
        }
    }

    /// The next `n` calls fail before doing anything.
    pub fn fail_next(&self, n: u32) -> &Faults {
        self.fail_next.store(n, Ordering::SeqCst);
        self
    }

    /// Each call fails before doing anything with probability `p`.
    pub fn error_rate(&self, p: f64) -> &Faults {
        self.error_ppm.store(ppm(p), Ordering::SeqCst);
        self
    }

    /// Each call that succeeded reports a failure anyway with probability `p`: the
    /// change was made but the reply was lost, as after a timeout.
    pub fn lost_reply_rate(&self, p: f64) -> &Faults {
        self.lost_reply_ppm.store(ppm(p), Ordering::SeqCst);
        self
    }

    /// Each call waits `d` first (on tokio's clock).
    pub fn delay(&self, d: Duration) -> &Faults {
        self.delay_ms.store(
            u32::try_from(d.as_millis()).unwrap_or(u32::MAX),
            Ordering::SeqCst,
        );
        self
    }

    /// How many calls were made of each operation (`claim`, `worker_seen`,
    /// `apply`, ...), faults or not: what a load costs the wrapped backend.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn roll(&self, ppm: &AtomicU32) -> bool {
        let p = ppm.load(Ordering::SeqCst);
        p > 0
            && self
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .u32(..1_000_000)
                < p
    }

    fn error(&self, op: &str, when: &str) -> Error {
        Error::new(self.kind, format!("injected fault {when} {op}"))
    }

    async fn before(&self, op: &'static str) -> Result<()> {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay.into())).await;
        }
        let take = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if take.is_ok() || self.roll(&self.error_ppm) {
            return Err(self.error(op, "before"));
        }
        Ok(())
    }

    fn after<T>(&self, op: &str, result: Result<T>) -> Result<T> {
        match result {
            Ok(_) if self.roll(&self.lost_reply_ppm) => Err(self.error(op, "after")),
            other => other,
        }
    }

    async fn call<T>(&self, op: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.before(op).await?;
        let result = f.await;
        self.after(op, result)
    }
}

fn ppm(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 1_000_000.0) as u32
}

/// Wraps a backend and injects the [`Faults`] it shares.
#[derive(Debug)]
pub struct Faulty<T> {
    inner: T,
    faults: Arc<Faults>,
}

impl<T> Faulty<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, faults: Faults) -> Faulty<T> {
        Faulty {
            inner,
            faults: Arc::new(faults),
        }
    }

    /// The faults, to change them while the wrapper is in use.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

#[async_trait]
impl<Q: WorkQueue> WorkQueue for Faulty<Q> {
    fn policy(&self) -> &Policy {
        self.inner.policy()
    }
    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        self.faults
            .call("enqueue", self.inner.enqueue(issue, observed_at))
            .await
    }
    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &RepoHolds,
    ) -> Result<Option<Claimed>> {
        self.faults
            .call("claim", self.inner.claim_where(worker, lease, now, hold))
            .await
    }
    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        self.faults
            .call("apply", self.inner.apply(id, event, now))
            .await
    }
    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        self.faults.call("expire", self.inner.expire(now)).await
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        self.faults.call("get", self.inner.get(id)).await
    }
    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.faults.call("list", self.inner.list(filter)).await
    }
    async fn counts(&self) -> Result<QueueCounts> {
        self.faults.call("counts", self.inner.counts()).await
    }
    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.faults
            .call("pending_effects", self.inner.pending_effects(limit))
            .await
    }
    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        self.faults
            .call("ack_effect", self.inner.ack_effect(id, now))
            .await
    }
    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.faults
            .call("due_effects", self.inner.due_effects(now, limit))
            .await
    }
    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.faults
            .call("failing_effects", self.inner.failing_effects(limit))
            .await
    }
    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        self.faults
            .call("nack_effect", self.inner.nack_effect(id, failure))
            .await
    }
    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize> {
        self.faults
            .call("revive_effects", self.inner.revive_effects(which, now))
            .await
    }
    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool> {
        self.faults
            .call("lead", self.inner.lead(holder, ttl, now))
            .await
    }
    async fn resign(&self, holder: &str, now: Timestamp) -> Result<()> {
        self.faults
            .call("resign", self.inner.resign(holder, now))
            .await
    }
}

#[async_trait]
impl<Q: WorkerRegistry> WorkerRegistry for Faulty<Q> {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord> {
        self.faults
            .call("worker_seen", self.inner.worker_seen(worker, address, now))
            .await
    }
    async fn workers_seen(&self, seen: &[Sighting]) -> Result<Vec<WorkerRecord>> {
        self.faults
            .call("workers_seen", self.inner.workers_seen(seen))
            .await
    }
    async fn worker_finished(
        &self,
        worker: &WorkerId,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.faults
            .call(
                "worker_finished",
                self.inner.worker_finished(worker, success, now),
            )
            .await
    }
    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()> {
        self.faults
            .call("set_draining", self.inner.set_draining(worker, draining))
            .await
    }
    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        self.faults
            .call("set_sandbox", self.inner.set_sandbox(worker, sandbox))
            .await
    }
    async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        self.faults.call("workers", self.inner.workers()).await
    }
    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64> {
        self.faults
            .call("forget_workers", self.inner.forget_workers(unseen_before))
            .await
    }
    async fn record_probe(&self, report: HostReport) -> Result<()> {
        self.faults
            .call("record_probe", self.inner.record_probe(report))
            .await
    }
    async fn probes(&self) -> Result<Vec<HostReport>> {
        self.faults.call("probes", self.inner.probes()).await
    }
}

#[async_trait]
impl<S: IssueSource> IssueSource for Faulty<S> {
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        self.faults
            .call("list_ready", self.inner.list_ready())
            .await
    }
    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        self.faults
            .call("issue_state", self.inner.issue_state(id))
            .await
    }
    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        self.faults
            .call("add_labels", self.inner.add_labels(id, labels))
            .await
    }
    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        self.faults
            .call("remove_label", self.inner.remove_label(id, label))
            .await
    }
    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.faults
            .call("comment", self.inner.comment(id, marker, body))
            .await
    }
    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        self.faults
            .call("labelled_by", self.inner.labelled_by(id))
            .await
    }
    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        self.faults
            .call("edited_by", self.inner.edited_by(id))
            .await
    }
    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        self.faults
            .call("opened_by", self.inner.opened_by(id))
            .await
    }
    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        self.faults
            .call("blocked_by", self.inner.blocked_by(id))
            .await
    }
    async fn pull_state(
        &self,
        repo: &crate::model::RepoName,
        number: u64,
    ) -> Result<Option<crate::pull_gate::PullState>> {
        self.faults
            .call("pull_state", self.inner.pull_state(repo, number))
            .await
    }
    async fn pull_review(
        &self,
        repo: &crate::model::RepoName,
        number: u64,
    ) -> Result<Option<crate::pull_gate::PullReview>> {
        self.faults
            .call("pull_review", self.inner.pull_review(repo, number))
            .await
    }
}

#[async_trait]
impl<P: WorkerProbe> WorkerProbe for Faulty<P> {
    async fn probe(&self, host: &str) -> ProbeReport {
        match self.faults.before("probe").await {
            Ok(()) => self.inner.probe(host).await,
            Err(e) => ProbeReport {
                health: HostHealth::Unreachable,
                rtt: None,
                reason: Some(e.to_string()),
            },
        }
    }
    async fn logs(&self, host: &str, lines: u32) -> Result<String> {
        self.faults.call("logs", self.inner.logs(host, lines)).await
    }
    async fn restart(&self, host: &str) -> Result<()> {
        self.faults.call("restart", self.inner.restart(host)).await
    }
}

#[async_trait]
impl<R: WorkflowRunner> WorkflowRunner for Faulty<R> {
    async fn run(&self, assignment: &Assignment, cancel: CancellationToken) -> RunOutcome {
        match self.faults.before("run").await {
            Ok(()) => self.inner.run(assignment, cancel).await,
            Err(e) => RunOutcome::Failure(Failure {
                reason: e.to_string(),
                retryable: true,
                ..Failure::default()
            }),
        }
    }
}

#[async_trait]
impl<W: WorkSource> WorkSource for Faulty<W> {
    async fn next(&self, worker: &WorkerId, wait: Duration) -> Result<Option<Assignment>> {
        self.faults
            .call("next", self.inner.next(worker, wait))
            .await
    }
    async fn heartbeat(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
    ) -> Result<HeartbeatReply> {
        self.faults
            .call("heartbeat", self.inner.heartbeat(worker, assignment))
            .await
    }
    async fn complete(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        completion: Completion,
    ) -> Result<()> {
        self.faults
            .call(
                "complete",
                self.inner.complete(worker, assignment, completion),
            )
            .await
    }
    async fn fail(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        failure: Failure,
    ) -> Result<()> {
        self.faults
            .call("fail", self.inner.fail(worker, assignment, failure))
            .await
    }
    async fn clarify(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        clarification: crate::model::Clarification,
    ) -> Result<()> {
        self.faults
            .call(
                "clarify",
                self.inner.clarify(worker, assignment, clarification),
            )
            .await
    }
    async fn release(
        &self,
        worker: &WorkerId,
        assignment: &Assignment,
        reason: &str,
    ) -> Result<()> {
        self.faults
            .call("release", self.inner.release(worker, assignment, reason))
            .await
    }
}
