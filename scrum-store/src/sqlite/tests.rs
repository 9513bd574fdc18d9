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
        ["blob", "text"],
        "rewritten when written, else as it was"
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

/// A task with every optional part set, as a claim, a completion, an approval, a
/// review and a blocker leave them (not a state the machine reaches: every field
/// at once, for the encoding).
fn full_task() -> scrum_core::Task {
    use scrum_core::model::{Approval, Lease, LeaseEnd, Review};
    use scrum_core::{Completion, LeaseToken, TaskState};
    let (policy, jitter) = (Policy::default(), scrum_core::state::Jitter::fixed(0.5));
    let ctx = scrum_core::state::Ctx::sample(Timestamp(1), &policy, &jitter);
    let (step, _) = scrum_core::backend::enqueue_step(None, issue(7, 12), &ctx).unwrap();
    let mut task = step.unwrap().task;
    task.state = TaskState::Completed;
    task.run = 2;
    task.attempts = 1;
    task.attempt_refunded = true;
    task.lease = Some(Lease {
        token: LeaseToken(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        worker: WorkerId::new("w-1").unwrap(),
        claimed_at: Timestamp(10),
        expires_at: Timestamp(20),
        deadline: Timestamp(30),
        kind: LeaseKind::RunTime,
    });
    task.lease_end = Some(LeaseEnd::Completed);
    task.not_before = Timestamp(5);
    task.cancel_requested = true;
    task.last_error = Some("it broke".into());
    task.completion = Some(Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/8".into()),
        cost_usd: Some(1.5),
        tokens: Some(1_000),
        revisions: Some(2),
    });
    task.updated_at = Timestamp(40);
    task.finished_at = Some(Timestamp(41));
    task.effects_written_at = Some(Timestamp(42));
    task.approval = Some(Approval {
        by: "maintainer".into(),
        at: Some(Timestamp(3)),
        digest: "sha256:ab".into(),
    });
    task.review = Some(Review {
        editor: "someone".into(),
        edited_at: Some(Timestamp(4)),
        digest: "sha256:cd".into(),
        held_at: Timestamp(6),
    });
    task.cost_usd = Some(2.25);
    task.tokens = Some(3_000);
    task.blocked = Some(scrum_core::deps::Blocked {
        by: vec!["acme/widgets#3".parse().unwrap()],
        problem: Some("a cycle".into()),
        since: Timestamp(7),
    });
    task
}

