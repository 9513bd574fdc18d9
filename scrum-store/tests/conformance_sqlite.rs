//! The `WorkQueue` conformance suite on SQLite: each test gets a fresh file.

#![cfg(feature = "sqlite")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::{Durability, SqliteQueue};

mod common;

/// Each test's store lives as long as the test process, so the files go under
/// cargo's per-target scratch directory, emptied once per run, not into /tmp.
fn store_path() -> std::path::PathBuf {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let root = ROOT.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-sqlite");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create the conformance directory");
        root
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.join(format!("store-{n}.sqlite3"))
}

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    let queue = SqliteQueue::open_with(store_path(), Durability::default(), policy, jitter)
        .await
        .expect("open a fresh SQLite store");
    Arc::new(queue)
}

scrum_core::queue_conformance!(make);

/// A fresh file, closed and opened again as after a restart.
struct SqliteStore {
    path: std::path::PathBuf,
    queue: Option<Arc<SqliteQueue>>,
}

async fn open_store(path: &std::path::Path) -> Arc<SqliteQueue> {
    let policy = scrum_core::conformance::queue::policy();
    let jitter = scrum_core::conformance::queue::jitter();
    let queue = SqliteQueue::open_with(path, Durability::default(), policy, jitter)
        .await
        .expect("open the SQLite store");
    Arc::new(queue)
}

#[async_trait::async_trait]
impl scrum_core::conformance::workers::RegistryFixture for SqliteStore {
    fn queue(&self) -> Arc<dyn WorkQueue> {
        self.queue.clone().expect("an open store")
    }

    async fn reopen(&mut self) {
        let queue = self.queue.take().expect("an open store");
        let queue = Arc::try_unwrap(queue).expect("the suite dropped its clones");
        queue.close().await;
        self.queue = Some(open_store(&self.path).await);
    }
}

async fn make_store() -> SqliteStore {
    let path = store_path();
    let queue = open_store(&path).await;
    SqliteStore {
        path,
        queue: Some(queue),
    }
}

scrum_core::registry_conformance!(make_store);
