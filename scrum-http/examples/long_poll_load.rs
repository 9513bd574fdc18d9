//! Workers long-polling a real server over HTTP, each looping claim → heartbeat →
//! complete with lease tokens, while a producer queues tasks at a steady rate.
//! Reports cycles per second, `/work/next` latency, dispatch latency (task queued →
//! a waiting worker has it), and the store calls made per dispatched task.
//!
//! ```sh
//! cargo run --release -p scrum-http --example long_poll_load -- --workers 1000 --tasks 20000 --rate 500
//! ```
//!
//! Flags: `--workers N` (200), `--tasks N` (20000), `--rate N` tasks queued per second
//! (1000), `--store memory|sqlite:PATH|postgres:URL|redis:URL` (memory; PostgreSQL
//! and Redis runs work in a schema or key prefix of their own, named in the
//! output), `--server-threads N` (2). The server
//! runs on its own runtime in this process; the workers use `OrchestratorClient`
//! (reqwest) over loopback. The store is wrapped in `scrum_core::faults::Faulty`
//! (with no faults) to count its calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrum_core::engine::Orchestrator;
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::{Jitter, Policy};
use scrum_core::{Labels, ReadyIssue, TaskId, Timestamp, WorkQueue};
use scrum_http::wire::{CompleteRequest, HeartbeatRequest, LeaseMode, TaskRef};
use scrum_http::{ApiConfig, ApiState, OrchestratorClient, serve};
use scrum_store::{PostgresQueue, RedisQueue, SqliteQueue};

struct Args {
    workers: usize,
    tasks: u64,
    rate: u64,
    store: String,
    server_threads: usize,
}

fn args() -> Args {
    let mut a = Args {
        workers: 200,
        tasks: 20_000,
        rate: 1000,
        store: "memory".into(),
        server_threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" => a.workers = value().parse().expect("a number"),
            "--tasks" => a.tasks = value().parse().expect("a number"),
            "--rate" => a.rate = value().parse().expect("a number"),
            "--store" => a.store = value(),
            "--server-threads" => a.server_threads = value().parse().expect("a number"),
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    a
}

#[derive(Default)]
struct Stats {
    next_with_work: Vec<Duration>,
    next_empty: Vec<Duration>,
    dispatch: Vec<Duration>,
    heartbeat: Vec<Duration>,
    complete: Vec<Duration>,
}

fn pct(v: &mut [Duration], p: f64) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    format!("{:.2}ms", v[i].as_secs_f64() * 1000.0)
}

fn main() {
    let a = args();
    // The server on its own runtime, as it would be in its own process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.server_threads)
        .enable_all()
        .build()
        .unwrap();
    let (orchestrator, url, faults) = server_rt.block_on(async {
        let (queue, faults) = open_store(&a.store).await;
        let source = Arc::new(MemoryIssueSource::new(Labels::default()));
        let orchestrator = Orchestrator::builder(queue, source).build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = ApiState::new(orchestrator.clone(), ApiConfig::default());
        tokio::spawn(serve(listener, state, std::future::pending()));
        (orchestrator, url, faults)
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(run(a, orchestrator, url, faults));
    drop(server_rt);
}

/// The store `spec` names, wrapped to count its calls, and the counts.
async fn open_store(spec: &str) -> (Arc<dyn WorkQueue>, Box<dyn Fn() -> Calls + Send>) {
    fn counted<Q: WorkQueue + 'static>(
        q: Q,
    ) -> (Arc<dyn WorkQueue>, Box<dyn Fn() -> Calls + Send>) {
        let q = Arc::new(Faulty::new(q, Faults::default()));
        let counts = q.clone();
        (q, Box::new(move || counts.faults().calls()))
    }
    let policy = Policy::default();
    let (kind, at) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "memory" => counted(MemoryQueue::new(policy)),
        "sqlite" => counted(
            SqliteQueue::open(at, policy)
                .await
                .expect("open the SQLite store"),
        ),
        "postgres" => {
            let schema = fresh("_");
            let q = PostgresQueue::connect_in_schema(at, &schema, policy, Jitter::random());
            counted(q.await.expect("connect to PostgreSQL"))
        }
        "redis" => {
            let prefix = fresh(":");
            let q = RedisQueue::connect_with_prefix(at, &prefix, policy, Jitter::random());
            counted(q.await.expect("connect to Redis"))
        }
        other => panic!("unknown store {other}: memory, sqlite:PATH, postgres:URL or redis:URL"),
    }
}

type Calls = std::collections::BTreeMap<&'static str, u64>;

/// A schema or key prefix of this run's own, so a run starts empty.
fn fresh(separator: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("long_poll_load{separator}{secs}");
    println!("store: in {name} (drop it when done)");
    name
}

