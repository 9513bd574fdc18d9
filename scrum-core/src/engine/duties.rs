//! The leader's duties: the leader lease, the lease reaper, and the loops that run
//! the poll, the reaper, the dispatcher and the probe until shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Orchestrator, lock};
use crate::error::Result;
use crate::model::Task;
use crate::observe::AttemptEnd;

impl Orchestrator {
    /// Takes or renews the leader lease; records and returns whether this
    /// orchestrator leads. A store error counts as not leading.
    pub(crate) async fn leading(&self) -> bool {
        let c = &self.inner.config;
        let leads = match self
            .inner
            .queue
            .lead(&c.instance, c.leader_ttl, self.now())
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the leader lease");
                false
            }
        };
        let was = std::mem::replace(&mut lock(&self.inner.status).leader, leads);
        if was != leads {
            tracing::info!(instance = %c.instance, leader = leads, "leadership changed");
        }
        leads
    }

    /// Ends every lapsed lease as a failed attempt and returns the tasks it ended;
    /// then drops the workers unseen for [`super::EngineConfig::worker_forget_after`] that
    /// hold nothing.
    pub async fn reap_once(&self) -> Result<Vec<Task>> {
        let now = self.now();
        let expired = self.inner.queue.expire(now).await?;
        if !expired.is_empty() {
            let mut local = lock(&self.inner.local);
            let observer = self.observer();
            for t in &expired {
                tracing::warn!(task = %t.id, state = ?t.state(), "lease lapsed: worker lost");
                local.drop_task(&t.id);
                observer.attempt_ended(t, AttemptEnd::Lost, now);
            }
        }
        // Tasks back from a lapsed lease, or whose backoff ended, may be claimable.
        self.inner.wake();
        self.forget_workers(now).await;
        Ok(expired)
    }

    /// Runs the leader's duties (poll, reap, dispatch, probe) until `shutdown`
    /// completes. Each duty runs in its own loop, so a slow GitHub never delays
    /// the reaper; each round first takes or renews the leader lease.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let stop = CancellationToken::new();
        let c = &self.inner.config;
        let mut loops = tokio::task::JoinSet::new();
        let duties: [(Duty, Duration); 4] = [
            (Duty::Poll, c.poll_interval),
            (Duty::Reap, c.reap_interval),
            (Duty::Dispatch, c.dispatch_interval),
            (Duty::Probe, c.probe_interval),
        ];
        for (duty, every) in duties {
            let (this, stop) = (self.clone(), stop.clone());
            loops.spawn(async move { this.duty_loop(duty, every, stop).await });
        }
        for target in self.inner.notifier.iter().flat_map(|n| n.targets()) {
            let (this, stop) = (self.clone(), stop.clone());
            loops.spawn(async move { this.notify_loop(target, stop).await });
        }
        shutdown.await;
        stop.cancel();
        while loops.join_next().await.is_some() {}
        // Stopping cleanly: another orchestrator takes over at its next round.
        if lock(&self.inner.status).leader {
            match self.inner.queue.resign(&c.instance, self.now()).await {
                Ok(()) => tracing::info!(instance = %c.instance, "gave up the leader lease"),
                Err(e) => tracing::warn!(error = %e, "could not give up the leader lease"),
            }
        }
    }

    async fn duty_loop(&self, duty: Duty, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
                () = self.inner.poll_requested.notified(), if duty == Duty::Poll => {}
            }
            if !self.leading().await {
                continue;
            }
            let round = async {
                match duty {
                    Duty::Poll => self.poll_once().await.map(|_| ()),
                    Duty::Reap => self.reap_once().await.map(|_| ()),
                    Duty::Dispatch => self.dispatch_once().await.map(|_| ()),
                    Duty::Probe => {
                        self.probe_once().await;
                        Ok(())
                    }
                }
            };
            // A stop does not wait for the round: every step of a round is stored
            // or idempotent (a write-back round of spaced writes can take minutes,
            // past a service manager's stop timeout), so the round left off is
            // taken up again, as after a crash, by the next leader.
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = round => result,
            };
            if let Err(e) = result {
                tracing::warn!(duty = ?duty, error = %e, "round failed; retrying next round");
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Duty {
    Poll,
    Reap,
    Dispatch,
    Probe,
}