/// `full_task` as schema version 5 writes it. Rows in files keep these bytes: if
/// this test fails after a change to `Task` (or a struct in it), a field was added
/// or moved somewhere other than last, and files written before would be misread.
/// Add new fields last, with `#[serde(default)]`; do not change these bytes.
const FULL_TASK_V5: &str = concat!(
    "dc0016ae61636d652f77696467657473233795ae61636d652f776964676574732337a74973737565",
    "2037ac78787878787878787878787891a861692d726561647907a9636f6d706c65746564020102c3",
    "96d9203031323334353637383961626364656630313233343536373839616263646566a3772d310a",
    "141ea752756e54696d65a9636f6d706c6574656405c3a869742062726f6b6594d92668747470733a",
    "2f2f6769746875622e636f6d2f61636d652f776964676574732f70756c6c2f38cb3ff80000000000",
    "00cd03e8020128292a93aa6d61696e7461696e657203a97368613235363a616294a7736f6d656f6e",
    "6504a97368613235363a636406cb4002000000000000cd0bb89391ae61636d652f77696467657473",
    "2333a761206379636c6507",
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_stored_task_reads_back_by_position() {
    use rusqlite::types::ValueRef;
    let task = full_task();
    let stored = unhex(FULL_TASK_V5);
    assert_eq!(
        super::rows::decode_task(ValueRef::Blob(&stored)).unwrap(),
        task,
        "the bytes version 5 wrote read back as the same task"
    );
    let written = super::rows::encode_task(&task).unwrap();
    assert_eq!(
        super::rows::decode_task(ValueRef::Blob(&written)).unwrap(),
        task
    );
    // An array (by position), not a map (with field names).
    assert!(
        matches!(written[0], 0x90..=0x9f | 0xdc | 0xdd),
        "{}",
        hex(&written)
    );
}

#[tokio::test]
async fn a_version_4_file_opens_and_its_tasks_written_with_names_read_back() {
    let dir = tempdir("migrate-4");
    let path = dir.join("s.sqlite3");
    let full = full_task();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &super::schema::MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.pragma_update(None, "application_id", 0x5343_524d)
            .unwrap();
        let (policy, jitter) = (Policy::default(), scrum_core::state::Jitter::fixed(0.5));
        let ctx = scrum_core::state::Ctx::sample(Timestamp(1), &policy, &jitter);
        let (step, _) = scrum_core::backend::enqueue_step(None, issue(1, 10), &ctx).unwrap();
        let pending = step.unwrap().task;
        for task in [&pending, &full] {
            conn.execute(
                "INSERT INTO tasks (repo, number, state, holder, task) VALUES (?1, ?2, ?3, NULL, ?4)",
                (
                    task.id.repo().to_string(),
                    task.id.number() as i64,
                    task.state.as_str(),
                    rmp_serde::to_vec_named(task).unwrap(),
                ),
            )
            .unwrap();
        }
        // An effect of the second task, as JSON.
        let effect = scrum_core::state::Effect {
            task: full.id.clone(),
            run: full.run,
            attempt: 1,
            kind: scrum_core::state::EffectKind::Queued,
        };
        conn.execute(
            "INSERT INTO outbox (repo, number, effect) VALUES ('acme/widgets', 7, ?1)",
            [serde_json::to_string(&effect).unwrap()],
        )
        .unwrap();
    }

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.get(&full.id).await.unwrap().as_ref(), Some(&full));
    // The effect names its task's row now, and is due.
    let due = q.due_effects(Timestamp(5), 10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].effect.task, full.id);
    let rows: Vec<(i64, i64)> = q
        .writer
        .read(|c| {
            let read = || -> rusqlite::Result<Vec<(i64, i64)>> {
                c.prepare("SELECT o.task, t.rowid FROM outbox o JOIN tasks t ON t.number = 7")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            };
            read().map_err(|e| db_error("read", e))
        })
        .await
        .unwrap();
    assert!(matches!(rows[..], [(task, row)] if task == row), "{rows:?}");
    let worker = WorkerId::new("w").unwrap();
    let claimed = q.claim(&worker, LeaseKind::Heartbeat, Timestamp(5)).await;
    assert_eq!(claimed.unwrap().unwrap().id.number(), 1);
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let held = q.get(&"acme/widgets#1".parse().unwrap()).await.unwrap();
    assert_eq!(held.unwrap().holder(), Some(&worker));
    assert_eq!(q.get(&full.id).await.unwrap().as_ref(), Some(&full));
    let (version, first_bytes): (i64, Vec<u8>) = q
        .writer
        .read(|c| {
            let read = || -> rusqlite::Result<(i64, Vec<u8>)> {
                let version = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let firsts = c
                    .prepare("SELECT substr(task, 1, 1) FROM tasks ORDER BY number")?
                    .query_map([], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((version, firsts.concat()))
            };
            read().map_err(|e| db_error("read", e))
        })
        .await
        .unwrap();
    assert_eq!(version, super::schema::SCHEMA_VERSION as i64);
    // The claimed task was written anew, by position; the other keeps its names.
    assert!(
        matches!(first_bytes[0], 0x90..=0x9f | 0xdc),
        "{first_bytes:x?}"
    );
    assert!(
        matches!(first_bytes[1], 0x80..=0x8f | 0xde),
        "{first_bytes:x?}"
    );
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
