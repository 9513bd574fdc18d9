//! SIGKILL an orchestrator process running on SQLite in the middle of its work, then
//! restart on the same file: nothing it acknowledged is lost.

#![cfg(feature = "sqlite")]

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::memory::{MemoryIssueSource, ScriptedRunner};
use scrum_core::runner::RunOutcome;
use scrum_core::state::{EffectKind, Policy};
use scrum_core::worker::{Handled, WorkerLoop};
use scrum_core::{
    Completion, Labels, TaskFilter, TaskId, TaskState, Timestamp, WorkQueue, WorkerId,
};
use scrum_store::SqliteQueue;
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

const CHILD_DIR: &str = "SCRUM_STORE_CRASH_DIR";
const ISSUES: u64 = 300;
const COMPLETED: &str = "crash-child-completed:";

fn id(n: u64) -> TaskId {
    TaskId::new("acme/widgets", n).unwrap()
}

/// The orchestrator the parent kills: the engine (poll, reaper, outbox dispatcher)
/// over a SQLite store, with four in-process workers completing tasks as fast as
/// they can. It prints one line per completion the store acknowledged.
async fn orchestrator_process(dir: &str) {
    let queue = Arc::new(
        SqliteQueue::open(format!("{dir}/store.sqlite3"), Policy::default())
            .await
            .unwrap(),
    );
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    for n in 1..=ISSUES {
        source.open_issue(
            id(n),
            &format!("Issue {n}"),
            &["ai-ready"],
            Timestamp(n as i64),
        );
    }
    let config = EngineConfig {
        dispatch_interval: Duration::from_millis(5),
        reap_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let orchestrator = Orchestrator::builder(queue.clone(), source)
        .config(config)
        .build();
    // A poll admits a backlog in batches: poll until every issue is queued.
    while queue.list(&TaskFilter::default()).await.unwrap().len() < ISSUES as usize {
        orchestrator.poll_once().await.unwrap();
    }
    let duties = orchestrator.clone();
    tokio::spawn(async move { duties.run(std::future::pending::<()>()).await });
    let mut workers = Vec::new();
    for w in 0..4 {
        let runner = ScriptedRunner::new(|_| {
            (
                Duration::from_millis(1),
                RunOutcome::Success(Completion::default()),
            )
        });
        let worker = WorkerLoop::new(
            WorkerId::new(&format!("worker-{w}")).unwrap(),
            Arc::new(orchestrator.clone()),
            Arc::new(runner),
        )
        .wait(Duration::ZERO);
        workers.push(tokio::spawn(async move {
            while let Some((task, handled)) = worker.run_one().await.unwrap() {
                if matches!(handled, Handled::Reported(RunOutcome::Success(_))) {
                    println!("\n{COMPLETED}{task}");
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_orchestrator_loses_nothing_it_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        // The child half: run until killed.
        orchestrator_process(&dir).await;
        return;
    }
    let dir = common::TempDir::new("crash");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_orchestrator_loses_nothing_it_acknowledged",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = HashSet::new();
    // Kill it mid-stream, once 40 completions were acknowledged.
    let forty = async {
        while let Some(line) = out.next_line().await.unwrap() {
            if let Some((_, task)) = line.split_once(COMPLETED) {
                acknowledged.insert(task.trim().parse::<TaskId>().unwrap());
                if acknowledged.len() == 40 {
                    return;
                }
            }
        }
        panic!("the orchestrator stopped before 40 completions");
    };
    tokio::time::timeout(Duration::from_secs(60), forty)
        .await
        .expect("40 completions within a minute");
    child.start_kill().unwrap(); // SIGKILL
    // Completions printed before the kill are still in the pipe.
    while let Some(line) = out.next_line().await.unwrap() {
        if let Some((_, task)) = line.split_once(COMPLETED) {
            acknowledged.insert(task.trim().parse::<TaskId>().unwrap());
        }
    }
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    let path = dir.path().join("store.sqlite3");

    // The kernel released the lock with the process: the file opens, and is sound.
    let q = SqliteQueue::open(&path, Policy::default()).await.unwrap();
    let tasks = q.list(&TaskFilter::default()).await.unwrap();
    assert_eq!(
        tasks.len() as u64,
        ISSUES,
        "every queued issue is still there"
    );
    let effects = q.pending_effects(100_000).await.unwrap();
    let mut completed = 0;
    for t in &tasks {
        if acknowledged.contains(&t.id) {
            assert_eq!(t.state(), TaskState::Completed, "{} was acknowledged", t.id);
        }
        if t.state() == TaskState::Completed {
            completed += 1;
            // Its labels were written, or the effect that writes them is still queued.
            let queued = effects.iter().any(|e| {
                e.effect.task == t.id && matches!(e.effect.kind, EffectKind::Completed { .. })
            });
            assert!(
                t.effects_written_at().is_some() || queued,
                "{}'s Completed effect was lost",
                t.id
            );
        }
    }
    assert!(completed >= acknowledged.len());
    assert!(completed < ISSUES as usize, "killed mid-work, not after it");
    eprintln!(
        "killed after {} acknowledged completions; {completed} stored",
        acknowledged.len()
    );
    // Tasks the dead workers held come back once their leases lapse.
    let later = Timestamp(i64::MAX / 2);
    let reaped = q.expire(later).await.unwrap();
    let held = tasks
        .iter()
        .filter(|t| t.state() == TaskState::InProgress)
        .count();
    assert_eq!(reaped.len(), held);
    assert!(
        q.list(&TaskFilter::states([TaskState::InProgress]))
            .await
            .unwrap()
            .is_empty()
    );
    q.close().await;

    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
