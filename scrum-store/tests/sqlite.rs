//! What the SQLite store promises beyond the conformance suite: one owner per file,
//! versioned schema, durability across reopening.

#![cfg(feature = "sqlite")]

use scrum_core::state::Policy;
use scrum_core::{
    Completion, ErrorKind, LeaseKind, ReadyIssue, TaskState, Timestamp, WorkQueue, WorkerId,
};
use scrum_store::{SQLITE_SCHEMA_VERSION, SqliteQueue};

mod common;
use common::TempDir;

fn issue(n: u64) -> ReadyIssue {
    ReadyIssue {
        id: format!("acme/widgets#{n}").parse().unwrap(),
        title: format!("Issue {n}"),
        body: String::new(),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(n as i64),
    }
}

#[tokio::test]
async fn a_second_owner_is_refused_with_a_clear_error() {
    let dir = TempDir::new("owner");
    let path = dir.path().join("store.sqlite3");
    let first = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let err = SqliteQueue::open(&path, Policy::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.message().contains("in use by another orchestrator"),
        "{err}"
    );
    // Once the owner closes, the file can be opened again.
    first.close().await;
    SqliteQueue::open(&path, Policy::default()).await.unwrap();
}

#[tokio::test]
async fn a_file_from_a_newer_version_is_refused() {
    let dir = TempDir::new("newer");
    let path = dir.path().join("store.sqlite3");
    SqliteQueue::open(&path, Policy::default())
        .await
        .unwrap()
        .close()
        .await;
    let future = SQLITE_SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future as i64)
        .unwrap();

    let err = SqliteQueue::open(&path, Policy::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("newer"), "{err}");
    assert!(
        err.message().contains(&format!("version {future}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused() {
    let dir = TempDir::new("foreign");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "x".repeat(4096)).unwrap();
    let err = SqliteQueue::open(&text, Policy::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    let other_app = dir.path().join("other.sqlite3");
    rusqlite::Connection::open(&other_app)
        .unwrap()
        .execute_batch("CREATE TABLE photos (id INTEGER)")
        .unwrap();
    let err = SqliteQueue::open(&other_app, Policy::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains("another application"), "{err}");
}

#[tokio::test]
async fn state_and_outbox_survive_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.path().join("nested/dir/store.sqlite3");
    let worker = WorkerId::new("worker-1").unwrap();
    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    q.enqueue(issue(1), Timestamp(10)).await.unwrap();
    q.enqueue(issue(2), Timestamp(10)).await.unwrap();
    let t = q
        .claim(&worker, LeaseKind::Heartbeat, Timestamp(20))
        .await
        .unwrap()
        .unwrap();
    let token = t.lease().as_ref().unwrap().token;
    q.complete(&t.id, token, Completion::default(), Timestamp(30))
        .await
        .unwrap();
    let before_tasks = q.list(&Default::default()).await.unwrap();
    let before_effects = q.pending_effects(100).await.unwrap();
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.list(&Default::default()).await.unwrap(), before_tasks);
    assert_eq!(q.pending_effects(100).await.unwrap(), before_effects);
    assert_eq!(before_effects.len(), 3, "two queued, one completed");
    assert_eq!(
        q.get(&t.id).await.unwrap().unwrap().state(),
        TaskState::Completed
    );
    // The repeated completion is still recognised after the restart.
    q.complete(&t.id, token, Completion::default(), Timestamp(40))
        .await
        .unwrap();
    assert_eq!(q.pending_effects(100).await.unwrap().len(), 3);
    // Effect ids keep increasing across restarts.
    q.cancel(&issue(2).id, "closed".into(), Timestamp(50))
        .await
        .unwrap();
    let effects = q.pending_effects(100).await.unwrap();
    assert!(effects.windows(2).all(|w| w[0].id < w[1].id));
    q.close().await;
}

