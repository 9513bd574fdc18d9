//! Benches of the core: enqueue, claim+complete cycles with 10,000 and 100,000 tasks
//! waiting on the in-memory queue, and single state-machine transitions.
//!
//! `cargo bench -p scrum-benches --bench core`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scrum_core::memory::MemoryQueue;
use scrum_core::state::{self, Ctx, Event, Policy};
use scrum_core::{
    Completion, LeaseKind, LeaseToken, ReadyIssue, RepoName, TaskId, Timestamp, WorkQueue, WorkerId,
};

fn issue(repo: &RepoName, n: u64) -> ReadyIssue {
    ReadyIssue {
        id: TaskId::in_repo(repo, n),
        title: format!("Issue {n}"),
        body: "Implement the thing described here.".into(),
        labels: vec![
            "ai-ready".into(),
            ["priority:high", "bug"][n as usize % 2].into(),
        ],
        created_at: Timestamp(n as i64),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn enqueue(c: &mut Criterion) {
    let rt = runtime();
    let repo: RepoName = "acme/widgets".parse().unwrap();
    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            let q = MemoryQueue::new(Policy::default());
            let issues: Vec<_> = (1..=iters).map(|n| issue(&repo, n)).collect();
            rt.block_on(async {
                let start = Instant::now();
                for i in issues {
                    q.enqueue(i, Timestamp(0)).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// Cycles are timed in batches of this many; the queue is topped up between batches,
/// untimed, so the number waiting stays within 1 % of the target.
const BATCH: u64 = 100;

fn claim_complete(c: &mut Criterion) {
    let rt = runtime();
    let repo: RepoName = "acme/widgets".parse().unwrap();
    let worker = WorkerId::new("bench-worker").unwrap();
    let mut g = c.benchmark_group("claim_complete");
    g.throughput(Throughput::Elements(1));
    for waiting in [10_000u64, 100_000] {
        let q = MemoryQueue::new(Policy::default());
        rt.block_on(async {
            for n in 1..=waiting {
                q.enqueue(issue(&repo, n), Timestamp(0)).await.unwrap();
            }
        });
        let mut next = waiting + 1;
        g.bench_with_input(BenchmarkId::new("memory", waiting), &waiting, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(BATCH);
                        let start = Instant::now();
                        for _ in 0..n {
                            let t = q
                                .claim(&worker, LeaseKind::Heartbeat, Timestamp(1))
                                .await
                                .unwrap()
                                .unwrap();
                            let token = t.lease().as_ref().unwrap().token;
                            black_box(
                                q.complete(&t.id, token, Completion::default(), Timestamp(2))
                                    .await
                                    .unwrap(),
                            );
                        }
                        timed += start.elapsed();
                        for _ in 0..n {
                            q.enqueue(issue(&repo, next), Timestamp(0)).await.unwrap();
                            next += 1;
                        }
                        // Keep the outbox from growing without bound, as the dispatcher would.
                        for e in q.pending_effects(usize::MAX).await.unwrap() {
                            q.ack_effect(e.id, Timestamp(3)).await.unwrap();
                        }
                        left -= n;
                    }
                    timed
                })
            })
        });
    }
    g.finish();
}

fn transitions(c: &mut Criterion) {
    let policy = Policy::default();
    let repo: RepoName = "acme/widgets".parse().unwrap();
    let pending = state::new_task(issue(&repo, 1), Timestamp(0), &policy).task;
    let ctx = |now| Ctx {
        now: Timestamp(now),
        policy: &policy,
        jitter: 0.5,
    };
    let claim = Event::Claim {
        worker: WorkerId::new("w").unwrap(),
        token: LeaseToken(1),
        lease: LeaseKind::Heartbeat,
    };
    let held = state::transition(&pending, claim.clone(), &ctx(1))
        .unwrap()
        .task;
    let mut g = c.benchmark_group("transition");
    g.throughput(Throughput::Elements(1));
    g.bench_function("claim", |b| {
        b.iter(|| state::transition(black_box(&pending), claim.clone(), &ctx(1)))
    });
    g.bench_function("heartbeat", |b| {
        b.iter(|| {
            state::transition(
                black_box(&held),
                Event::Heartbeat {
                    token: LeaseToken(1),
                },
                &ctx(2),
            )
        })
    });
    g.bench_function("complete", |b| {
        let done = Event::Complete {
            token: LeaseToken(1),
            completion: Completion::default(),
        };
        b.iter(|| state::transition(black_box(&held), done.clone(), &ctx(2)))
    });
    g.bench_function("stale_token", |b| {
        b.iter(|| {
            state::transition(
                black_box(&held),
                Event::Heartbeat {
                    token: LeaseToken(2),
                },
                &ctx(2),
            )
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = enqueue, claim_complete, transitions
}
criterion_main!(benches);
