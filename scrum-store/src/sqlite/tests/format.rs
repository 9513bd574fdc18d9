//! The stored form of a task: the bytes each schema version wrote read back, and
//! files of older versions open and migrate.

use rusqlite::types::ValueRef;
use scrum_core::follow_up::FollowUp;
use scrum_core::model::{
    Approval, Attempt, EditReview, Lease, LeaseEnd, Outcome, Run, RunCause, Status, TaskV5,
};
use scrum_core::pull_gate::PullState;
use scrum_core::{Completion, LeaseKind, LeaseToken, Task, TaskState, Timestamp, WorkerId};

use super::super::rows::{decode_task, encode_task};
use super::super::schema::{MIGRATIONS, SCHEMA_VERSION, db_error};
use super::{SqliteQueue, issue, tempdir};
use scrum_core::WorkQueue;
use scrum_core::state::Policy;

const TOKEN: LeaseToken = LeaseToken(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

fn lease() -> Lease {
    Lease {
        token: TOKEN,
        worker: WorkerId::new("w-1").unwrap(),
        claimed_at: Timestamp(10),
        expires_at: Timestamp(20),
        deadline: Timestamp(30),
        kind: LeaseKind::RunTime,
    }
}

fn completion() -> Completion {
    Completion {
        pr_url: Some("https://github.com/acme/widgets/pull/8".into()),
        cost_usd: Some(1.5),
        tokens: Some(1_000),
        revisions: Some(2),
    }
}

fn approval() -> Approval {
    Approval {
        by: "maintainer".into(),
        at: Some(Timestamp(3)),
        digest: "sha256:ab".into(),
    }
}

/// A version-5 task with every optional part set, as a claim, a completion, an
/// approval, a review and a blocker leave them (not a state the machine reached:
/// every field at once, for the encoding).
fn full_task_v5() -> TaskV5 {
    let pending = issue_task();
    TaskV5 {
        id: pending.id.clone(),
        issue: pending.issue.clone(),
        state: TaskState::Completed,
        run: 2,
        attempts: 1,
        max_attempts: 2,
        attempt_refunded: true,
        lease: Some(lease()),
        lease_end: Some(LeaseEnd::Completed),
        not_before: Timestamp(5),
        cancel_requested: true,
        last_error: Some("it broke".into()),
        completion: Some(completion()),
        enqueued_at: Timestamp(1),
        updated_at: Timestamp(40),
        finished_at: Some(Timestamp(41)),
        effects_written_at: Some(Timestamp(42)),
        approval: Some(approval()),
        review: Some(EditReview {
            editor: "someone".into(),
            edited_at: Some(Timestamp(4)),
            digest: "sha256:cd".into(),
            held_at: Timestamp(6),
        }),
        cost_usd: Some(2.25),
        tokens: Some(3_000),
        blocked: Some(scrum_core::deps::Blocked {
            by: vec!["acme/widgets#3".parse().unwrap()],
            problem: Some("a cycle".into()),
            since: Timestamp(7),
        }),
        locks: Vec::new(),
        rework: None,
        pull_mark: None,
    }
}

/// The pending task of issue 7, as an enqueue makes it.
fn issue_task() -> Task {
    let (policy, jitter) = (Policy::default(), scrum_core::state::Jitter::fixed(0.5));
    let ctx = scrum_core::state::Ctx::sample(Timestamp(1), &policy, &jitter);
    let (step, _) = scrum_core::backend::enqueue_step(None, issue(7, 12), &ctx).unwrap();
    step.unwrap().task
}

/// A task of this version with every optional part set.
fn full_task() -> Task {
    let mut task = issue_task();
    task.status = Status::Completed {
        completion: completion(),
        pull_mark: Some(PullState::Approved),
        exhausted: None,
    };
    let attempt = |number, outcome| Attempt {
        number,
        worker: WorkerId::new("w-1").unwrap(),
        token: TOKEN,
        started_at: Timestamp(10),
        ended_at: Some(Timestamp(20)),
        outcome: Some(outcome),
        error: Some("it broke".into()),
        cost_usd: Some(0.75),
        tokens: Some(1_500),
        lease: LeaseKind::RunTime,
    };
    task.run = Run {
        number: 2,
        cause: RunCause::FollowUp(FollowUp::new(
            scrum_core::follow_up::FollowUpCause::ChangesRequested,
            "https://github.com/acme/widgets/pull/8",
            "r1".into(),
            "alice",
            "rename it",
            1,
            Timestamp(2),
        )),
        max_attempts: 2,
        attempts: vec![
            attempt(
                1,
                Outcome::Withdrawn {
                    by: LeaseEnd::Failed,
                },
            ),
            attempt(1, Outcome::Completed),
        ],
        queued_at: Timestamp(1),
        finished_at: Some(Timestamp(41)),
        written_at: Some(Timestamp(42)),
    };
    task.approval = Some(approval());
    task.locks = vec!["src/".into()];
    task.updated_at = Timestamp(40);
    task
}

/// `full_task_v5` as schema version 5 wrote it. Rows in files keep these bytes
/// until the file is opened by a build of version 6 or later, which rewrites them.
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
fn a_version_5_row_reads_back_as_its_named_state() {
    let stored = unhex(FULL_TASK_V5);
    let old: TaskV5 = rmp_serde::from_slice(&stored).unwrap();
    assert_eq!(old, full_task_v5(), "the bytes version 5 wrote");
    let task = decode_task(ValueRef::Blob(&stored)).unwrap();
    assert_eq!(task, Task::from_v5(full_task_v5()));
    // What a person saw of it before, they see now.
    assert_eq!(task.state(), TaskState::Completed);
    assert_eq!(task.completion(), Some(&completion()));
    assert_eq!(
        (task.run.number, task.attempts(), task.max_attempts()),
        (2, 1, 2)
    );
    assert_eq!(task.enqueued_at(), Timestamp(1));
    assert_eq!(task.finished_at(), Some(Timestamp(41)));
    assert_eq!(task.effects_written_at(), Some(Timestamp(42)));
    assert_eq!(task.approval, Some(approval()));
    assert_eq!(task.spend().cost_usd, Some(2.25));
    assert_eq!(task.spend().tokens, Some(3_000));
    let last = task.last_attempt().expect("the last lease is an attempt");
    assert_eq!((last.worker.as_str(), last.token), ("w-1", TOKEN));
    assert_eq!(last.started_at, Timestamp(10));
}

#[test]
fn every_version_5_state_reads_back_as_the_state_it_was() {
    let base = full_task_v5;
    let read = |old: TaskV5| Task::from_v5(old).status.name();
    let pending = |f: fn(&mut TaskV5)| {
        let mut old = TaskV5 {
            state: TaskState::Pending,
            review: None,
            blocked: None,
            cancel_requested: false,
            ..base()
        };
        f(&mut old);
        read(old)
    };
    assert_eq!(pending(|_| {}), "ready", "due before its last change");
    assert_eq!(pending(|o| o.not_before = Timestamp(99)), "scheduled");
    assert_eq!(pending(|o| o.not_before = Timestamp::NEVER), "scheduled");
    assert_eq!(
        pending(|o| {
            o.not_before = Timestamp::NEVER;
            o.blocked = full_task_v5().blocked;
        }),
        "held"
    );
    let running = Task::from_v5(TaskV5 {
        state: TaskState::InProgress,
        lease_end: None,
        ..base()
    });
    assert_eq!(running.lease(), Some(&lease()));
    assert!(running.stop_requested(), "a cancellation it was told of");
    for (state, name) in [
        (TaskState::Failed, "failed"),
        (TaskState::Cancelled, "cancelled"),
        (TaskState::Parked, "parked"),
    ] {
        let task = Task::from_v5(TaskV5 { state, ..base() });
        assert_eq!(task.status.name(), name);
        assert_eq!(task.last_error(), Some("it broke"));
    }
}

/// `full_task` as schema version 6 writes it. Rows in files keep these bytes: if
/// this test fails after a change to `Task` (or a struct in it), a field was added
/// or moved somewhere other than last, and files written before would be misread.
/// Add new fields last, with `#[serde(default)]`; do not change these bytes.
const FULL_TASK_V6: &str = concat!(
    "97ae61636d652f77696467657473233795ae61636d652f776964676574732337a749737375652037",
    "ac78787878787878787878787891a861692d72656164790781a9636f6d706c657465649294d92668",
    "747470733a2f2f6769746875622e636f6d2f61636d652f776964676574732f70756c6c2f38cb3ff8",
    "000000000000cd03e802a8617070726f766564970281a67265776f726b95d92668747470733a2f2f",
    "6769746875622e636f6d2f61636d652f776964676574732f70756c6c2f38a27231a5616c696365a9",
    "72656e616d652069740202929a01a3772d31d9203031323334353637383961626364656630313233",
    "3435363738396162636465660a1481a977697468647261776e91a66661696c6564a869742062726f",
    "6b65cb3fe8000000000000cd05dca752756e54696d659a01a3772d31d92030313233343536373839",
    "616263646566303132333435363738396162636465660a14a9636f6d706c65746564a86974206272",
    "6f6b65cb3fe8000000000000cd05dca752756e54696d6501292a93aa6d61696e7461696e657203a9",
    "7368613235363a616291a47372632f28",
);

/// `full_task` as this version writes it: `FULL_TASK_V6` with the fields follow-ups
/// added last (the follow-up's cause, round and history; a completion's
/// `exhausted`), and the run cause named `follow_up`. The same rule holds.
const FULL_TASK_V7: &str = concat!(
    "97ae61636d652f77696467657473233795ae61636d652f776964676574732337a749737375652037",
    "ac78787878787878787878787891a861692d72656164790781a9636f6d706c657465649394d92668",
    "747470733a2f2f6769746875622e636f6d2f61636d652f776964676574732f70756c6c2f38cb3ff8",
    "000000000000cd03e802a8617070726f766564c0970281a9666f6c6c6f775f757098d92668747470",
    "733a2f2f6769746875622e636f6d2f61636d652f776964676574732f70756c6c2f38a27231a5616c",
    "696365a972656e616d6520697402b16368616e6765735f726571756573746564019002929a01a377",
    "2d31d92030313233343536373839616263646566303132333435363738396162636465660a1481a9",
    "77697468647261776e91a66661696c6564a869742062726f6b65cb3fe8000000000000cd05dca752",
    "756e54696d659a01a3772d31d9203031323334353637383961626364656630313233343536373839",
    "6162636465660a14a9636f6d706c65746564a869742062726f6b65cb3fe8000000000000cd05dca7",
    "52756e54696d6501292a93aa6d61696e7461696e657203a97368613235363a616291a47372632f28",
);

#[test]
fn a_stored_task_reads_back_by_position() {
    let task = full_task();
    let written = encode_task(&task).unwrap();
    assert_eq!(hex(&written), FULL_TASK_V7, "the bytes this version writes");
    assert_eq!(decode_task(ValueRef::Blob(&written)).unwrap(), task);
    // Rows written before follow-ups read back as the same task: a rework is a
    // follow-up for changes requested, round 1.
    let old = unhex(FULL_TASK_V6);
    assert_eq!(decode_task(ValueRef::Blob(&old)).unwrap(), task);
    // An array (by position), not a map (with field names).
    assert!(matches!(written[0], 0x90..=0x9f | 0xdc | 0xdd));
}

/// Creates a store file of schema `version` holding `rows` (each task's bytes).
fn old_file(path: &std::path::Path, version: usize, rows: &[(&Task, Vec<u8>)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn.pragma_update(None, "application_id", 0x5343_524d)
        .unwrap();
    for (task, bytes) in rows {
        conn.execute(
            "INSERT INTO tasks (repo, number, state, holder, task) VALUES (?1, ?2, ?3, NULL, ?4)",
            (
                task.id.repo().to_string(),
                task.id.number() as i64,
                task.state().as_str(),
                bytes,
            ),
        )
        .unwrap();
    }
}

/// The schema version and each task row's bytes, read straight from the file.
async fn stored_rows(q: &SqliteQueue) -> (i64, Vec<Vec<u8>>) {
    q.writer
        .read(|c| {
            let read = || -> rusqlite::Result<(i64, Vec<Vec<u8>>)> {
                let version = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let rows = c
                    .prepare("SELECT task FROM tasks ORDER BY number")?
                    .query_map([], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((version, rows))
            };
            read().map_err(|e| db_error("read", e))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_version_5_file_opens_and_every_task_reads_back_in_the_new_form() {
    let dir = tempdir("migrate-5");
    let path = dir.join("s.sqlite3");
    let pending_v5 = TaskV5 {
        id: "acme/widgets#1".parse().unwrap(),
        state: TaskState::Pending,
        lease: None,
        lease_end: None,
        review: None,
        blocked: None,
        completion: None,
        not_before: Timestamp(1),
        ..full_task_v5()
    };
    let pending = Task::from_v5(pending_v5.clone());
    let full = Task::from_v5(full_task_v5());
    old_file(
        &path,
        5,
        &[
            (&pending, rmp_serde::to_vec(&pending_v5).unwrap()),
            (&full, unhex(FULL_TASK_V5)),
        ],
    );

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.get(&full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(q.get(&pending.id).await.unwrap(), Some(pending.clone()));
    let (version, rows) = stored_rows(&q).await;
    assert_eq!(version, SCHEMA_VERSION as i64);
    for row in &rows {
        let task: Task = rmp_serde::from_slice(row).expect("rewritten in the new form");
        assert!(task == pending || task == full);
    }
    // The pending task is handed out as before.
    let worker = WorkerId::new("w").unwrap();
    let claimed = q.claim(&worker, LeaseKind::Heartbeat, Timestamp(50)).await;
    assert_eq!(claimed.unwrap().unwrap().id.number(), 1);
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_version_4_file_opens_and_its_tasks_written_with_names_read_back() {
    let dir = tempdir("migrate-4");
    let path = dir.join("s.sqlite3");
    let full = Task::from_v5(full_task_v5());
    old_file(
        &path,
        4,
        &[(&full, rmp_serde::to_vec_named(&full_task_v5()).unwrap())],
    );
    {
        // An effect of the task, as JSON.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let effect = scrum_core::state::Effect {
            task: full.id.clone(),
            run: full.run.number,
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
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.get(&full.id).await.unwrap().as_ref(), Some(&full));
    let (version, rows) = stored_rows(&q).await;
    assert_eq!(version, SCHEMA_VERSION as i64);
    assert!(
        matches!(rows[0][0], 0x90..=0x9f | 0xdc),
        "rewritten by position: {:x?}",
        rows[0]
    );
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_version_6_file_opens_and_its_workers_read_back_without_a_sandbox() {
    use scrum_core::{AgentSandbox, WorkerRecord, WorkerRegistry};
    let dir = tempdir("migrate-6");
    let path = dir.join("s.sqlite3");
    old_file(&path, 6, &[]);
    {
        // A worker as version 6 stored it: no sandbox column yet.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO workers (id, address, first_seen, last_seen, completed, failed, draining)
             VALUES ('w-old', '10.0.0.7', 1000, 2000, 1, 0, 1)",
            [],
        )
        .unwrap();
    }
    let old = WorkerRecord {
        id: WorkerId::new("w-old").unwrap(),
        address: Some("10.0.0.7".parse().unwrap()),
        first_seen: Some(Timestamp(1_000)),
        last_seen: Some(Timestamp(2_000)),
        completed: 1,
        failed: 0,
        draining: true,
        sandbox: None,
    };

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.workers().await.unwrap(), vec![old.clone()], "never said");
    q.set_sandbox(&old.id, AgentSandbox::Bwrap).await.unwrap();
    let seen = q
        .worker_seen(&old.id, None, Timestamp(3_000))
        .await
        .unwrap();
    let expected = WorkerRecord {
        last_seen: Some(Timestamp(3_000)),
        sandbox: Some(AgentSandbox::Bwrap),
        ..old
    };
    assert_eq!(seen, expected);
    q.close().await;

    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    assert_eq!(q.workers().await.unwrap(), vec![expected]);
    assert_eq!(stored_rows(&q).await.0, SCHEMA_VERSION as i64);
    q.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
