//! The `WorkQueue` conformance suite on Redis: each test gets its own key prefix.
//! Keys left by earlier test processes are deleted.

#![cfg(feature = "redis")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::RedisQueue;
use tokio::sync::OnceCell;

mod common;

/// Deletes the keys of test processes that have exited, once per process.
async fn drop_stale_keys() {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let client = redis::Client::open(common::redis_url()).unwrap();
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test Redis (scripts/services.sh starts it)");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("{scrum_test_*")
            .query_async(&mut con)
            .await
            .unwrap();
        let stale: Vec<&String> = keys
            .iter()
            .filter(|k| common::owner_gone(k.trim_start_matches('{')))
            .collect();
        for chunk in stale.chunks(500) {
            let _: redis::RedisResult<i64> =
                redis::cmd("DEL").arg(chunk).query_async(&mut con).await;
        }
    })
    .await;
}

async fn make(policy: Policy, jitter: Jitter) -> Arc<dyn WorkQueue> {
    drop_stale_keys().await;
    let queue = RedisQueue::connect_with_prefix(
        &common::redis_url(),
        &common::unique_name(),
        policy,
        jitter,
    )
    .await
    .expect("connect to the test Redis (scripts/services.sh starts it)");
    Arc::new(queue)
}

scrum_core::queue_conformance!(make, shared);

async fn connect(prefix: &str) -> Arc<dyn WorkQueue> {
    let queue = RedisQueue::connect_with_prefix(
        &common::redis_url(),
        prefix,
        scrum_core::conformance::queue::policy(),
        scrum_core::conformance::queue::jitter(),
    )
    .await
    .expect("connect to the test Redis (scripts/services.sh starts it)");
    Arc::new(queue)
}

async fn make_store() -> common::SharedStore {
    drop_stale_keys().await;
    common::SharedStore::fresh(|n| Box::pin(async move { connect(&n).await })).await
}

scrum_core::registry_conformance!(make_store);
