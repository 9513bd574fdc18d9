//! PostgreSQL rows and Redis keys written by the release before named states
//! (a task stored as `TaskV5` JSON) read back as the tasks they stood for, and
//! their work goes on: a pending task is handed out, a running one completes with
//! its token, a completed one keeps its pull request.

#![cfg(all(feature = "postgres", feature = "redis"))]

use std::sync::Arc;

use scrum_core::model::{Lease, Outcome, TaskV5};
use scrum_core::state::{Jitter, Policy};
use scrum_core::{
    Completion, LeaseKind, ReadyIssue, Task, TaskFilter, TaskState, Timestamp, WorkQueue, WorkerId,
};
use scrum_store::{PostgresQueue, RedisQueue};

mod common;

/// `task` as the release before named states stored it.
fn v5(t: &Task) -> TaskV5 {
    let last = t.last_attempt();
    TaskV5 {
        id: t.id.clone(),
        issue: t.issue.clone(),
        state: t.state(),
        run: t.run.number,
        attempts: t.attempts(),
        max_attempts: t.max_attempts(),
        attempt_refunded: t.handed_back(),
        lease: last.map(|a| Lease {
            token: a.token,
            worker: a.worker.clone(),
            claimed_at: a.started_at,
            expires_at: t.lease().map_or(a.started_at, |l| l.expires_at),
            deadline: t.lease().map_or(a.started_at, |l| l.deadline),
            kind: a.lease,
        }),
        lease_end: last.and_then(|a| a.outcome).map(Outcome::ended_by),
        not_before: t.claimable_from().unwrap_or(t.run.queued_at),
        cancel_requested: false,
        last_error: t.last_error().map(str::to_string),
        completion: t.completion().cloned(),
        enqueued_at: t.run.queued_at,
        updated_at: t.updated_at,
        finished_at: t.run.finished_at,
        effects_written_at: t.run.written_at,
        approval: t.approval.clone(),
        review: None,
        cost_usd: t.spend().cost_usd,
        tokens: t.spend().tokens,
        blocked: None,
        locks: t.locks.clone(),
        rework: None,
        pull_mark: None,
    }
}

fn issue(n: u64) -> ReadyIssue {
    ReadyIssue {
        id: format!("acme/widgets#{n}").parse().unwrap(),
        title: format!("Issue {n}"),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(n as i64),
    }
}

/// Queues three tasks and leaves one pending, one running and one completed;
/// returns them as stored.
async fn three_tasks(q: &dyn WorkQueue) -> Vec<Task> {
    for n in 1..=3 {
        q.enqueue(issue(n), Timestamp(10)).await.unwrap();
    }
    let w = WorkerId::new("w-1").unwrap();
    let done = q.claim(&w, LeaseKind::Heartbeat, Timestamp(20)).await;
    let done = done.unwrap().unwrap();
    let pr = Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/9".into()),
        cost_usd: Some(1.25),
        ..Completion::default()
    };
    let token = done.lease().unwrap().token;
    q.complete(&done.id, token, pr, Timestamp(30))
        .await
        .unwrap();
    q.claim(&w, LeaseKind::Heartbeat, Timestamp(40))
        .await
        .unwrap()
        .unwrap();
    q.list(&TaskFilter::default()).await.unwrap()
}

/// What a store opened on the old rows must read, and the work it must go on
/// with.
async fn reads_back_and_goes_on(q: &dyn WorkQueue, before: &[Task]) {
    let after = q.list(&TaskFilter::default()).await.unwrap();
    assert_eq!(after.len(), 3);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(*new, Task::from_v5(v5(old)), "{} reads as it stood", old.id);
        assert_eq!(new.state(), old.state());
    }
    let by_state = |s| after.iter().find(|t| t.state() == s).unwrap();
    let completed = by_state(TaskState::Completed);
    let pr = completed.completion().unwrap().pr_url.as_deref();
    assert_eq!(pr, Some("https://github.com/acme/widgets/pull/9"));
    assert_eq!(completed.spend().cost_usd, Some(1.25));
    let running = by_state(TaskState::InProgress);
    let token = running.lease().expect("still held").token;
    let done = q
        .complete(&running.id, token, Completion::default(), Timestamp(50))
        .await
        .expect("the holder's token still completes it");
    assert_eq!(done.state(), TaskState::Completed);
    let w = WorkerId::new("w-2").unwrap();
    let next = q.claim(&w, LeaseKind::Heartbeat, Timestamp(60)).await;
    let pending = by_state(TaskState::Pending);
    assert_eq!(next.unwrap().map(|t| t.id), Some(pending.id.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_of_the_last_release_read_back() {
    use sqlx::Connection;
    let schema = common::unique_name();
    let url = common::postgres_url();
    let connect =
        || PostgresQueue::connect_in_schema(&url, &schema, Policy::default(), Jitter::fixed(0.5));
    let q = connect()
        .await
        .expect("connect (scripts/services.sh starts PostgreSQL)");
    let before = three_tasks(&q).await;
    q.close().await;
    // Each row's task as the last release wrote it; the other columns meant the same.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for t in &before {
        let sql = format!("UPDATE \"{schema}\".tasks SET task = $1 WHERE number = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(serde_json::to_string(&v5(t)).unwrap())
            .bind(t.id.number() as i64)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let q = connect().await.unwrap();
    reads_back_and_goes_on(&q, &before).await;
    q.close().await;
    common::drop_schema(&mut conn, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_of_the_last_release_read_back() {
    let prefix = common::unique_name();
    let url = common::redis_url();
    let connect =
        || RedisQueue::connect_with_prefix(&url, &prefix, Policy::default(), Jitter::fixed(0.5));
    let q = Arc::new(
        connect()
            .await
            .expect("connect (scripts/services.sh starts Redis)"),
    );
    let before = three_tasks(&*q).await;
    // Each task's JSON as the last release wrote it; its indexes meant the same.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for t in &before {
        let key = format!("{{{prefix}}}:task:{}#{:020}", t.id.repo(), t.id.number());
        let json = serde_json::to_string(&v5(t)).unwrap();
        let set: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg("json")
            .arg(json)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            set, 0,
            "{key} existed: the test writes the keys the store uses"
        );
    }
    drop(q);
    let q = connect().await.unwrap();
    reads_back_and_goes_on(&q, &before).await;
    common::drop_prefix(&mut conn, &prefix).await;
}
