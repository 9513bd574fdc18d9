//! The worker loop against the engine in-process, on tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::Orchestrator;
use scrum_core::faults::{Faults, Faulty};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue, ScriptedRunner};
use scrum_core::state::Policy;
use scrum_core::worker::{Handled, MockWorkSource, WorkerLoop};
use scrum_core::{
    Assignment, Completion, Error, Labels, LeaseToken, ReadyIssue, RunOutcome, TaskId, TaskState,
    Timestamp, WorkQueue, WorkerId,
};
use tokio_util::sync::CancellationToken;

fn id() -> TaskId {
    "acme/widgets#1".parse().unwrap()
}

async fn engine() -> (Arc<MemoryIssueSource>, Arc<MemoryQueue>, Orchestrator) {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    source.open_issue(id(), "Add a widget", &["ai-ready"], Timestamp(0));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let o = Orchestrator::builder(queue.clone(), source.clone()).build();
    o.poll_once().await.unwrap();
    (source, queue, o)
}

fn ten_minute_job() -> ScriptedRunner {
    ScriptedRunner::new(|_| {
        (
            Duration::from_secs(600),
            RunOutcome::Success(Completion::default()),
        )
    })
}

fn worker(o: &Orchestrator, runner: ScriptedRunner) -> WorkerLoop {
    WorkerLoop::new(
        WorkerId::new("w").unwrap(),
        Arc::new(o.clone()),
        Arc::new(runner),
    )
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_long_task_and_a_cancellation_stops_it() {
    let (source, queue, o) = engine().await;
    let w = worker(&o, ten_minute_job());
    let run = tokio::spawn(async move { w.run_one().await.unwrap() });
    // Five minutes in, well past one 60 s lease, the task is still held.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(o.reap_once().await.unwrap().is_empty());
    assert_eq!(
        queue.get(&id()).await.unwrap().unwrap().state(),
        TaskState::InProgress
    );
    // The issue is closed: the next heartbeat tells the worker, which hands it back.
    source.close(&id());
    o.poll_once().await.unwrap();
    let (_, handled) = run.await.unwrap().unwrap();
    assert_eq!(
        handled,
        Handled::Reported(RunOutcome::Release("cancelled".into()))
    );
    assert_eq!(
        queue.get(&id()).await.unwrap().unwrap().state(),
        TaskState::Cancelled
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_stops_the_run_and_reports_nothing() {
    let (_, queue, o) = engine().await;
    let w = worker(&o, ten_minute_job());
    let started = tokio::time::Instant::now();
    let run = tokio::spawn(async move { w.run_one().await.unwrap() });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The orchestrator gives up on the task behind the worker's back.
    let held = queue.get(&id()).await.unwrap().unwrap();
    let token = held.lease().unwrap().token;
    o.fail(
        &WorkerId::new("w").unwrap(),
        &id(),
        token,
        scrum_core::Failure {
            reason: "x".into(),
            retryable: true,
            ..scrum_core::Failure::default()
        },
    )
    .await
    .unwrap();
    let (_, handled) = run.await.unwrap().unwrap();
    assert_eq!(handled, Handled::LeaseLost);
    assert!(
        started.elapsed() <= Duration::from_secs(21),
        "stopped at the next heartbeat, not after 10 minutes"
    );
    let t = queue.get(&id()).await.unwrap().unwrap();
    assert_eq!((t.state(), t.completion()), (TaskState::Pending, None));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_task_finish_within_the_grace_period_then_releases() {
    let (_, queue, o) = engine().await;
    let stop = CancellationToken::new();
    let w = worker(&o, ten_minute_job()).shutdown_grace(Duration::from_secs(60));
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { w.run(stop).await }
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.cancel();
    running.await.unwrap();
    // Ten minutes of work do not fit in a 60 s grace: the task was handed back, no
    // attempt spent.
    let t = queue.get(&id()).await.unwrap().unwrap();
    assert_eq!(t.state(), TaskState::Pending);
    assert!(t.handed_back(), "the attempt is handed back");
}

#[tokio::test(start_paused = true)]
async fn a_report_that_fails_transiently_is_sent_again() {
    let assignment = Assignment {
        task: id(),
        issue: Arc::new(ReadyIssue {
            id: id(),
            title: "t".into(),
            body: String::new(),
            labels: vec![],
            created_at: Timestamp(0),
        }),
        branch_name: "ai-feature/issue-1".into(),
        lease_token: LeaseToken(1),
        lease_expires_at: Timestamp(60_000),
        attempt: 1,
        max_attempts: 2,
        heartbeat_interval: Duration::from_secs(20),
        text_digest: None,
        budget_left_usd: None,
        follow_up: None,
        repo_token: None,
    };
    let mut source = MockWorkSource::new();
    let mut calls = mockall::Sequence::new();
    source
        .expect_complete()
        .times(2)
        .in_sequence(&mut calls)
        .returning(|_, _, _| Err(Error::unavailable("orchestrator restarting")));
    source
        .expect_complete()
        .times(1)
        .in_sequence(&mut calls)
        .returning(|_, _, _| Ok(()));
    let runner = ScriptedRunner::new(|_| {
        (
            Duration::from_secs(1),
            RunOutcome::Success(Completion::default()),
        )
    });
    let w = WorkerLoop::new(
        WorkerId::new("w").unwrap(),
        Arc::new(source),
        Arc::new(runner),
    );
    let handled = w.handle(assignment, &CancellationToken::new()).await;
    assert_eq!(
        handled,
        Handled::Reported(RunOutcome::Success(Completion::default()))
    );
}

#[tokio::test(start_paused = true)]
async fn work_finished_during_an_orchestrator_outage_is_accepted_after_the_restart() {
    let (_, queue, o) = engine().await;
    // The worker reaches the orchestrator through a switch that can make it refuse
    // every call, as a stopped orchestrator would.
    let reach = Arc::new(Faulty::new(o.clone(), Faults::default()));
    let w = WorkerLoop::new(
        WorkerId::new("w").unwrap(),
        reach.clone(),
        Arc::new(ten_minute_job()),
    );
    let run = tokio::spawn(async move { w.run_one().await.unwrap() });
    tokio::time::sleep(Duration::from_secs(60)).await;
    // The orchestrator stops for half an hour, far longer than a 60 s lease; the
    // worker finishes meanwhile and keeps trying to report.
    reach.faults().error_rate(1.0);
    tokio::time::sleep(Duration::from_secs(1800)).await;
    // It starts again: held leases get one lease period before it serves and reaps.
    assert_eq!(o.resume_leases().await.unwrap(), 1);
    reach.faults().error_rate(0.0);
    assert!(o.reap_once().await.unwrap().is_empty());
    let (_, handled) = run.await.unwrap().unwrap();
    assert_eq!(
        handled,
        Handled::Reported(RunOutcome::Success(Completion::default()))
    );
    let t = queue.get(&id()).await.unwrap().unwrap();
    assert_eq!((t.state(), t.attempts()), (TaskState::Completed, 1));
}

#[tokio::test(start_paused = true)]
async fn text_that_does_not_match_its_digest_is_never_run() {
    let assignment = Assignment {
        task: id(),
        issue: Arc::new(ReadyIssue {
            id: id(),
            title: "t".into(),
            body: "rewritten on the way".into(),
            labels: vec![],
            created_at: Timestamp(0),
        }),
        branch_name: "ai-feature/issue-1".into(),
        lease_token: LeaseToken(1),
        lease_expires_at: Timestamp(60_000),
        attempt: 1,
        max_attempts: 2,
        heartbeat_interval: Duration::from_secs(20),
        text_digest: Some(scrum_core::model::text_digest("t", "the approved body")),
        budget_left_usd: None,
        follow_up: None,
        repo_token: None,
    };
    let mut source = MockWorkSource::new();
    source
        .expect_fail()
        .times(1)
        .withf(|_, _, f| f.reason == scrum_core::worker::TEXT_MISMATCH && f.retryable)
        .returning(|_, _, _| Ok(()));
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = ScriptedRunner::new({
        let ran = ran.clone();
        move |_| {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            (
                Duration::from_secs(1),
                RunOutcome::Success(Completion::default()),
            )
        }
    });
    let w = WorkerLoop::new(
        WorkerId::new("w").unwrap(),
        Arc::new(source),
        Arc::new(runner),
    );
    let handled = w.handle(assignment, &CancellationToken::new()).await;
    assert!(matches!(handled, Handled::Reported(RunOutcome::Failure(_))));
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "the workflow ran"
    );
}

/// `exit_when_idle`: a worker with a ten-minute task and a one-minute idle limit
/// finishes the task (it never leaves busy), then leaves once a minute passed
/// without work.
#[tokio::test(start_paused = true)]
async fn an_idle_worker_leaves_but_never_a_busy_one() {
    let (_source, queue, o) = engine().await;
    let w = worker(&o, ten_minute_job())
        .poll_interval(Duration::from_secs(5))
        .wait(Duration::from_secs(5))
        .exit_when_idle(Duration::from_secs(60));
    let started = tokio::time::Instant::now();
    let run = tokio::spawn(async move { w.run(CancellationToken::new()).await });
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(!run.is_finished(), "the worker left while busy");
    assert_eq!(
        queue.get(&id()).await.unwrap().unwrap().state(),
        TaskState::InProgress
    );
    tokio::time::timeout(Duration::from_secs(900), run)
        .await
        .expect("the idle worker never left")
        .unwrap();
    let ran = started.elapsed();
    assert_eq!(
        queue.get(&id()).await.unwrap().unwrap().state(),
        TaskState::Completed
    );
    // Ten minutes of work, then about a minute idle (polls are 10 s apart).
    assert!(
        ran >= Duration::from_secs(660) && ran <= Duration::from_secs(680),
        "{ran:?}"
    );
}
