//! `OrchestratorClient` against `serve` on a real socket: the worker loop end to
//! end, long polls, retries, error mapping and shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Fixture;
use scrum_core::memory::ScriptedRunner;
use scrum_core::runner::RunOutcome;
use scrum_core::worker::{Handled, WorkSource, WorkerLoop};
use scrum_core::{Completion, ErrorKind, Failure, LeaseKind, TaskState, WorkerId};
use scrum_http::wire::{CompleteRequest, LeaseMode, TaskRef};
use scrum_http::{ApiConfig, ApiToken, OrchestratorClient, serve};

const TOKEN: &str = "socket-test-token-0123";

async fn start(f: &Fixture) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, f.state.clone(), std::future::pending()));
    url
}

fn secured() -> Fixture {
    Fixture::with(ApiConfig {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        ..ApiConfig::default()
    })
}

fn client(url: &str) -> OrchestratorClient {
    OrchestratorClient::new(url)
        .unwrap()
        .with_token(ApiToken::new(TOKEN).unwrap())
        .with_retries(4, Duration::from_millis(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_loop_runs_a_task_over_http() {
    let f = secured();
    let id = f.queue_issue().await;
    let url = start(&f).await;
    let runner = ScriptedRunner::new(|a| {
        (
            Duration::from_millis(1),
            RunOutcome::Success(Completion {
                pr_url: Some(format!(
                    "https://github.com/acme/widgets/pull/{}",
                    a.task.number() + 100
                )),
                cost_usd: Some(0.25),
                tokens: Some(10),
                revisions: None,
            }),
        )
    });
    let worker = WorkerLoop::new(
        WorkerId::new("worker-1").unwrap(),
        Arc::new(client(&url)),
        Arc::new(runner),
    )
    .wait(Duration::ZERO);
    let (task, handled) = worker.run_one().await.unwrap().unwrap();
    assert_eq!(task, id);
    assert!(matches!(handled, Handled::Reported(RunOutcome::Success(_))));
    let stored = f.task(&id).await;
    assert_eq!(stored.state(), TaskState::Completed);
    assert_eq!(
        stored.completion().unwrap().pr_url.as_deref(),
        Some("https://github.com/acme/widgets/pull/101")
    );
    // A heartbeat lease, not the run-time one.
    let attempt = stored.last_attempt().unwrap();
    assert_eq!(attempt.lease, LeaseKind::Heartbeat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_source_calls_map_to_the_api() {
    let f = secured();
    let id = f.queue_issue().await;
    let url = start(&f).await;
    let c = client(&url);
    let me = WorkerId::new("worker-1").unwrap();
    let a = WorkSource::next(&c, &me, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.task, id);
    assert_eq!(a.branch_name, "ai-feature/issue-1");
    assert_eq!(a.heartbeat_interval, Duration::from_secs(20));
    let beat = WorkSource::heartbeat(&c, &me, &a).await.unwrap();
    assert!(!beat.cancel);
    assert!(beat.lease_expires_at >= a.lease_expires_at);
    WorkSource::release(&c, &me, &a, "shutting down")
        .await
        .unwrap();
    assert_eq!(f.task(&id).await.state(), TaskState::Pending);

    let a = WorkSource::next(&c, &me, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let failure = Failure {
        reason: "nope".into(),
        retryable: false,
        ..Failure::default()
    };
    WorkSource::fail(&c, &me, &a, failure.clone())
        .await
        .unwrap();
    assert_eq!(f.task(&id).await.state(), TaskState::Failed);
    // The old assignment's lease is gone: a report with it is LeaseLost, and the
    // worker loop knows to stop on that kind.
    let err = WorkSource::heartbeat(&c, &me, &a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_sent_twice_takes_effect_once() {
    let f = secured();
    let id = f.queue_issue().await;
    let url = start(&f).await;
    let c = client(&url);
    let work = c
        .next_work("w", Duration::ZERO, LeaseMode::Heartbeat)
        .await
        .unwrap()
        .unwrap();
    let req = CompleteRequest {
        task: TaskRef {
            worker_id: "w".into(),
            issue_number: work.issue_number,
            repository: Some(work.repository.clone()),
            lease_token: Some(work.lease_token.clone()),
        },
        pr_url: Some("https://github.com/acme/widgets/pull/5".into()),
        success: true,
        error: None,
        cost_usd: None,
        tokens: None,
        revisions: None,
    };
    assert_eq!(c.complete(&req).await.unwrap().state, "completed");
    assert_eq!(c.complete(&req).await.unwrap().state, "completed");
    assert_eq!(f.task(&id).await.state(), TaskState::Completed);
    let health = c.health().await.unwrap();
    assert_eq!(health.queue.completed, 1);
    // The sections beyond the Python orchestrator's reach a typed client too.
    let dispatch = health.dispatch.expect("the dispatch section");
    assert!(!dispatch.paused);
    assert!(
        health
            .github
            .is_some_and(|g| g.connected == health.github_connected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polling_client_gets_a_task_as_soon_as_it_is_queued() {
    let f = secured();
    let url = start(&f).await;
    let c = client(&url);
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        c.next_work("waiter", Duration::from_secs(25), LeaseMode::Heartbeat)
            .await
    });
    f.until_listed("waiter").await;
    let id = f.queue_issue().await;
    let work = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!(work.task_id, id.to_string());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_503_and_gives_up_after_its_attempts() {
    let f = secured();
    f.queue_issue().await;
    let url = start(&f).await;
    f.queue.faults().fail_next(2);
    let work = client(&url)
        .next_work("w", Duration::ZERO, LeaseMode::Heartbeat)
        .await
        .unwrap();
    assert!(work.is_some());

    f.queue.faults().fail_next(5);
    let once = client(&url).with_retries(1, Duration::from_millis(1));
    let err = once
        .workers()
        .await
        .map(|_| ())
        .and(once.queue(&Default::default()).await.map(|_| ()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_back_as_core_error_kinds() {
    let f = secured();
    f.queue_issue().await;
    let url = start(&f).await;
    let anonymous = OrchestratorClient::new(&url).unwrap();
    let err = anonymous.workers().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(anonymous.health().await.is_ok());

    let c = client(&url);
    let err = c
        .next_work("bad id", Duration::ZERO, LeaseMode::RunTime)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err = c
        .retry(&"acme/widgets#9".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c
        .retry(&"acme/widgets#1".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    assert_eq!(c.pause().await.unwrap().paused, Some(true));
    assert!(
        c.next_work("w", Duration::ZERO, LeaseMode::RunTime)
            .await
            .unwrap()
            .is_none()
    );
    c.resume().await.unwrap();
    c.drain("w", true).await.unwrap();
    assert!(
        c.next_work("w", Duration::ZERO, LeaseMode::RunTime)
            .await
            .unwrap()
            .is_none()
    );
    c.drain("w", false).await.unwrap();
    assert!(
        c.next_work("w", Duration::ZERO, LeaseMode::RunTime)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(c.workers().await.unwrap().workers[0].status, "busy");
    assert_eq!(
        c.queue(&Default::default())
            .await
            .unwrap()
            .in_progress
            .len(),
        1
    );
    let cancelled = c
        .cancel(&"acme/widgets#1".parse().unwrap(), "operator")
        .await
        .unwrap();
    assert!(cancelled.task.unwrap().cancel_requested);
    assert!(c.metrics().await.unwrap().contains("scrum_claims_total 1"));
    assert_eq!(c.openapi().await.unwrap()["openapi"], "3.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_after_shutdown() {
    let f = Fixture::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, f.state.clone(), async move {
        let _ = stopped.await;
    }));
    let c = OrchestratorClient::new(&url)
        .unwrap()
        .with_retries(1, Duration::from_millis(1));
    assert_eq!(c.health().await.unwrap().status, "healthy");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let err = c.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}
