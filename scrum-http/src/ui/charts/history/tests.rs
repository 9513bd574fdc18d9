use scrum_core::state::{Policy, new_task};
use scrum_core::{
    Attempt, Completion, LeaseKind, LeaseToken, Outcome, ReadyIssue, Status, Task, TaskId,
    Timestamp, WorkerId,
};

use super::*;

/// Midnight UTC, 2024-10-04.
const DAY0: i64 = 20_000 * DAY;
const MIN: i64 = 60_000;

/// 10:37 on that day.
fn now() -> Timestamp {
    Timestamp(DAY0 + 10 * HOUR + 37 * MIN)
}

/// `now` minus `minutes`.
fn ago(minutes: i64) -> Timestamp {
    Timestamp(now().0 - minutes * MIN)
}

fn task(repo: &str, n: u64, queued: Timestamp) -> Task {
    let issue = ReadyIssue {
        id: TaskId::new(repo, n).unwrap(),
        title: format!("issue {n}"),
        body: String::new(),
        labels: Vec::new(),
        created_at: Timestamp(0),
    };
    new_task(issue, queued, &Policy::default()).task
}

/// Adds an attempt by `worker` from `start` to `end` (running when `None`).
fn attempt(t: &mut Task, worker: &str, start: Timestamp, end: Option<(Timestamp, Outcome)>) {
    t.run.attempts.push(Attempt {
        number: t.run.attempts.len() as u32 + 1,
        worker: WorkerId::new(worker).unwrap(),
        token: LeaseToken(t.run.attempts.len() as u128 + 1),
        started_at: start,
        ended_at: end.map(|e| e.0),
        outcome: end.map(|e| e.1),
        error: None,
        cost_usd: None,
        tokens: None,
        lease: LeaseKind::Heartbeat,
    });
}

fn cost(t: &mut Task, usd: f64) {
    t.run.attempts.last_mut().unwrap().cost_usd = Some(usd);
}

/// The task claimed at `start` and completed at `end`.
fn completed(repo: &str, n: u64, start: Timestamp, end: Timestamp) -> Task {
    let mut t = task(repo, n, start);
    attempt(&mut t, "w-1", start, Some((end, Outcome::Completed)));
    t.status = Status::Completed {
        completion: Completion::default(),
        pull_mark: None,
        exhausted: None,
    };
    t.run.finished_at = Some(end);
    t
}

fn failed(repo: &str, n: u64, start: Timestamp, end: Timestamp) -> Task {
    let mut t = completed(repo, n, start, end);
    t.run.attempts[0].outcome = Some(Outcome::Failed);
    t.status = Status::Failed {
        reason: "the tests fail".into(),
    };
    t
}

#[test]
fn slots_are_aligned_to_their_width_and_end_with_now() {
    let hours = slots(now(), HOUR, 24);
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23].start, Timestamp(DAY0 + 10 * HOUR));
    assert!(hours[23].holds(now()));
    assert_eq!(hours[0].start, Timestamp(DAY0 - 13 * HOUR));
    assert!(hours.windows(2).all(|w| w[0].end == w[1].start));
    let days = slots(now(), DAY, 30);
    assert_eq!(days[29].start, Timestamp(DAY0));
    assert_eq!(days[0].start, Timestamp(DAY0 - 29 * DAY));
}

#[test]
fn runs_count_in_the_hour_they_finished() {
    let tasks = vec![
        completed("acme/a", 1, ago(50), ago(40)), // 09:57, the hour of 09:00
        completed("acme/a", 2, ago(30), ago(20)), // 10:17
        failed("acme/a", 3, ago(30), ago(5)),     // 10:32
        completed("acme/b", 4, ago(25 * 60), ago(25 * 60 - 1)), // a day ago: out
        task("acme/a", 5, ago(3)),                // waiting: not finished
    ];
    let hours = finished_per_hour(&tasks, now());
    let at = |i: usize| hours[i].1;
    assert_eq!(
        at(23),
        Finished {
            completed: 1,
            failed: 1
        }
    );
    assert_eq!(
        at(22),
        Finished {
            completed: 1,
            failed: 0
        }
    );
    let total: u32 = hours.iter().map(|(_, f)| f.completed + f.failed).sum();
    assert_eq!(total, 3, "{hours:?}");
}

#[test]
fn an_empty_history_draws_zeros() {
    let none: Vec<Task> = Vec::new();
    let hours = finished_per_hour(&none, now());
    assert_eq!(hours.len(), 24);
    assert!(hours.iter().all(|(_, f)| *f == Finished::default()));
    let cost = cost_per_day(&none, now(), 30);
    assert_eq!(cost.days.len(), 30);
    assert!(cost.repositories.is_empty());
    assert!(cost.amounts.iter().all(Vec::is_empty));
    let load = load(&none, now());
    assert_eq!(load.len(), 144);
    assert!(load.iter().all(|(_, l)| *l == Load::default()));
}

