//! Embedding the orchestrator: an engine over an issue tracker of your own (a JSON
//! file, `tracker.rs`), served by `scrum_http::run` exactly as `scrum-orchestrator`
//! serves it, with one worker calling its HTTP API. Run it with
//! `cargo run -p scrum-embed [-- ISSUES.json]` (without a file: a copy of the sample).

mod tracker;

use std::{sync::Arc, time::Duration};

use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::{Completion, RunOutcome, WorkerId, memory::*, state::Policy, worker::WorkerLoop};
use scrum_http::{ApiConfig, ApiState, OrchestratorClient};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tracker = Arc::new(tracker::FileTracker::open_or_sample(
        std::env::args().nth(1),
    )?);
    let queue = Arc::new(MemoryQueue::new(Policy::default())); // or scrum_store::open(url, policy)
    let config = EngineConfig {
        poll_interval: Duration::from_secs(1),
        ..EngineConfig::default()
    };
    let engine = Orchestrator::builder(queue, tracker.clone())
        .config(config)
        .build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = ApiState::new(engine, ApiConfig::default());
    let service = tokio::spawn(scrum_http::run(listener, state, async {
        stopped.await.ok();
    }));
    println!(
        "orchestrator API on {url}; issues in {}",
        tracker.path().display()
    );

    let runner = ScriptedRunner::new(|a| {
        let pr_url = Some(format!(
            "https://example.com/{}/pull/{}",
            a.task.repo(),
            a.task.number()
        ));
        (
            Duration::from_millis(200),
            RunOutcome::Success(Completion {
                pr_url,
                ..Default::default()
            }),
        )
    });
    let client = Arc::new(OrchestratorClient::new(&url)?);
    let worker = WorkerLoop::new(WorkerId::new("embedded-1")?, client, Arc::new(runner));
    let worker = worker.wait(Duration::from_secs(1));
    tokio::time::timeout(Duration::from_secs(60), async {
        while !tracker.settled() {
            worker.run_one().await?;
        }
        anyhow::Ok(())
    })
    .await??;
    for i in tracker.issues() {
        println!(
            "#{} {:?}: {:?}, {} comment(s)",
            i.number,
            i.title,
            i.labels,
            i.comments.len()
        );
    }
    stop.send(()).ok();
    Ok(service.await??)
}
