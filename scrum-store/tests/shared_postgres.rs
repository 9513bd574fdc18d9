//! Several orchestrators on one PostgreSQL database: claims from two processes
//! never collide, and the leader lease changes hands when the leader stops.

#![cfg(feature = "postgres")]

use std::sync::Arc;

use scrum_core::WorkQueue;
use scrum_core::state::{Jitter, Policy};
use scrum_store::PostgresQueue;

mod common;
use common::shared;

async fn connect(schema: &str) -> Arc<dyn WorkQueue> {
    let q = PostgresQueue::connect_in_schema(
        &common::postgres_url(),
        schema,
        Policy::default(),
        Jitter::random(),
    )
    .await
    .expect("connect to the test PostgreSQL (scripts/services.sh starts it)");
    Arc::new(q)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_claimers_in_two_processes_never_share_a_task() {
    let schema = common::unique_name();
    let q = connect(&schema).await;
    shared::claims_from_two_processes(q, &schema, "claimer_in_a_child_process", 400).await;
}

/// The child half of the test above. Run alone, it checks 25 claimers in one
/// process on a store of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimer_in_a_child_process() {
    match std::env::var(shared::CHILD_STORE) {
        Ok(schema) => shared::child_claims(connect(&schema).await).await,
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
    let schema = common::unique_name();
    let a = connect(&schema).await;
    let b = connect(&schema).await;
    shared::leader_takeover(&*a, &*b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_another_orchestrator_are_seen() {
    let schema = common::unique_name();
    let a = connect(&schema).await;
    let b = connect(&schema).await;
    shared::changes_by_another_orchestrator_are_seen(&*a, &*b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_task_take_effect_once() {
    let q = connect(&common::unique_name()).await;
    shared::concurrent_calls_on_one_task_take_effect_once(q).await;
}

/// A claimer that reserved a task and died before storing its claim: the task is
/// hidden from claims until the reaper ends the reservation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_claimers_reservation_is_undone_by_the_reaper() {
    use scrum_core::{LeaseKind, TaskState, Timestamp, WorkerId};
    use sqlx::Connection;

    let schema = common::unique_name();
    let q = connect(&schema).await;
    shared::enqueue_many(&*q, 1).await;
    // What a claimer does first, done by hand: the reservation, and nothing after.
    let mut conn = sqlx::PgConnection::connect(&common::postgres_url())
        .await
        .unwrap();
    let reserved_until = shared::T0.0 + 30_000;
    let sql = format!(
        "UPDATE \"{schema}\".tasks SET claimable = false, reserved_until = {reserved_until}"
    );
    let reserved = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(reserved.rows_affected(), 1);
    conn.close().await.unwrap();

    let w = WorkerId::new("w").unwrap();
    let at = |ms: i64| Timestamp(shared::T0.0 + ms);
    assert!(
        q.claim(&w, LeaseKind::Heartbeat, at(1_000))
            .await
            .unwrap()
            .is_none()
    );
    // Before the reservation ends the reaper leaves it; after, the task is back.
    q.expire(at(29_999)).await.unwrap();
    assert!(
        q.claim(&w, LeaseKind::Heartbeat, at(29_999))
            .await
            .unwrap()
            .is_none()
    );
    q.expire(at(30_000)).await.unwrap();
    let t = q
        .claim(&w, LeaseKind::Heartbeat, at(30_001))
        .await
        .unwrap()
        .expect("the task is claimable again");
    assert_eq!((t.state(), t.attempts()), (TaskState::InProgress, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_named_in_the_url_keeps_fleets_apart() {
    let schema = common::unique_name();
    let url = format!("{}?schema={schema}", common::postgres_url());
    let named = scrum_store::open(&url, Policy::default()).await.unwrap();
    let other = connect(&common::unique_name()).await;
    shared::url_namespace_keeps_fleets_apart(&*named, &*connect(&schema).await, &*other).await;
}
