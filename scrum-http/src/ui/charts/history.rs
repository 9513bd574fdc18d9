//! The figures the charts draw, computed from task records alone (each task's run
//! and its attempts), so every orchestrator on a store draws the same charts and a
//! restart loses none of them. Pure functions of the tasks and `now`; times are
//! bucketed in UTC slots aligned to their width (hours start on the hour, days at
//! midnight UTC), the last slot holding `now`.
//!
//! What the records cannot tell: a task keeps only its current run, so the earlier
//! run of an issue queued again (a retry, a rework, the ready label put back)
//! leaves these figures when the new run starts.

use std::collections::BTreeMap;

use scrum_core::{Status, Task, TaskState, Timestamp};

/// Milliseconds in ten minutes.
pub(crate) const TEN_MINUTES: i64 = 600_000;
/// Milliseconds in an hour.
pub(crate) const HOUR: i64 = 3_600_000;
/// Milliseconds in a day.
pub(crate) const DAY: i64 = 86_400_000;

/// The most repositories the cost chart names; the rest are summed as one.
pub(crate) const MAX_REPOSITORIES: usize = 6;
/// The name of the sum of the repositories past [`MAX_REPOSITORIES`].
pub(crate) const OTHERS: &str = "other repositories";

/// A span of time, `start` included, `end` not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
}

impl Slot {
    fn holds(self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// `count` slots of `width` milliseconds, oldest first, aligned to multiples of
/// `width` since the epoch; the last one holds `now`.
pub(crate) fn slots(now: Timestamp, width: i64, count: usize) -> Vec<Slot> {
    let last = now.0.div_euclid(width) * width;
    (0..count as i64)
        .rev()
        .map(|back| {
            let start = last - back * width;
            Slot {
                start: Timestamp(start),
                end: Timestamp(start + width),
            }
        })
        .collect()
}

/// Which of `slots` (consecutive, of one width) holds `t`.
fn slot_of(slots: &[Slot], t: Timestamp) -> Option<usize> {
    let first = slots.first()?;
    let width = first.end.0 - first.start.0;
    let i = usize::try_from((t.0 - first.start.0).div_euclid(width)).ok()?;
    (i < slots.len()).then_some(i)
}

/// Runs that finished in one slot: completed, and failed for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Finished {
    pub(crate) completed: u32,
    pub(crate) failed: u32,
}

/// Completed and failed runs per hour over the last day (24 slots), by the time
/// each run finished.
pub(crate) fn finished_per_hour(tasks: &[Task], now: Timestamp) -> Vec<(Slot, Finished)> {
    let hours = slots(now, HOUR, 24);
    let mut counts = vec![Finished::default(); hours.len()];
    for t in tasks {
        let Some(i) = t.finished_at().and_then(|at| slot_of(&hours, at)) else {
            continue;
        };
        match t.state() {
            TaskState::Completed => counts[i].completed += 1,
            TaskState::Failed => counts[i].failed += 1,
            _ => {}
        }
    }
    hours.into_iter().zip(counts).collect()
}

/// What attempts cost per day, per repository.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CostPerDay {
    /// The days, oldest first; the last is today (UTC).
    pub(crate) days: Vec<Slot>,
    /// The repositories with a cost in the window, the most costly first; past
    /// [`MAX_REPOSITORIES`], the rest are summed as [`OTHERS`].
    pub(crate) repositories: Vec<String>,
    /// `amounts[day][repository]`, in US dollars.
    pub(crate) amounts: Vec<Vec<f64>>,
}

impl CostPerDay {
    /// What repository `r` cost over the whole window.
    pub(crate) fn total(&self, r: usize) -> f64 {
        self.amounts.iter().map(|day| day[r]).sum()
    }
}

