//! The GitHub client plugged into scrum-core's engine, against the fake: an issue goes
//! from `ai-ready` to `ai-completed` with one comment, and closing an issue cancels
//! its task.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryQueue, ScriptedRunner};
use scrum_core::runner::RunOutcome;
use scrum_core::state::Policy;
use scrum_core::worker::WorkerLoop;
use scrum_core::{Completion, TaskState, WorkQueue, WorkerId};
use scrum_github::fake::NewIssue;

#[tokio::test]
async fn an_issue_runs_from_ready_to_completed_on_github() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue(
        "acme/widgets",
        NewIssue::new("Add a widget").labels(&["ai-ready"]),
    );
    github.add_issue(
        "acme/widgets",
        NewIssue::new("A labelled PR")
            .labels(&["ai-ready"])
            .pull_request("x"),
    );
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), Arc::new(client.clone())).build();

    let report = orchestrator.poll_once().await.unwrap();
    assert_eq!((report.listed, report.created), (1, 1));
    orchestrator.dispatch_once().await.unwrap();
    assert_eq!(github.labels(&id), ["ai-ready", "ai-in-progress"]);

    let runner = ScriptedRunner::new(|a| {
        (
            Duration::from_millis(5),
            RunOutcome::Success(Completion {
                pr_url: Some(format!(
                    "https://github.com/acme/widgets/pull/{}",
                    a.task.number() + 10
                )),
                ..Completion::default()
            }),
        )
    });
    let worker = WorkerLoop::new(
        WorkerId::new("worker-1").unwrap(),
        Arc::new(orchestrator.clone()),
        Arc::new(runner),
    );
    worker
        .run_one()
        .await
        .unwrap()
        .expect("a task was handed out");
    orchestrator.dispatch_once().await.unwrap();
    orchestrator.dispatch_once().await.unwrap();

    assert_eq!(github.labels(&id), ["ai-completed"]);
    let comments = github.comments(&id);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("https://github.com/acme/widgets/pull/11"));
    assert!(
        comments[0].contains("<!-- scrum-orchestrator:acme/widgets#1:run-1:pull -->"),
        "the completion with a pull request is the pull request's status comment, edited in place by follow-ups: {comments:?}"
    );
    let task = queue.get(&id).await.unwrap().unwrap();
    assert_eq!(task.state(), TaskState::Completed);

    // The next poll finds nothing to queue.
    let report = orchestrator.poll_once().await.unwrap();
    assert_eq!((report.listed, report.created, report.requeued), (0, 0, 0));
}

#[tokio::test]
async fn closing_an_issue_cancels_its_pending_task() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue(
        "acme/widgets",
        NewIssue::new("Add a widget").labels(&["ai-ready"]),
    );
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), Arc::new(client)).build();
    orchestrator.poll_once().await.unwrap();

    github.close_issue(&id);
    let report = orchestrator.poll_once().await.unwrap();

    assert_eq!(report.cancelled, 1);
    assert_eq!(
        queue.get(&id).await.unwrap().unwrap().state(),
        TaskState::Cancelled
    );
}