#[tokio::test]
async fn a_lock_survives_reopening() {
    let dir = TempDir::new("locks");
    let path = dir.path().join("store.sqlite3");
    let declaring = |n: u64, body: &str| ReadyIssue {
        body: body.into(),
        ..issue(n)
    };
    let worker = WorkerId::new("worker-1").unwrap();
    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    q.enqueue(declaring(1, "Files: src/**"), Timestamp(10))
        .await
        .unwrap();
    q.enqueue(declaring(2, "Files: src/a.rs"), Timestamp(10))
        .await
        .unwrap();
    let held = q
        .claim(&worker, LeaseKind::Heartbeat, Timestamp(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.locks, ["src/"]);
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let claimed = q.claim(&worker, LeaseKind::Heartbeat, Timestamp(30)).await;
    assert_eq!(
        claimed.unwrap(),
        None,
        "#2 waits for #1's lock after a restart"
    );
    let token = held.lease().as_ref().unwrap().token;
    q.complete(&held.id, token, Completion::default(), Timestamp(40))
        .await
        .unwrap();
    let next = q.claim(&worker, LeaseKind::Heartbeat, Timestamp(50)).await;
    assert_eq!(next.unwrap().unwrap().id, issue(2).id);
    q.close().await;
}

#[tokio::test]
async fn issue_numbers_order_numerically_not_as_text() {
    let dir = TempDir::new("order");
    let q = SqliteQueue::open(dir.path().join("s.sqlite3"), Policy::default())
        .await
        .unwrap();
    for n in [10, 9, 100] {
        let mut i = issue(n);
        i.created_at = Timestamp(0);
        q.enqueue(i, Timestamp(1)).await.unwrap();
    }
    let ids: Vec<u64> = q
        .list(&Default::default())
        .await
        .unwrap()
        .iter()
        .map(|t| t.id.number())
        .collect();
    assert_eq!(ids, vec![9, 10, 100]);
    let w = WorkerId::new("w").unwrap();
    let first = q
        .claim(&w, LeaseKind::Heartbeat, Timestamp(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id.number(), 9, "same age: the lower id first");
    q.close().await;
}

#[tokio::test]
async fn a_call_cancelled_mid_write_leaves_memory_and_file_agreeing() {
    let dir = TempDir::new("cancel");
    let q = SqliteQueue::open(dir.path().join("s.sqlite3"), Policy::default())
        .await
        .unwrap();
    q.enqueue(issue(1), Timestamp(1)).await.unwrap();
    let w = WorkerId::new("w").unwrap();
    let t = q
        .claim(&w, LeaseKind::Heartbeat, Timestamp(2))
        .await
        .unwrap()
        .unwrap();
    let token = t.lease().as_ref().unwrap().token;
    // Polled once, then dropped: the statement may or may not have run.
    let mut cut = Box::pin(q.complete(&t.id, token, Completion::default(), Timestamp(3)));
    std::future::poll_fn(|cx| {
        let _ = cut.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
    drop(cut);
    // Whichever happened, the same completion now succeeds and takes effect once.
    let done = q
        .complete(&t.id, token, Completion::default(), Timestamp(4))
        .await
        .unwrap();
    assert_eq!(done.state(), TaskState::Completed);
    let completed = q
        .pending_effects(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.effect.kind.name() == "completed")
        .count();
    assert_eq!(completed, 1);
    assert!(
        q.claim(&w, LeaseKind::Heartbeat, Timestamp(5))
            .await
            .unwrap()
            .is_none()
    );
    q.close().await;
}

#[tokio::test]
async fn full_synchronous_is_chosen_by_url_and_works() {
    let dir = TempDir::new("full");
    let url = format!(
        "sqlite:{}?synchronous=full",
        dir.path().join("s.sqlite3").display()
    );
    let q = scrum_store::open(&url, Policy::default()).await.unwrap();
    q.enqueue(issue(1), Timestamp(1)).await.unwrap();
    assert_eq!(q.counts().await.unwrap().pending, 1);
    drop(q);
    let err = scrum_store::open(
        &format!(
            "sqlite:{}?synchronous=off",
            dir.path().join("t.sqlite3").display()
        ),
        Policy::default(),
    )
    .await
    .err()
    .expect("an unknown setting is refused");
    assert_eq!(err.kind(), ErrorKind::Invalid);
}
