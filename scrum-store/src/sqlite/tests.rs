//! What only the inside of the SQLite store can test: a transaction that fails.

use std::collections::BTreeSet;
use std::sync::Arc;

use scrum_core::state::Policy;
use scrum_core::{ErrorKind, LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId};

use super::SqliteQueue;
use super::schema::db_error;

fn issue(n: u64, body_len: usize) -> ReadyIssue {
    ReadyIssue {
        id: format!("acme/widgets#{n}").parse().unwrap(),
        title: format!("Issue {n}"),
        body: "x".repeat(body_len),
        labels: vec!["ai-ready".into()],
        created_at: Timestamp(n as i64),
    }
}

/// Lets the file grow by `pages` more pages only, as a full disk would.
async fn cap(q: &SqliteQueue, pages: i64) {
    q.writer
        .read(move |c| {
            let capped = || -> rusqlite::Result<()> {
                let now: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.pragma_update(None, "max_page_count", now + pages)
            };
            capped().map_err(|e| db_error("cap the file", e))
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_fails_its_calls_and_memory_follows_the_file() {
    let dir = std::env::temp_dir().join(format!("scrum-sqlite-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let q = Arc::new(
        SqliteQueue::open(dir.join("s.sqlite3"), Policy::default())
            .await
            .unwrap(),
    );
    q.enqueue(issue(1, 10), Timestamp(1)).await.unwrap();
    cap(&q, 100).await;

    // Concurrent enqueues of large issues (about five pages each), written in
    // shared transactions, until the file is full.
    let mut calls = tokio::task::JoinSet::new();
    for n in 2..60 {
        let q = q.clone();
        calls.spawn(async move { (n, q.enqueue(issue(n, 20_000), Timestamp(2)).await) });
    }
    let mut stored = BTreeSet::from([1]);
    let mut failed = 0;
    while let Some(call) = calls.join_next().await {
        match call.unwrap() {
            (n, Ok(_)) => assert!(stored.insert(n)),
            (_, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the capped file refused some writes");
    assert!(stored.len() > 2, "and took others: {stored:?}");

    // What the calls were told is what the file holds, and what claims hand out.
    cap(&q, 1 << 30).await;
    assert_eq!(q.counts().await.unwrap().pending, stored.len() as u64);
    let worker = WorkerId::new("w").unwrap();
    let mut claimed = BTreeSet::new();
    while let Some(t) = q
        .claim(&worker, LeaseKind::Heartbeat, Timestamp(3))
        .await
        .unwrap()
    {
        assert!(claimed.insert(t.id.number()));
    }
    assert_eq!(claimed, stored);
    let missing: TaskId = "acme/widgets#59".parse().unwrap();
    assert_eq!(
        q.get(&missing).await.unwrap().is_some(),
        stored.contains(&59)
    );
    drop(q);
    let _ = std::fs::remove_dir_all(&dir);
}