#[test]
fn one_repositorys_cost_is_summed_per_day_it_was_reported() {
    let mut today = completed("acme/a", 1, ago(60), ago(30));
    cost(&mut today, 0.25);
    // Two attempts: a failed one yesterday, the completion today.
    let mut retried = task("acme/a", 2, Timestamp(DAY0 - 2 * HOUR));
    let failed_at = Timestamp(DAY0 - HOUR);
    attempt(
        &mut retried,
        "w-1",
        Timestamp(DAY0 - 2 * HOUR),
        Some((failed_at, Outcome::Failed)),
    );
    cost(&mut retried, 1.0);
    attempt(
        &mut retried,
        "w-2",
        ago(20),
        Some((ago(10), Outcome::Completed)),
    );
    cost(&mut retried, 0.5);
    let unreported = completed("acme/a", 3, ago(20), ago(10));
    let c = cost_per_day(&[today, retried, unreported], now(), 30);
    assert_eq!(c.repositories, vec!["acme/a".to_string()]);
    assert_eq!(c.amounts[29], vec![0.75]);
    assert_eq!(c.amounts[28], vec![1.0]);
    assert_eq!(c.total(0), 1.75);
    assert!(c.amounts[..28].iter().all(|d| d == &vec![0.0]));
}

#[test]
fn many_repositories_show_the_costliest_and_sum_the_rest() {
    let mut tasks = Vec::new();
    for n in 1..=8u64 {
        let mut t = completed(&format!("acme/r{n}"), n, ago(30), ago(20));
        cost(&mut t, n as f64);
        tasks.push(t);
    }
    let c = cost_per_day(&tasks, now(), 30);
    assert_eq!(c.repositories.len(), MAX_REPOSITORIES);
    assert_eq!(
        c.repositories,
        [
            "acme/r8", "acme/r7", "acme/r6", "acme/r5", "acme/r4", OTHERS
        ]
    );
    // The three cheapest: 1 + 2 + 3.
    assert_eq!(c.total(5), 6.0);
    assert_eq!(c.amounts[29].iter().sum::<f64>(), 36.0);

    let two = cost_per_day(&tasks[6..], now(), 30);
    assert_eq!(two.repositories, ["acme/r8", "acme/r7"]);
    assert_eq!(two.amounts[29], vec![8.0, 7.0]);
}

#[test]
fn load_shows_the_most_waiting_and_running_in_each_slot() {
    // Slot 143 is 10:30 to 10:40; 142 is 10:20 to 10:30.
    // One task waits from 10:21 and is claimed at 10:25, and runs on.
    let mut running = task("acme/a", 1, ago(16));
    attempt(&mut running, "w-1", ago(12), None);
    running.status = running_status(&running);
    // One waits from 10:22 and never leaves the queue.
    let waiting = task("acme/a", 2, ago(15));
    // One is queued and done within the slot before: a peak that ends in it.
    let quick = completed("acme/a", 3, Timestamp(DAY0 + 10 * HOUR + 5 * MIN), ago(30));
    let l = load(&[running, waiting, quick], now());
    let at = |i: usize| l[i].1;
    assert_eq!(
        at(143),
        Load {
            waiting: 1,
            running: 1
        }
    );
    assert_eq!(
        at(142),
        Load {
            waiting: 2,
            running: 1
        }
    );
    assert_eq!(
        at(140),
        Load {
            waiting: 0,
            running: 1
        }
    );
    assert_eq!(at(139), Load::default());
}

/// Running, under the lease of its last attempt.
fn running_status(t: &Task) -> Status {
    let a = t.run.attempts.last().unwrap();
    Status::Running {
        lease: scrum_core::Lease {
            token: a.token,
            worker: a.worker.clone(),
            claimed_at: a.started_at,
            expires_at: now().plus(std::time::Duration::from_secs(60)),
            deadline: now().plus(std::time::Duration::from_secs(3600)),
            kind: LeaseKind::Heartbeat,
        },
        stop: None,
    }
}

#[test]
fn a_claim_leaves_the_queue_and_starts_at_one_instant() {
    // Queued and claimed at 10:32: it never waited.
    let at_once = completed("acme/a", 1, ago(5), ago(2));
    let l = load(std::slice::from_ref(&at_once), now());
    assert_eq!(
        l[143].1,
        Load {
            waiting: 0,
            running: 1
        }
    );
    // Another queued at 10:31 and claimed at 10:32, and runs on.
    let mut later = task("acme/a", 2, ago(6));
    attempt(&mut later, "w-2", ago(5), None);
    later.status = running_status(&later);
    let l = load(&[at_once, later], now());
    assert_eq!(
        l[143].1,
        Load {
            waiting: 1,
            running: 2
        }
    );
}

#[test]
fn a_runs_span_reaches_now_and_its_retry_while_it_is_live() {
    let mut t = task("acme/a", 1, ago(30));
    attempt(&mut t, "w-1", ago(20), Some((ago(10), Outcome::Failed)));
    t.status = Status::Scheduled {
        at: now().plus(std::time::Duration::from_secs(600)),
    };
    let span = run_span(&t, now());
    assert_eq!(span.start, ago(30));
    assert_eq!(span.end, now().plus(std::time::Duration::from_secs(600)));
    assert_eq!(fraction(span, ago(20)), 0.25);
    let done = completed("acme/a", 2, ago(30), ago(10));
    assert_eq!(run_span(&done, now()).end, ago(10));
    let fresh = task("acme/a", 3, now());
    let span = run_span(&fresh, now());
    assert!(span.end > span.start);
    assert_eq!(fraction(span, ago(60)), 0.0);
}
