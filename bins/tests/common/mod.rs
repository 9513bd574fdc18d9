//! What the black-box tests on shared stores share: the test servers, a store of
//! their own on them (a PostgreSQL schema, a Redis key prefix) and its removal
//! afterwards, pass or fail.
//!
//! `SCRUM_TEST_POSTGRES_URL` and `SCRUM_TEST_REDIS_URL` point the tests elsewhere
//! (`scripts/services.sh` starts the local servers they use by default).

#![allow(dead_code)]

use std::future::Future;

use scrum_bins::fleet::Fleet;
use sqlx::Connection;

/// The test PostgreSQL.
pub(crate) fn postgres_base() -> String {
    std::env::var("SCRUM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The test Redis.
pub(crate) fn redis_base() -> String {
    std::env::var("SCRUM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string())
}

/// A schema or prefix name of this test process: `scrum_test_<pid>_<tag>`, which
/// the store tests' sweep removes should the process die before cleaning up.
pub(crate) fn store_name(tag: &str) -> String {
    format!("scrum_test_{}_{tag}", std::process::id())
}

/// `url` with one more query parameter.
pub(crate) fn with_param(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={value}")
}

/// Runs `scenario` as a task of its own, then `clean_up`, then fails as the
/// scenario did, if it did: the store is removed pass or fail (the scenario's
/// processes are killed first, when its fleet is dropped).
pub(crate) async fn then_clean_up(
    scenario: impl Future<Output = ()> + Send + 'static,
    clean_up: impl Future<Output = ()>,
) {
    let outcome = tokio::spawn(scenario).await;
    clean_up.await;
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed.into_panic());
    }
}

/// Drops `schema` from the PostgreSQL at `base`.
pub(crate) async fn drop_schema(base: &str, schema: &str) {
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Deletes every key under `prefix` from the Redis at `base`.
pub(crate) async fn delete_prefix(base: &str, prefix: &str) {
    let mut con = redis::Client::open(base)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    for chunk in keys.chunks(500) {
        let _: i64 = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut con)
            .await
            .unwrap();
    }
}

/// Fails the test with `what` and the last lines of the logs of the fleet's
/// processes `names`.
pub(crate) fn fail_with_logs(fleet: &Fleet, names: &[&str], what: &str) -> ! {
    let mut logs = String::new();
    for name in names {
        let log = std::fs::read_to_string(fleet.log(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        logs.push_str(&format!(
            "\n--- {name} (last lines) ---\n{}",
            tail.join("\n")
        ));
    }
    panic!("{what}{logs}");
}
