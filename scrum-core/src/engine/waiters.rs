//! The line of long-polling workers.
//!
//! A task that may have become claimable wakes **one** waiting worker, the one that
//! has waited longest, not all of them: with a thousand workers long-polling, waking
//! all of them for each queued task would cost a thousand claims in the store for
//! one task. The worker that is woken looks (one claim); when it takes a task, it
//! wakes the next in line, since more may be claimable (a poll or the reaper may
//! have freed many with one wake); when it finds nothing, the chain stops there, as nothing is claimable for anyone (what holds tasks back,
//! locks and repository holds, holds them for every worker alike).
//!
//! Nothing is lost between a wake and a look:
//! - a worker joins the line before it looks, so a task queued during its look wakes
//!   it again;
//! - a worker that was woken but goes away before it looked again (its wait ended,
//!   its client hung up, its call failed) passes the wake on to the next in line;
//! - a worker that may take no work (it is draining) steps out of the line, passing
//!   on a wake it had, and waits for its drain to lift instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The workers waiting for work, in order of arrival.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    line: Mutex<Line>,
    /// Woken (all) when an operator lifts a worker's drain.
    undrained: Notify,
}

#[derive(Debug, Default)]
struct Line {
    arrivals: u64,
    waiting: BTreeMap<u64, Arc<Bell>>,
}

/// What a wake says became claimable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freed {
    /// One task (queued, released, retried): the worker woken for it wakes nobody
    /// else.
    One,
    /// Perhaps several (a poll, the reaper, a hold lifted): the worker woken for
    /// them wakes the next when it takes one.
    Several,
}

/// One waiter's bell: rung at most once per time in the line.
#[derive(Debug, Default)]
struct Bell {
    notify: Notify,
    /// 0 while not rung, else 1 + the `Freed` it was rung for.
    rung: AtomicU8,
}

impl Bell {
    fn ring(&self, freed: Freed) {
        self.rung.store(1 + freed as u8, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// What it was rung for, if it was; not rung any more.
    fn answer(&self) -> Option<Freed> {
        match self.rung.swap(0, Ordering::SeqCst) {
            0 => None,
            1 => Some(Freed::One),
            _ => Some(Freed::Several),
        }
    }
}

impl Waiters {
    /// Joins the line, at its end.
    pub(crate) fn join(&self) -> Place<'_> {
        let mut line = self.lock();
        line.arrivals += 1;
        let place = Place {
            waiters: self,
            arrival: line.arrivals,
            bell: Arc::default(),
            in_line: true,
            woken: None,
        };
        line.waiting.insert(place.arrival, place.bell.clone());
        place
    }

    /// Wakes the worker that has waited longest, if any waits: what `freed` says
    /// may have become claimable.
    pub(crate) fn wake_one(&self, freed: Freed) {
        let next = self.lock().waiting.pop_first();
        if let Some((_, bell)) = next {
            bell.ring(freed);
        }
    }

    /// Wakes the draining workers that wait: an operator lifted a drain.
    pub(crate) fn drain_lifted(&self) {
        self.undrained.notify_waiters();
    }

    /// How many workers wait in the line.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker's place in the line, from its first look until it has work or stops
/// waiting. Dropping it leaves the line, passing on a wake it did not act on.
#[derive(Debug)]
pub(crate) struct Place<'a> {
    waiters: &'a Waiters,
    arrival: u64,
    bell: Arc<Bell>,
    in_line: bool,
    /// What the wake that brought this worker to look again was for, if one did.
    woken: Option<Freed>,
}

impl Place<'_> {
    /// Waits until this worker is woken, then takes its place in the line again
    /// (where it arrived, ahead of later arrivals) before it looks.
    pub(crate) async fn woken(&mut self) {
        if self.in_line {
            self.bell.notify.notified().await;
            // Whoever rang took it out of the line.
            self.in_line = false;
        }
        // The latest wake counts: a chain for several ended when it found nothing.
        self.woken = self.bell.answer();
        self.rejoin();
    }

