//! PostgreSQL rows and Redis keys written by the release before follow-ups, whose
//! run answering a request for changes was stored as a `rework`, read back as a
//! follow-up for changes requested, round 1, and its pull request's follow-ups go on
//! from there: the run completes with its token, and the next follow-up is round 2
//! with the run before it in its history. (SQLite keeps tasks by position:
//! `sqlite::tests::format` reads the old bytes.)

#![cfg(all(feature = "postgres", feature = "redis"))]

use scrum_core::follow_up::{FollowUp, FollowUpCause};
use scrum_core::state::{Event, Jitter, Policy};
use scrum_core::{
    Completion, LeaseKind, ReadyIssue, Task, TaskFilter, TaskState, Timestamp, WorkQueue, WorkerId,
};
use scrum_store::{PostgresQueue, RedisQueue};

mod common;

const PR: &str = "https://github.com/acme/widgets/pull/9";

fn follow_up(cause: FollowUpCause, answers: &str, at: i64) -> Event {
    Event::FollowUp {
        follow_up: FollowUp::new(
            cause,
            PR,
            answers.into(),
            "alice",
            "rename foo",
            0,
            Timestamp(at),
        ),
    }
}

/// A task whose second run answers a review, claimed by a worker: as stored now.
async fn reworked_task(q: &dyn WorkQueue) -> Task {
    let issue = ReadyIssue {
        id: "acme/widgets#1".parse().unwrap(),
        title: "Issue 1".into(),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(1),
    };
    q.enqueue(issue, Timestamp(10)).await.unwrap();
    let w = WorkerId::new("w-1").unwrap();
    let t = q.claim(&w, LeaseKind::Heartbeat, Timestamp(20)).await;
    let t = t.unwrap().unwrap();
    let pr = Completion {
        pr_url: Some(PR.into()),
        ..Completion::default()
    };
    let token = t.lease().unwrap().token;
    q.complete(&t.id, token, pr, Timestamp(30)).await.unwrap();
    let review = follow_up(FollowUpCause::ChangesRequested, "r1", 40);
    q.apply(&t.id, review, Timestamp(40)).await.unwrap();
    let t = q.claim(&w, LeaseKind::Heartbeat, Timestamp(50)).await;
    t.unwrap().unwrap()
}

/// `task`'s JSON as the release before follow-ups wrote it: its run cause a
/// `rework` with a review's id and reviewer, without cause, round or history.
fn before_follow_ups(task: &Task) -> String {
    let mut json = serde_json::to_value(task).unwrap();
    let f = json["run"]["cause"]["follow_up"].take();
    json["run"]["cause"] = serde_json::json!({ "rework": {
        "pr_url": f["pr_url"], "review_id": f["answers"], "reviewer": f["author"],
        "feedback": f["feedback"], "requested_at": f["requested_at"],
    }});
    json.to_string()
}

/// What a store opened on the old row must read, and the work it goes on with.
async fn reads_back_and_goes_on(q: &dyn WorkQueue, before: &Task) {
    let after = q.list(&TaskFilter::default()).await.unwrap();
    let task = &after[0];
    let f = task.follow_up().expect("a follow-up run");
    assert_eq!(
        (f.cause, f.answers.as_str(), f.author.as_str(), f.round),
        (FollowUpCause::ChangesRequested, "r1", "alice", 1)
    );
    assert!(f.history.is_empty(), "the old form kept none");
    let token = before.lease().unwrap().token;
    let pr = Completion {
        pr_url: Some(PR.into()),
        ..Completion::default()
    };
    let done = q.complete(&task.id, token, pr, Timestamp(60)).await;
    assert_eq!(done.unwrap().state(), TaskState::Completed);
    let again = q.apply(
        &task.id,
        follow_up(FollowUpCause::ChangesRequested, "r1", 70),
        Timestamp(70),
    );
    assert_eq!(
        again.await.unwrap().run.number,
        2,
        "the review it answered starts nothing"
    );
    let checks = follow_up(FollowUpCause::Checks, "checks:abc", 80);
    let next = q.apply(&task.id, checks, Timestamp(80)).await.unwrap();
    let f = next.follow_up().unwrap();
    assert_eq!(
        (next.run.number, f.round, f.cause),
        (3, 2, FollowUpCause::Checks)
    );
    assert_eq!(f.history.last().map(|r| r.run), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_with_a_rework_read_back_as_follow_ups() {
    use sqlx::Connection;
    let schema = common::unique_name();
    let url = common::postgres_url();
    let connect =
        || PostgresQueue::connect_in_schema(&url, &schema, Policy::default(), Jitter::fixed(0.5));
    let q = connect()
        .await
        .expect("connect (scripts/services.sh starts PostgreSQL)");
    let before = reworked_task(&q).await;
    q.close().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let sql = format!("UPDATE \"{schema}\".tasks SET task = $1 WHERE number = 1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before_follow_ups(&before))
        .execute(&mut conn)
        .await
        .unwrap();
    let q = connect().await.unwrap();
    reads_back_and_goes_on(&q, &before).await;
    q.close().await;
    common::drop_schema(&mut conn, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_with_a_rework_read_back_as_follow_ups() {
    let prefix = common::unique_name();
    let url = common::redis_url();
    let connect =
        || RedisQueue::connect_with_prefix(&url, &prefix, Policy::default(), Jitter::fixed(0.5));
    let q = connect()
        .await
        .expect("connect (scripts/services.sh starts Redis)");
    let before = reworked_task(&q).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{{{prefix}}}:task:acme/widgets#{:020}", 1);
    let set: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("json")
        .arg(before_follow_ups(&before))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        set, 0,
        "{key} existed: the test writes the key the store uses"
    );
    drop(q);
    let q = connect().await.unwrap();
    reads_back_and_goes_on(&q, &before).await;
    common::drop_prefix(&mut conn, &prefix).await;
}
