//! The WorkSource conformance suite on `OrchestratorClient`: each engine is served
//! by `serve` on its own loopback socket, and the client talks to it over HTTP.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::Orchestrator;
use scrum_core::worker::WorkSource;
use scrum_http::{ApiConfig, ApiState, OrchestratorClient, serve};

async fn make(engine: Orchestrator) -> Arc<dyn WorkSource> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let state = ApiState::new(engine, ApiConfig::default());
    // Served until the test's runtime shuts down.
    tokio::spawn(serve(listener, state, std::future::pending()));
    let client = OrchestratorClient::new(&url)
        .expect("a client")
        .with_retries(4, Duration::from_millis(10));
    Arc::new(client)
}

scrum_core::work_conformance!(make);
