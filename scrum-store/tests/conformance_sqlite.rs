//! The `WorkQueue` conformance suite on SQLite: each test gets a fresh file in its
//! own temporary directory.

#![cfg(feature = "sqlite")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::{Durability, SqliteQueue};

mod common;

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    let dir = common::TempDir::new("conformance");
    let queue = SqliteQueue::open_with(
        dir.path().join("store.sqlite3"),
        Durability::default(),
        policy,
        jitter,
    )
    .await
    .expect("open a fresh SQLite store");
    // The directory lives as long as the test process; each test's file is its own.
    std::mem::forget(dir);
    Arc::new(queue)
}

scrum_core::queue_conformance!(make);
