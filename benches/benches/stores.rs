//! Claim+complete cycles on every `WorkQueue` store in one run: memory, SQLite (as
//! shipped: WAL, `synchronous = NORMAL`; and with `synchronous = FULL`), PostgreSQL
//! (as shipped: the server's flush on every commit; and with `?synchronous=normal`,
//! `synchronous_commit = off` for the queue's sessions) and Redis (the server's
//! persistence settings).
//!
//! `cargo bench -p scrum-benches --bench stores`
//!
//! Each timed iteration is one cycle: a claim and the completion of the claimed
//! task, each a durable transaction with its outbox rows. Tasks are enqueued
//! untimed before each sample; `claimers` tasks claim and complete concurrently.
//! PostgreSQL and Redis are the local test servers (`scripts/services.sh`), or
//! `SCRUM_BENCH_POSTGRES_URL` / `SCRUM_BENCH_REDIS_URL`; each run works in a schema
//! or key prefix of its own and removes it at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scrum_core::memory::MemoryQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_core::{
    Completion, LeaseKind, ReadyIssue, RepoName, TaskId, Timestamp, WorkQueue, WorkerId,
};
use scrum_store::{Durability, PostgresQueue, RedisQueue, SqliteQueue};
use sqlx::Connection;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn postgres_url() -> String {
    std::env::var("SCRUM_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("SCRUM_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A name no other run uses, for a schema, key prefix or directory.
fn run_name() -> String {
    format!("scrum_bench_{}", std::process::id())
}

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

const NOW: Timestamp = Timestamp(1_800_000_000_000);

/// Enqueues `iters` fresh tasks (untimed), then times `claimers` concurrent loops
/// that claim and complete until all are done.
async fn cycles(q: Arc<dyn WorkQueue>, next: &AtomicU64, iters: u64, claimers: u64) -> Duration {
    let repo: RepoName = "acme/widgets".parse().unwrap();
    let first = next.fetch_add(iters, Ordering::Relaxed);
    for n in first..first + iters {
        q.enqueue(issue(&repo, n), NOW).await.unwrap();
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..claimers {
        // Claimer `c` does its share of the cycles; together exactly `iters`.
        let share = iters / claimers + u64::from(c < iters % claimers);
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let worker = WorkerId::new(&format!("bench-{c}")).unwrap();
            for _ in 0..share {
                let t = q
                    .claim(&worker, LeaseKind::Heartbeat, NOW)
                    .await
                    .unwrap()
                    .expect("a task to claim");
                let token = t.lease().as_ref().unwrap().token;
                q.complete(&t.id, token, Completion::default(), NOW)
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    start.elapsed()
}

fn claim_complete(c: &mut Criterion) {
    let rt = runtime();
    let name = run_name();
    let dir = std::env::temp_dir().join(&name);
    let mut stores: Vec<(&str, u64, Arc<dyn WorkQueue>)> = rt.block_on(async {
        let policy = Policy::default();
        let sqlite = SqliteQueue::open(dir.join("bench.sqlite3"), policy.clone())
            .await
            .unwrap();
        // The same with every commit flushed to disk (`?synchronous=full`).
        let sqlite_full = SqliteQueue::open_with(
            dir.join("bench-full.sqlite3"),
            Durability::Power,
            policy.clone(),
            Jitter::random(),
        )
        .await
        .unwrap();
        let pg = PostgresQueue::connect_in_schema(
            &postgres_url(),
            &name,
            policy.clone(),
            Jitter::random(),
        )
        .await
        .expect("PostgreSQL for the bench (scripts/services.sh starts it)");
        let pg_normal = PostgresQueue::connect_in_schema(
            &format!("{}?synchronous=normal", postgres_url()),
            &format!("{name}_normal"),
            policy.clone(),
            Jitter::random(),
        )
        .await
        .expect("PostgreSQL for the bench");
        let redis =
            RedisQueue::connect_with_prefix(&redis_url(), &name, policy.clone(), Jitter::random())
                .await
                .expect("Redis for the bench (scripts/services.sh starts it)");
        let (sqlite, pg, redis): (Arc<dyn WorkQueue>, Arc<dyn WorkQueue>, Arc<dyn WorkQueue>) =
            (Arc::new(sqlite), Arc::new(pg), Arc::new(redis));
        vec![
            (
                "memory",
                1,
                Arc::new(MemoryQueue::new(policy)) as Arc<dyn WorkQueue>,
            ),
            ("sqlite", 1, sqlite.clone()),
            ("sqlite", 8, sqlite),
            (
                "sqlite_full",
                1,
                Arc::new(sqlite_full) as Arc<dyn WorkQueue>,
            ),
            ("postgres", 1, pg.clone()),
            ("postgres", 8, pg),
            (
                "postgres_normal",
                8,
                Arc::new(pg_normal) as Arc<dyn WorkQueue>,
            ),
            ("redis", 1, redis.clone()),
            ("redis", 8, redis),
        ]
    });
    let mut g = c.benchmark_group("store_claim_complete");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    let next = AtomicU64::new(1);
    for (store, claimers, q) in &stores {
        let id = BenchmarkId::new(*store, format!("{claimers}_claimers"));
        g.bench_function(id, |b| {
            b.iter_custom(|iters| rt.block_on(cycles(q.clone(), &next, iters, *claimers)))
        });
    }
    g.finish();
    stores.clear();
    rt.block_on(clean_up(&name));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes the run's PostgreSQL schema and Redis keys.
async fn clean_up(name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_url()).await {
        for schema in [name.to_string(), format!("{name}_normal")] {
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
        }
    }
    if let Ok(client) = redis::Client::open(redis_url()) {
        if let Ok(mut con) = client.get_multiplexed_async_connection().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{{{name}}}:*"))
                .query_async(&mut con)
                .await
                .unwrap_or_default();
            for chunk in keys.chunks(1000) {
                let _: redis::RedisResult<i64> =
                    redis::cmd("DEL").arg(chunk).query_async(&mut con).await;
            }
        }
    }
}

criterion_group!(benches, claim_complete);
criterion_main!(benches);
