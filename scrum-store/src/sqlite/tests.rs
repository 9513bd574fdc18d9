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

/// A file as a build of schema version 3 left it: its tasks stored as JSON through
/// the `steps` view, each with its `Queued` effect in the outbox.
fn version_3_file(path: &std::path::Path, issues: &[ReadyIssue]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in &super::schema::MIGRATIONS[..3] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    conn.pragma_update(None, "application_id", 0x5343_524d)
        .unwrap();
    let (policy, jitter) = (Policy::default(), scrum_core::state::Jitter::fixed(0.5));
    let ctx = scrum_core::state::Ctx::sample(Timestamp(1), &policy, &jitter);
    for issue in issues {
        let (step, _) = scrum_core::backend::enqueue_step(None, issue.clone(), &ctx).unwrap();
        let step = step.unwrap();
        let task = &step.task;
        conn.execute(
            "INSERT INTO steps (repo, number, state, claimable, priority, created_at,
                                not_before, lease_expires_at, holder, task, effects, ack)
             VALUES (?1, ?2, 'pending', 1, 0, ?3, 0, NULL, NULL, ?4, ?5, NULL)",
            (
                task.id.repo().to_string(),
                task.id.number() as i64,
                task.issue.created_at.0,
                serde_json::to_string(task).unwrap(),
                serde_json::to_string(&step.effects).unwrap(),
            ),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_version_3_file_migrates_and_keeps_its_tasks_and_effects() {
    let dir = tempdir("migrate");
    let path = dir.join("s.sqlite3");
    version_3_file(&path, &[issue(1, 10), issue(2, 5_000)]);

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.pending, counts.in_progress), (2, 0));
    let two: TaskId = "acme/widgets#2".parse().unwrap();
    let task = q.get(&two).await.unwrap().expect("task 2 survives");
    assert_eq!(task.issue.body.len(), 5_000);
    let effects = q.pending_effects(10).await.unwrap();
    assert_eq!(effects.len(), 2, "the queued effects survive: {effects:?}");
    assert!(effects.iter().all(|e| e.effect.kind.name() == "queued"));

    // Claims take the migrated tasks in their order, and write them anew.
    let worker = WorkerId::new("w").unwrap();
    let first = q.claim(&worker, LeaseKind::Heartbeat, Timestamp(5)).await;
    assert_eq!(first.unwrap().unwrap().id.number(), 1);
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.pending, counts.in_progress), (1, 1));
    let held = q.get(&"acme/widgets#1".parse().unwrap()).await.unwrap();
    assert_eq!(held.unwrap().holder(), Some(&worker));
    let stored: Vec<String> = q
        .writer
        .read(|c| {
            let types = || -> rusqlite::Result<Vec<String>> {
                c.prepare("SELECT typeof(task) FROM tasks ORDER BY number")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            };
            types().map_err(|e| db_error("read", e))
        })
        .await
        .unwrap();
    assert_eq!(
        stored,
        ["blob", "blob"],
        "every row is rewritten in this version's form when the file is opened"
    );
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("scrum-sqlite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checkpoints run beside the commits (`super::checkpoint`), not inside them: with
/// SQLite's own turned off, the database file still takes the WAL's pages while
/// the store stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_into_the_file_while_open() {
    let dir = tempdir("checkpoint");
    let path = dir.join("s.sqlite3");
    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let at_open = std::fs::metadata(&path).unwrap().len();
    // About five pages each: some 2,000 pages through the WAL.
    for n in 1..=400 {
        q.enqueue(issue(n, 20_000), Timestamp(1)).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut size = at_open;
    while size < 4_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the file is still {size} bytes ({at_open} at open): no checkpoint ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        size = std::fs::metadata(&path).unwrap().len();
    }
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

mod format;
