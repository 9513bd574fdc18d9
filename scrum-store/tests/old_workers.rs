//! Worker records stored before workers said their sandbox (PostgreSQL's schema
//! version 5, Redis hashes without a `sandbox` field) read back as they were, with
//! no sandbox ("never said"), and take one when the worker says it. SQLite's
//! version-6 file is opened in `src/sqlite/tests/format.rs`.

#![cfg(all(feature = "postgres", feature = "redis"))]

use std::sync::Arc;

use scrum_core::state::{Jitter, Policy};
use scrum_core::{AgentSandbox, Timestamp, WorkerId, WorkerRecord, WorkerRegistry};
use scrum_store::{PostgresQueue, RedisQueue};

mod common;

/// The record the old rows stand for: seen twice, one completion, draining.
fn old_record() -> WorkerRecord {
    WorkerRecord {
        id: WorkerId::new("w-old").unwrap(),
        address: Some("10.0.0.7".parse().unwrap()),
        first_seen: Some(Timestamp(1_000)),
        last_seen: Some(Timestamp(2_000)),
        completed: 1,
        failed: 0,
        draining: true,
        sandbox: None,
    }
}

/// What a store opened on the old record must list, and that the worker's word
/// on its sandbox is then kept beside the rest.
async fn reads_back_and_takes_a_sandbox(q: &dyn WorkerRegistry) {
    assert_eq!(q.workers().await.unwrap(), vec![old_record()]);
    let w = old_record().id;
    q.set_sandbox(&w, AgentSandbox::None).await.unwrap();
    let seen = q.worker_seen(&w, None, Timestamp(3_000)).await.unwrap();
    let expected = WorkerRecord {
        last_seen: Some(Timestamp(3_000)),
        sandbox: Some(AgentSandbox::None),
        ..old_record()
    };
    assert_eq!(seen, expected);
    assert_eq!(q.workers().await.unwrap(), vec![expected]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_workers_of_schema_5_read_back_without_a_sandbox() {
    use sqlx::Connection;
    let schema = common::unique_name();
    let url = common::postgres_url();
    let connect =
        || PostgresQueue::connect_in_schema(&url, &schema, Policy::default(), Jitter::fixed(0.5));
    let q = connect()
        .await
        .expect("connect (scripts/services.sh starts PostgreSQL)");
    q.close().await;
    // Back to schema version 5 (migration 6 only added the column), and a worker
    // row as that version wrote it.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let old = format!(
        "ALTER TABLE \"{schema}\".workers DROP COLUMN sandbox;
         DELETE FROM \"{schema}\".scrum_schema WHERE version > 5;
         INSERT INTO \"{schema}\".workers
             (id, address, first_seen, last_seen, completed, failed, draining)
             VALUES ('w-old', '10.0.0.7', 1000, 2000, 1, 0, true);"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(old))
        .execute(&mut conn)
        .await
        .unwrap();
    let q = connect().await.expect("schema 5 migrates");
    reads_back_and_takes_a_sandbox(&q).await;
    q.close().await;
    common::drop_schema(&mut conn, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_workers_without_a_sandbox_field_read_back() {
    let prefix = common::unique_name();
    let url = common::redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect (scripts/services.sh starts Redis)");
    // The worker's hash and its place in the set, as the last release wrote them.
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{{{prefix}}}:worker:w-old"))
        .arg(&[
            ("address", "10.0.0.7"),
            ("first_seen", "1000"),
            ("last_seen", "2000"),
            ("completed", "1"),
            ("draining", "1"),
        ])
        .ignore()
        .cmd("ZADD")
        .arg(format!("{{{prefix}}}:workers"))
        .arg(2000)
        .arg("w-old")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let q = Arc::new(
        RedisQueue::connect_with_prefix(&url, &prefix, Policy::default(), Jitter::fixed(0.5))
            .await
            .unwrap(),
    );
    reads_back_and_takes_a_sandbox(&*q).await;
    common::drop_prefix(&mut conn, &prefix).await;
}