async fn run(
    a: Args,
    orchestrator: Orchestrator,
    url: String,
    calls: Box<dyn Fn() -> Calls + Send>,
) {
    let queued_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stats: Arc<Mutex<Stats>> = Arc::default();
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(tokio::sync::Notify::new());
    let client = OrchestratorClient::new(&url).unwrap();

    let mut workers = Vec::new();
    for w in 0..a.workers {
        let (client, queued_at, stats, done, all_done) = (
            client.clone(),
            queued_at.clone(),
            stats.clone(),
            done.clone(),
            all_done.clone(),
        );
        let total = a.tasks;
        workers.push(tokio::spawn(async move {
            let me = format!("load-{w}");
            let mut local = Stats::default();
            loop {
                let t0 = Instant::now();
                let got = client
                    .next_work(&me, Duration::from_secs(25), LeaseMode::Heartbeat)
                    .await
                    .expect("next");
                let t1 = Instant::now();
                let Some(work) = got else {
                    local.next_empty.push(t1 - t0);
                    continue;
                };
                local.next_with_work.push(t1 - t0);
                if let Some(q) = queued_at.lock().unwrap().remove(&work.task_id) {
                    local.dispatch.push(t1.saturating_duration_since(q));
                }
                let task = TaskRef {
                    worker_id: me.clone(),
                    issue_number: work.issue_number,
                    repository: Some(work.repository.clone()),
                    lease_token: Some(work.lease_token.clone()),
                };
                let t2 = Instant::now();
                client
                    .heartbeat(&HeartbeatRequest { task: task.clone() })
                    .await
                    .expect("heartbeat");
                let t3 = Instant::now();
                local.heartbeat.push(t3 - t2);
                client
                    .complete(&CompleteRequest {
                        task,
                        pr_url: Some("https://github.com/acme/widgets/pull/1".into()),
                        success: true,
                        error: None,
                        cost_usd: None,
                        tokens: None,
                        revisions: None,
                    })
                    .await
                    .expect("complete");
                local.complete.push(t3.elapsed());
                if done.fetch_add(1, Ordering::SeqCst) + 1 == total {
                    all_done.notify_one();
                }
                // Merge every cycle: workers are aborted mid-poll at the end.
                merge(&stats, &mut local);
            }
        }));
    }
    // Let every worker reach its first long poll before queuing.
    while orchestrator
        .reads()
        .workers()
        .await
        .expect("list workers")
        .len()
        < a.workers
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let calls_before = calls();
    let started = Instant::now();
    let producer = {
        let (orchestrator, queued_at) = (orchestrator.clone(), queued_at.clone());
        let (tasks, rate) = (a.tasks, a.rate.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let per_tick = (rate / 100).max(1);
            let mut n = 0;
            while n < tasks {
                tick.tick().await;
                for _ in 0..per_tick.min(tasks - n) {
                    n += 1;
                    let id = TaskId::new("acme/widgets", n).unwrap();
                    queued_at
                        .lock()
                        .unwrap()
                        .insert(id.to_string(), Instant::now());
                    orchestrator
                        .enqueue(ReadyIssue {
                            id,
                            title: format!("Load issue {n}"),
                            body: String::new(),
                            labels: vec!["ai-ready".into()],
                            created_at: Timestamp(n as i64),
                        })
                        .await
                        .expect("enqueue");
                }
            }
        })
    };
    let finished = tokio::time::timeout(Duration::from_secs(600), all_done.notified()).await;
    let elapsed = started.elapsed();
    producer.abort();
    // Workers still in a long poll would wait it out; stop them and take what they
    // recorded.
    for w in &workers {
        w.abort();
    }
    for w in workers {
        let _ = w.await;
    }
    let completed = done.load(Ordering::SeqCst);
    let calls_after = calls();
    let mut s = Arc::try_unwrap(stats)
        .ok()
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_default();
    println!(
        "workers: {}  tasks: {}  queued at {}/s  completed: {}{}",
        a.workers,
        a.tasks,
        a.rate,
        completed,
        if finished.is_err() {
            " (timed out)"
        } else {
            ""
        }
    );
    println!(
        "cycles/s: {:.1} (claim -> heartbeat -> complete, {:.1?} in all)",
        completed as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    println!(
        "dispatch latency (queued -> worker has it): p50 {}  p99 {}  max {}  (n={})",
        pct(&mut s.dispatch, 0.50),
        pct(&mut s.dispatch, 0.99),
        pct(&mut s.dispatch, 1.0),
        s.dispatch.len()
    );
    println!(
        "/work/next answered with work: p50 {}  p99 {}  (n={}; includes time spent waiting)",
        pct(&mut s.next_with_work, 0.50),
        pct(&mut s.next_with_work, 0.99),
        s.next_with_work.len()
    );
    println!(
        "/work/heartbeat: p50 {}  p99 {}   /work/complete: p50 {}  p99 {}",
        pct(&mut s.heartbeat, 0.50),
        pct(&mut s.heartbeat, 0.99),
        pct(&mut s.complete, 0.50),
        pct(&mut s.complete, 0.99)
    );
    let made = diff(&calls_before, &calls_after);
    let of = |ops: &[&str]| -> u64 { ops.iter().filter_map(|op| made.get(op)).sum() };
    let dispatched = s.dispatch.len().max(1) as f64;
    println!(
        "store calls per dispatched task: {:.2} to hand it out (claims and seen times), {:.2} in all",
        of(&["claim", "worker_seen", "workers_seen"]) as f64 / dispatched,
        made.values().sum::<u64>() as f64 / dispatched
    );
    println!("store calls: {made:?}");
}

/// The calls made between two counts, of each operation that was called.
fn diff(before: &Calls, after: &Calls) -> Calls {
    after
        .iter()
        .map(|(op, n)| (*op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn merge(into: &Mutex<Stats>, local: &mut Stats) {
    let mut s = into.lock().unwrap();
    s.next_with_work.append(&mut local.next_with_work);
    s.next_empty.append(&mut local.next_empty);
    s.dispatch.append(&mut local.dispatch);
    s.heartbeat.append(&mut local.heartbeat);
    s.complete.append(&mut local.complete);
}
