//! The `WorkQueue` conformance suite on PostgreSQL: each test gets its own schema in
//! the test database. Schemas left by earlier test processes are dropped.

#![cfg(feature = "postgres")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::PostgresQueue;
use sqlx::Connection;
use tokio::sync::OnceCell;

mod common;

/// Drops the schemas of test processes that have exited, once per process.
async fn drop_stale_schemas() {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let mut conn = sqlx::PgConnection::connect(&common::postgres_url())
            .await
            .expect("connect to the test PostgreSQL (scripts/services.sh starts it)");
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'scrum\\_test\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for name in names.into_iter().filter(|n| common::owner_gone(n)) {
            let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
        }
    })
    .await;
}

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    drop_stale_schemas().await;
    let queue = PostgresQueue::connect_in_schema(
        &common::postgres_url(),
        &common::unique_name(),
        policy,
        jitter,
    )
    .await
    .expect("connect to the test PostgreSQL (scripts/services.sh starts it)");
    Arc::new(queue)
}

scrum_core::queue_conformance!(make, shared);

async fn connect(schema: &str) -> Arc<dyn WorkQueue> {
    let queue = PostgresQueue::connect_in_schema(
        &common::postgres_url(),
        schema,
        scrum_core::conformance::queue::policy(),
        scrum_core::conformance::queue::jitter(),
    )
    .await
    .expect("connect to the test PostgreSQL (scripts/services.sh starts it)");
    Arc::new(queue)
}

async fn make_store() -> common::SharedStore {
    drop_stale_schemas().await;
    common::SharedStore::fresh(|n| Box::pin(async move { connect(&n).await })).await
}

scrum_core::registry_conformance!(make_store);
