//! Several orchestrators on one Redis server: claims from two processes
//! never collide, and the leader lease changes hands when the leader stops.

#![cfg(feature = "redis")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::RedisQueue;

mod common;
use common::shared;

async fn connect(prefix: &str) -> Arc<dyn WorkQueue> {
    let q = RedisQueue::connect_with_prefix(
        &common::redis_url(),
        prefix,
        Policy::default(),
        Jitter::random(),
    )
    .await
    .expect("connect to the test Redis (scripts/services.sh starts it)");
    Arc::new(q)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_claimers_in_two_processes_never_share_a_task() {
    let prefix = common::unique_name();
    let q = connect(&prefix).await;
    shared::claims_from_two_processes(q, &prefix, "claimer_in_a_child_process", 400).await;
}

/// The child half of the test above. Run alone, it checks 25 claimers in one
/// process on a store of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimer_in_a_child_process() {
    match std::env::var(shared::CHILD_STORE) {
        Ok(prefix) => shared::child_claims(connect(&prefix).await).await,
        Err(_) => {
            let q = connect(&common::unique_name()).await;
            shared::enqueue_many(&*q, 60).await;
            let mut got = shared::claim_all(q, 25, "alone").await;
            got.sort();
            got.dedup();
            assert_eq!(got.len(), 60);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_orchestrator_takes_over_a_lapsed_lead() {
    let prefix = common::unique_name();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    shared::leader_takeover(&*a, &*b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_another_orchestrator_are_seen() {
    let prefix = common::unique_name();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    shared::changes_by_another_orchestrator_are_seen(&*a, &*b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_task_take_effect_once() {
    let q = connect(&common::unique_name()).await;
    shared::concurrent_calls_on_one_task_take_effect_once(q).await;
}

/// A claimer that reserved a task and died before storing its claim: the task is
/// hidden from claims until the reservation ends, then handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_claimers_reservation_lapses() {
    use scrum_core::{LeaseKind, TaskState, Timestamp, WorkerId};

    let prefix = common::unique_name();
    let q = connect(&prefix).await;
    shared::enqueue_many(&*q, 1).await;
    // What a claimer's reservation does, done by hand: ready -> claiming.
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let popped: Vec<String> = redis::cmd("ZPOPMIN")
        .arg(format!("{{{prefix}}}:ready"))
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{{{prefix}}}:claiming"))
        .arg(shared::T0.0 + 30_000)
        .arg(&popped[0])
        .query_async(&mut con)
        .await
        .unwrap();

    let w = WorkerId::new("w").unwrap();
    let at = |ms: i64| Timestamp(shared::T0.0 + ms);
    assert!(
        q.claim(&w, LeaseKind::Heartbeat, at(1_000))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        q.claim(&w, LeaseKind::Heartbeat, at(29_999))
            .await
            .unwrap()
            .is_none()
    );
    let t = q
        .claim(&w, LeaseKind::Heartbeat, at(30_000))
        .await
        .unwrap()
        .expect("the task is claimable again");
    assert_eq!((t.state(), t.attempts()), (TaskState::InProgress, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_named_in_the_url_keeps_fleets_apart() {
    let prefix = common::unique_name();
    let url = format!("{}?prefix={prefix}", common::redis_url());
    let named = scrum_store::open(&url, Policy::default()).await.unwrap();
    let other = connect(&common::unique_name()).await;
    shared::url_namespace_keeps_fleets_apart(&*named, &*connect(&prefix).await, &*other).await;
}