/// What attempts cost per day over the last `days` days, per repository: each
/// attempt's reported cost counts on the day it ended (or began, while it runs).
pub(crate) fn cost_per_day(tasks: &[Task], now: Timestamp, days: usize) -> CostPerDay {
    let window = slots(now, DAY, days);
    let mut by_repo: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for t in tasks {
        for a in &t.run.attempts {
            let (Some(usd), Some(day)) = (
                a.cost_usd.filter(|c| *c > 0.0),
                slot_of(&window, a.ended_at.unwrap_or(a.started_at)),
            ) else {
                continue;
            };
            let days = by_repo
                .entry(t.id.repo())
                .or_insert_with(|| vec![0.0; window.len()]);
            days[day] += usd;
        }
    }
    let mut repos: Vec<(&str, Vec<f64>)> = by_repo.into_iter().collect();
    repos.sort_by(|a, b| {
        let (ta, tb) = (a.1.iter().sum::<f64>(), b.1.iter().sum::<f64>());
        tb.total_cmp(&ta).then_with(|| a.0.cmp(b.0))
    });
    if repos.len() > MAX_REPOSITORIES {
        let rest = repos.split_off(MAX_REPOSITORIES - 1);
        let mut summed = vec![0.0; window.len()];
        for (_, days) in rest {
            summed.iter_mut().zip(days).for_each(|(s, d)| *s += d);
        }
        repos.push((OTHERS, summed));
    }
    let amounts = (0..window.len())
        .map(|day| repos.iter().map(|(_, days)| days[day]).collect())
        .collect();
    CostPerDay {
        days: window,
        repositories: repos.iter().map(|(r, _)| r.to_string()).collect(),
        amounts,
    }
}

/// The most tasks waiting (pending) and running at once within one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Load {
    pub(crate) waiting: u32,
    pub(crate) running: u32,
}

/// A change of the counts at one time: waiting and running, up or down.
type Change = (Timestamp, i64, i64);

/// When a task waited and ran: it waits from its run's queueing to its end, except
/// while an attempt of it runs (a running attempt runs on).
fn changes(t: &Task, out: &mut Vec<Change>) {
    out.push((t.run.queued_at, 1, 0));
    if let Some(end) = t.finished_at() {
        out.push((end, -1, 0));
    }
    for a in &t.run.attempts {
        out.push((a.started_at, -1, 1));
        let end = a.ended_at.or_else(|| match t.status {
            Status::Running { .. } => None,
            _ => t.finished_at(),
        });
        if let Some(end) = end {
            out.push((end, 1, -1));
        }
    }
}

/// The most tasks waiting and running at once in each ten minutes of the last day
/// (144 slots): the queue's depth and the busy workers (a worker runs one task at
/// a time), derived from the runs' queueing and end times and their attempts.
pub(crate) fn load(tasks: &[Task], now: Timestamp) -> Vec<(Slot, Load)> {
    let window = slots(now, TEN_MINUTES, 144);
    let mut all = Vec::new();
    for t in tasks {
        changes(t, &mut all);
    }
    all.sort_by_key(|c| c.0);
    let (mut waiting, mut running) = (0i64, 0i64);
    let mut next = all.iter().peekable();
    let mut out = Vec::with_capacity(window.len());
    let start = window.first().map_or(now, |s| s.start);
    while let Some((_, w, r)) = next.next_if(|c| c.0 < start) {
        (waiting, running) = (waiting + w, running + r);
    }
    for slot in window {
        let mut peak = Load {
            waiting: clamp(waiting),
            running: clamp(running),
        };
        while let Some(&&(at, _, _)) = next.peek().filter(|c| slot.holds(c.0)) {
            // Every change at one instant first: a claim is one task leaving the
            // queue and starting, never both at once nor neither.
            while let Some((_, w, r)) = next.next_if(|c| c.0 == at) {
                (waiting, running) = (waiting + w, running + r);
            }
            peak.waiting = peak.waiting.max(clamp(waiting));
            peak.running = peak.running.max(clamp(running));
        }
        out.push((slot, peak));
    }
    out
}

fn clamp(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The span a run's attempt chart covers: from its queueing to its end, or to
/// `now` (and any scheduled retry) while it is live. Never empty.
pub(crate) fn run_span(t: &Task, now: Timestamp) -> Slot {
    let start = t.run.queued_at;
    let mut end = t.finished_at().unwrap_or(now);
    for a in &t.run.attempts {
        end = end.max(a.ended_at.unwrap_or(a.started_at));
    }
    if let Status::Scheduled { at } = t.status {
        end = end.max(at);
    }
    Slot {
        start,
        end: end.max(Timestamp(start.0 + 1000)),
    }
}

/// Where `t` falls in `span`, from 0 (its start) to 1 (its end), clamped.
pub(crate) fn fraction(span: Slot, t: Timestamp) -> f64 {
    let width = (span.end.0 - span.start.0).max(1) as f64;
    ((t.0 - span.start.0) as f64 / width).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests;
