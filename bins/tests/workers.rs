//! Workers remembered across restarts and orchestrators, with the real
//! `scrum-orchestrator` and the fake GitHub. Workers call over HTTP
//! (`GET /work/next`, `POST /work/complete`) from this process.
//!
//! - On SQLite: five workers call, one completes a task; the orchestrator is killed
//!   with SIGKILL and restarted on the same `STATE_DIR`. `/workers` still lists all
//!   five as they were, and the one that completed shows it, not offline.
//! - On PostgreSQL: two orchestrators share one schema. A worker that called only
//!   the first, and what it holds and completed, shows on the second's `/workers`,
//!   and the other way round.
//!
//! The PostgreSQL run works in a schema of its own, dropped afterwards pass or fail
//! (`tests/common`).

use std::path::Path;
use std::time::{Duration, Instant};

use scrum_bins::fleet::Fleet;
use scrum_core::worker::WorkSource;
use scrum_core::{Assignment, Completion, TaskId, WorkerId};
use scrum_http::OrchestratorClient;
use scrum_http::wire::{QueueQuery, WorkerEntry};

mod common;

/// How long the orchestrators get to queue the issue (they poll every second).
const QUEUE_WITHIN: Duration = Duration::from_secs(20);
const LOOK_EVERY: Duration = Duration::from_millis(100);

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name).unwrap()
}

async fn fleet_with_one_issue(dir: &Path) -> Fleet {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    Fleet::prepare(dir, bin_dir, &[("acme/api", "First change")])
        .await
        .unwrap()
}

fn client(url: &str) -> OrchestratorClient {
    OrchestratorClient::new(url).unwrap()
}

/// Waits until the orchestrator behind `client` has queued `id`.
async fn queued(fleet: &Fleet, names: &[&str], client: &OrchestratorClient, id: &TaskId) {
    let started = Instant::now();
    loop {
        let page = client.queue(&QueueQuery::default()).await;
        if page.is_ok_and(|q| q.pending.iter().any(|e| e.task_id == id.to_string())) {
            return;
        }
        if started.elapsed() > QUEUE_WITHIN {
            common::fail_with_logs(fleet, names, &format!("{id} was not queued in time"));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// `worker` asks for work without waiting.
async fn ask(client: &OrchestratorClient, name: &str) -> Option<Assignment> {
    WorkSource::next(client, &worker(name), Duration::ZERO)
        .await
        .unwrap()
}

async fn complete(client: &OrchestratorClient, name: &str, work: &Assignment) {
    let done = Completion {
        pr_url: Some("https://github.com/acme/api/pull/7".into()),
        ..Completion::default()
    };
    WorkSource::complete(client, &worker(name), work, done)
        .await
        .unwrap();
}

async fn listed(client: &OrchestratorClient) -> Vec<WorkerEntry> {
    client.workers().await.unwrap().workers
}

/// How long a report's count may take to show: it is written just after the answer.
const COUNTED_WITHIN: Duration = Duration::from_secs(5);

/// Polls `/workers` until `name` shows `completed` completions, and returns the list.
async fn listed_with(client: &OrchestratorClient, name: &str, completed: u64) -> Vec<WorkerEntry> {
    let started = Instant::now();
    loop {
        let workers = listed(client).await;
        if entry(&workers, name).completed == completed {
            return workers;
        }
        assert!(
            started.elapsed() < COUNTED_WITHIN,
            "{name} never showed {completed} completed: {workers:?}"
        );
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

fn entry<'a>(workers: &'a [WorkerEntry], name: &str) -> &'a WorkerEntry {
    workers
        .iter()
        .find(|w| w.id == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {workers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_restarted_orchestrator_lists_every_worker_as_before_the_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = fleet_with_one_issue(dir.path()).await;
    fleet.start_orchestrator().await.unwrap();
    let c = client(&fleet.url());
    queued(&fleet, &["orchestrator"], &c, &fleet.issues[0]).await;

    let work = ask(&c, "w1").await.expect("w1 gets the queued issue");
    complete(&c, "w1", &work).await;
    for name in ["w2", "w3", "w4", "w5"] {
        assert!(ask(&c, name).await.is_none(), "nothing left for {name}");
    }
    let before = listed_with(&c, "w1", 1).await;

    fleet.kill_orchestrator();
    fleet.start_orchestrator().await.unwrap();
    let after = listed(&c).await;
    let ids: Vec<&str> = after.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(
        ids,
        ["w1", "w2", "w3", "w4", "w5"],
        "every worker is still listed"
    );
    for (was, is) in before.iter().zip(&after) {
        assert!(is.last_seen.is_some(), "{} has no last_seen", is.id);
        assert_eq!(
            is.last_seen, was.last_seen,
            "{}'s last call, as before",
            is.id
        );
        assert_eq!(is.status, "available", "{} was seen a moment ago", is.id);
    }
    let w1 = entry(&after, "w1");
    assert_eq!(
        (w1.completed, w1.failed),
        (1, 0),
        "w1's completion survives"
    );
    assert_eq!(w1.current_task, None);
    fleet.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_two_orchestrators_list_the_same_workers() {
    let base = common::postgres_base();
    let schema = common::store_name("workers");
    let url = common::with_param(&base, "schema", &schema);
    common::then_clean_up(shared_workers(url), common::drop_schema(&base, &schema)).await;
}

/// The two orchestrators of the PostgreSQL scenario.
const NAMES: [&str; 2] = ["orchestrator-a", "orchestrator-b"];

/// Two orchestrators on the store at `database_url`; workers call one or the other.
async fn shared_workers(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = fleet_with_one_issue(dir.path()).await;
    fleet.set_env("DATABASE_URL", &database_url);
    for name in NAMES {
        if let Err(e) = fleet.start_orchestrator_named(name).await {
            common::fail_with_logs(&fleet, &NAMES, &format!("{e:#}"));
        }
    }
    let [a, b] = NAMES.map(|n| client(&fleet.orchestrator_url(n).unwrap()));
    let id = fleet.issues[0].clone();
    queued(&fleet, &NAMES, &a, &id).await;

    // `solo` calls only a, `other` only b.
    let work = ask(&a, "solo").await.expect("solo gets the queued issue");
    assert!(ask(&b, "other").await.is_none());
    let on_b = listed(&b).await;
    let solo = entry(&on_b, "solo");
    assert_eq!(solo.status, "busy", "b sees what solo holds through a");
    assert_eq!(
        solo.current_task_id.as_deref(),
        Some(id.to_string().as_str())
    );
    assert!(solo.last_seen.is_some());
    let on_a = listed(&a).await;
    assert!(
        entry(&on_a, "other").last_seen.is_some(),
        "a sees b's caller"
    );

    complete(&a, "solo", &work).await;
    let on_b = listed_with(&b, "solo", 1).await;
    let solo = entry(&on_b, "solo");
    assert_eq!((solo.status.as_str(), solo.completed), ("available", 1));
    assert_eq!(listed(&a).await, on_b, "both orchestrators list the same");
    fleet.stop();
}
