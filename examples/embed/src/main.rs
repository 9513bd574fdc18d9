//! Embedding the orchestrator: an engine over an issue tracker of your own (a JSON
//! file, `tracker.rs`), served by `scrum_http::run` exactly as `scrum-orchestrator`
//! serves it, with one worker calling its HTTP API and running a pretend workflow
//! (`workflow.rs`). Run it with `cargo run -p scrum-embed [-- ISSUES.json]`
//! (without a file: a copy of the sample issues).

mod tracker;
mod workflow;

use std::{sync::Arc, time::Duration};

use scrum_core::engine::Orchestrator;
use scrum_core::{WorkerId, memory::MemoryQueue, state::Policy, worker::WorkerLoop};
use scrum_http::{ApiConfig, ApiState, OrchestratorClient};
use tracker::FileTracker;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tracker = Arc::new(FileTracker::open_or_sample(std::env::args().nth(1))?);
    let queue = Arc::new(MemoryQueue::new(Policy::default())); // or scrum_store::open(url, policy)
    let engine = Orchestrator::builder(queue, tracker.clone()).build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = ApiState::new(engine, ApiConfig::default());
    let service = tokio::spawn(scrum_http::run(listener, state, async {
        stopped.await.ok();
    }));
    println!("API on {url}, issues in {}", tracker.path().display());

    let client = Arc::new(OrchestratorClient::new(&url)?);
    let worker = WorkerLoop::new(WorkerId::new("embedded-1")?, client, workflow::pretend());
    let worker = worker.wait(Duration::from_secs(1));
    tokio::time::timeout(Duration::from_secs(60), async {
        while !tracker.settled() {
            worker.run_one().await?;
        }
        anyhow::Ok(())
    })
    .await??;
    print!("{}", tracker.summary());
    stop.send(()).ok();
    Ok(service.await??)
}
