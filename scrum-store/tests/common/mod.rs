//! Helpers the store tests share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name starts with `tag`.
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "scrum-store-{tag}-{}-{n}-{:x}",
            std::process::id(),
            fastrand_u64()
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A random-enough number from the standard library's hasher seed.
pub(crate) fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// The PostgreSQL the tests use: `SCRUM_TEST_POSTGRES_URL`, else the local test
/// server (`scripts/services.sh` starts it).
pub(crate) fn postgres_url() -> String {
    std::env::var("SCRUM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The Redis the tests use: `SCRUM_TEST_REDIS_URL`, else the local test server.
pub(crate) fn redis_url() -> String {
    std::env::var("SCRUM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string())
}

/// A name unique to this process and call, for a PostgreSQL schema or a Redis key
/// prefix: `scrum_test_<pid>_<n>_<random>`.
pub(crate) fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "scrum_test_{}_{n}_{:x}",
        std::process::id(),
        fastrand_u64() & 0xffff_ffff
    )
}

/// Whether the test process `pid` that made a `unique_name` has exited.
pub(crate) fn owner_gone(name: &str) -> bool {
    let pid = name
        .strip_prefix("scrum_test_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod shared;

/// Drops the PostgreSQL schema a test worked in, with everything in it.
#[cfg(feature = "postgres")]
pub(crate) async fn drop_schema(conn: &mut sqlx::PgConnection, schema: &str) {
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(conn)
        .await
        .unwrap();
}

/// Deletes every Redis key under the prefix a test worked in.
#[cfg(feature = "redis")]
pub(crate) async fn drop_prefix(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{prefix}}}:*"))
        .query_async(conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(conn).await.unwrap();
    }
}

/// How a shared store's test connects a queue to the namespace (schema or key
/// prefix) it names.
pub(crate) type Connect = fn(
    String,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = std::sync::Arc<dyn scrum_core::WorkQueue>> + Send>,
>;

/// The registry suite's fixture on a shared store (PostgreSQL, Redis): a fresh
/// namespace; opened again, a second queue on it, as another orchestrator's.
pub(crate) struct SharedStore {
    namespace: String,
    queue: std::sync::Arc<dyn scrum_core::WorkQueue>,
    connect: Connect,
}

impl SharedStore {
    /// A queue on a namespace of its own.
    pub(crate) async fn fresh(connect: Connect) -> SharedStore {
        let namespace = unique_name();
        let queue = connect(namespace.clone()).await;
        SharedStore {
            namespace,
            queue,
            connect,
        }
    }
}

#[async_trait::async_trait]
impl scrum_core::conformance::workers::RegistryFixture for SharedStore {
    fn queue(&self) -> std::sync::Arc<dyn scrum_core::WorkQueue> {
        self.queue.clone()
    }

    async fn reopen(&mut self) {
        self.queue = (self.connect)(self.namespace.clone()).await;
    }
}