    /// The worker took a task: it leaves the line and, if a wake for several
    /// tasks brought it there, wakes the next waiter, as more may be claimable.
    /// A worker that found a task as it arrived, or was woken for one task, wakes
    /// nobody: a wake for another task went to a worker that looks.
    pub(crate) fn served(mut self) {
        match (self.leave(), self.woken) {
            // Rung during its look: the wake may be for a task it did not see.
            (Some(freed), _) | (None, Some(freed @ Freed::Several)) => {
                self.waiters.wake_one(freed);
            }
            _ => {}
        }
    }

    /// The worker may take no work while it drains: it leaves the line (passing on
    /// a wake it had), waits until a drain is lifted, and joins again.
    pub(crate) async fn stand_aside(&mut self) {
        let lifted = self.waiters.undrained.notified();
        tokio::pin!(lifted);
        lifted.as_mut().enable();
        self.leave_passing_on();
        lifted.await;
        self.rejoin();
    }

    fn rejoin(&mut self) {
        if !self.in_line {
            let mut line = self.waiters.lock();
            line.waiting.insert(self.arrival, self.bell.clone());
            self.in_line = true;
        }
    }

    /// Leaves the line; what it was rung for, if it was since it last joined.
    fn leave(&mut self) -> Option<Freed> {
        if !std::mem::replace(&mut self.in_line, false) {
            return None;
        }
        let removed = self.waiters.lock().waiting.remove(&self.arrival);
        let rung = self.bell.answer();
        if removed.is_some() {
            return None;
        }
        // Out of the line by a ring: a fresh bell, so the wake is passed on, not
        // kept for a later wait.
        self.bell = Arc::default();
        rung.or(Some(Freed::Several))
    }

    fn leave_passing_on(&mut self) {
        if let Some(freed) = self.leave() {
            self.waiters.wake_one(freed);
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.leave_passing_on();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn is_woken(place: &mut Place<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), place.woken())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_goes_to_the_longest_waiting_worker_only() {
        let w = Waiters::default();
        let (mut first, mut second) = (w.join(), w.join());
        w.wake_one(Freed::Several);
        assert!(is_woken(&mut first).await);
        assert!(!is_woken(&mut second).await, "only one worker is woken");
        // Back in the line where it arrived: the next wake is its again.
        w.wake_one(Freed::Several);
        assert!(is_woken(&mut first).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_served_worker_wakes_the_next() {
        let w = Waiters::default();
        let (mut first, mut second) = (w.join(), w.join());
        w.wake_one(Freed::Several);
        assert!(is_woken(&mut first).await);
        first.served();
        assert!(is_woken(&mut second).await);
        assert_eq!(w.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_woken_for_one_task_wakes_nobody_when_it_takes_it() {
        let w = Waiters::default();
        let (mut first, mut second) = (w.join(), w.join());
        w.wake_one(Freed::One);
        assert!(is_woken(&mut first).await);
        first.served();
        assert!(!is_woken(&mut second).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_served_as_it_arrived_wakes_nobody() {
        let w = Waiters::default();
        let mut waiting = w.join();
        w.join().served();
        assert!(!is_woken(&mut waiting).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_a_worker_did_not_act_on_passes_on_when_it_leaves() {
        let w = Waiters::default();
        let (first, mut second) = (w.join(), w.join());
        w.wake_one(Freed::Several);
        drop(first);
        assert!(is_woken(&mut second).await);
    }

    #[tokio::test(start_paused = true)]
    async fn leaving_unwoken_wakes_nobody() {
        let w = Waiters::default();
        let (first, mut second) = (w.join(), w.join());
        drop(first);
        assert!(!is_woken(&mut second).await);
        assert_eq!(w.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_draining_worker_passes_its_wake_on_and_waits_for_the_drain_to_lift() {
        let w = Waiters::default();
        let (mut draining, mut other) = (w.join(), w.join());
        w.wake_one(Freed::Several);
        let lifted = tokio::time::timeout(Duration::from_millis(50), draining.stand_aside()).await;
        assert!(lifted.is_err(), "still draining");
        assert!(is_woken(&mut other).await, "the wake went on");
        let waits = async {
            draining.stand_aside().await;
        };
        let lift = async {
            tokio::task::yield_now().await;
            w.drain_lifted();
        };
        tokio::join!(waits, lift);
        assert_eq!(w.len(), 2, "back in the line");
    }
}
