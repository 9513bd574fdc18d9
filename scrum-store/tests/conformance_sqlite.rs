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
