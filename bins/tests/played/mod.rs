//! What the black-box tests that play a worker over the HTTP API share: asking
//! for work as `worker-1` and reporting on it.

#![allow(dead_code)]

use std::time::Duration;

use scrum_http::OrchestratorClient;
use scrum_http::wire::{CompleteRequest, LeaseMode, NextResponse, TaskRef, WorkItem};

/// The worker these tests play.
pub(crate) const WORKER: &str = "worker-1";

/// `/work/next` as `worker-1` answers it, waiting up to `secs`.
pub(crate) async fn next_response(client: &OrchestratorClient, secs: u64) -> NextResponse {
    client
        .next_response(WORKER, Duration::from_secs(secs), LeaseMode::Heartbeat)
        .await
        .unwrap()
}

/// The work handed to `worker-1`, waiting up to `secs`.
pub(crate) async fn next(client: &OrchestratorClient, secs: u64) -> Option<WorkItem> {
    let r = next_response(client, secs).await;
    r.work.filter(|_| r.work_available)
}

/// Completes `w` with `pr_url` and `cost_usd`.
pub(crate) async fn complete(
    client: &OrchestratorClient,
    w: &WorkItem,
    pr_url: Option<String>,
    cost_usd: Option<f64>,
) {
    let done = CompleteRequest {
        task: TaskRef::of(WORKER, w),
        pr_url,
        success: true,
        error: None,
        cost_usd,
        tokens: None,
        revisions: None,
    };
    client.complete(&done).await.unwrap();
}

/// Runs `f` to completion from a synchronous closure (a `Fleet::wait_for`
/// condition): `None` when it fails.
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = scrum_core::Result<T>>,
) -> Option<T> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f)).ok()
}
