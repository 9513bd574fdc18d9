//! How long each dashboard page takes with many tasks in the store: fills a store
//! with tasks in every state (by default 10,000 on SQLite in a temporary
//! directory), serves the API on a free port, and times each page over real HTTP.
//!
//! ```sh
//! cargo run --release -p scrum-http --example ui_render
//! cargo run --release -p scrum-http --example ui_render -- --tasks 10000 --store memory
//! ```
//!
//! Flags: `--tasks N` (default 10,000), `--store sqlite|memory` (default sqlite),
//! `--rounds N` (requests per page, default 20), `--waiting-effects N` (GitHub
//! writes left unapplied, as during an outage; default 200). It prints each page's
//! median and slowest time, and exits non-zero when a page's median passes 200 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{
    Completion, Failure, Labels, LeaseKind, ReadyIssue, TaskId, Timestamp, WorkQueue, WorkerId,
};
use scrum_http::{ApiConfig, ApiState, serve};

/// The budget each page's median must stay under.
const BUDGET: Duration = Duration::from_millis(200);
const REPOS: [&str; 5] = [
    "acme/widgets",
    "acme/gadgets",
    "acme/gizmos",
    "acme/sprockets",
    "acme/docs",
];

struct Args {
    tasks: u64,
    store: String,
    rounds: usize,
    waiting_effects: usize,
}

fn args() -> Args {
    let mut a = Args {
        tasks: 10_000,
        store: "sqlite".into(),
        rounds: 20,
        waiting_effects: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--tasks" => a.tasks = value().parse().expect("--tasks takes a number"),
            "--store" => a.store = value(),
            "--rounds" => a.rounds = value().parse().expect("--rounds takes a number"),
            "--waiting-effects" => {
                a.waiting_effects = value().parse().expect("--waiting-effects takes a number")
            }
            other => panic!("unknown flag {other}; see the example's doc comment"),
        }
    }
    a
}

/// Fills `queue`: every task queued, then most completed, some failed for good,
/// some cancelled, a few held by workers; all but `waiting` effects applied, 40 of
/// those failing.
async fn fill(queue: &Arc<dyn WorkQueue>, tasks: u64, waiting: usize) {
    let now = Timestamp(1_800_000_000_000);
    for n in 1..=tasks {
        let repo = REPOS[(n % REPOS.len() as u64) as usize];
        let issue = ReadyIssue {
            id: TaskId::new(repo, n).unwrap(),
            title: format!("Render test issue {n}: make the widget faster"),
            body: "A body.".into(),
            labels: vec!["ai-ready".into()],
            created_at: Timestamp(n as i64),
        };
        queue.enqueue(issue, now).await.expect("enqueue");
    }
    let workers: Vec<WorkerId> = (1..=20)
        .map(|n| WorkerId::new(&format!("worker-{n}")).unwrap())
        .collect();
    let settle = tasks * 9 / 10;
    for n in 0..settle {
        let worker = &workers[(n % 20) as usize];
        let task = queue
            .claim(worker, LeaseKind::Heartbeat, now)
            .await
            .expect("claim")
            .expect("a task to claim");
        let token = task.lease().as_ref().unwrap().token;
        let end = if n % 10 == 0 {
            let failure = Failure {
                reason: "the tests fail".into(),
                retryable: false,
                ..Failure::default()
            };
            queue.fail(&task.id, token, failure, now).await
        } else {
            let done = Completion {
                pr_url: Some(format!("https://github.com/{}/pull/{n}", task.id.repo())),
                cost_usd: Some(0.5),
                tokens: Some(1000),
                revisions: None,
            };
            queue.complete(&task.id, token, done, now).await
        };
        end.expect("report");
    }
    for worker in workers.iter().take(10) {
        queue
            .claim(worker, LeaseKind::Heartbeat, now)
            .await
            .expect("claim");
    }
    let live = queue
        .list(&scrum_core::TaskFilter::states([
            scrum_core::TaskState::Pending,
        ]))
        .await
        .expect("list");
    for t in live.iter().step_by(7).take(100) {
        queue
            .cancel(&t.id, "not wanted".into(), now)
            .await
            .expect("cancel");
    }
    loop {
        let effects = queue.pending_effects(1000).await.expect("effects");
        if effects.len() <= waiting {
            break;
        }
        for e in &effects[..effects.len().min(effects.len() - waiting)] {
            queue.ack_effect(e.id, now).await.expect("ack");
        }
    }
    // Some of those writes are failing: set aside, or backing off.
    let effects = queue.pending_effects(40).await.expect("effects");
    for (i, e) in effects.iter().enumerate() {
        let failure = scrum_core::EffectFailure {
            error: "403 Resource not accessible by personal access token".into(),
            refused: i % 2 == 0,
            retry_at: (i % 2 == 1).then_some(Timestamp(now.0 + 60_000)),
        };
        queue.nack_effect(e.id, &failure).await.expect("nack");
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = std::env::temp_dir().join(format!("ui-render-{}", std::process::id()));
    let queue: Arc<dyn WorkQueue> = match a.store.as_str() {
        "sqlite" => {
            let url = format!("sqlite://{}", dir.join("state.db").display());
            scrum_store::open(&url, Policy::default())
                .await
                .expect("open SQLite")
        }
        _ => Arc::new(MemoryQueue::new(Policy::default())),
    };
    let started = Instant::now();
    fill(&queue, a.tasks, a.waiting_effects).await;
    let counts = queue.counts().await.expect("counts");
    eprintln!(
        "filled the {} store in {:.1?}: {counts:?}",
        a.store,
        started.elapsed()
    );

    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), source).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = ApiState::new(orchestrator, ApiConfig::default());
    tokio::spawn(serve(listener, state, std::future::pending()));
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let http = reqwest::Client::new();

    let some_task = queue
        .list(&scrum_core::TaskFilter {
            offset: (a.tasks / 2) as usize,
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0)
        .id;
    let task_page = format!("/ui/tasks/{}/{}", some_task.repo(), some_task.number());
    let last_page = a.tasks as usize / 50;
    let pages = [
        "/ui".to_string(),
        "/ui/queue".to_string(),
        format!("/ui/queue?state=completed&page={}", last_page * 8 / 10),
        "/ui/queue?repo=acme/gadgets&q=faster&page=3".to_string(),
        "/ui/queue?q=issue+9999".to_string(),
        task_page,
        "/ui/workers".to_string(),
        "/ui/writeback".to_string(),
    ];
    let mut over = false;
    println!("{:<48} {:>10} {:>10}", "page", "median", "slowest");
    for page in &pages {
        let mut times = Vec::with_capacity(a.rounds);
        for _ in 0..a.rounds {
            let t = Instant::now();
            let resp = http.get(format!("{url}{page}")).send().await.expect("GET");
            let status = resp.status();
            let body = resp.text().await.expect("body");
            times.push(t.elapsed());
            assert!(status.is_success(), "{page}: {status}: {body}");
        }
        times.sort();
        let median = times[times.len() / 2];
        over |= median > BUDGET;
        println!(
            "{page:<48} {:>10.1?} {:>10.1?}",
            median,
            times[times.len() - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if over {
        eprintln!("a page's median passed {BUDGET:?}");
        std::process::exit(1);
    }
}
