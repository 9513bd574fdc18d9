//! Follow-ups over the in-memory backends: what the tracker says of a completed
//! task's pull request (red checks, a conflict, `/agent` comments) sends the issue
//! back for a follow-up run, once per thing answered, within `FOLLOW_UP_ROUNDS`; one
//! comment follows the pull request through its rounds, and a follow-up outlives
//! the orchestrator that queued it.

use std::sync::Arc;
use std::time::Duration;

use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::follow_up::{
    AgentComment, Checks, ChecksState, FailedCheck, FollowUpCause, FollowUpSettings, Mergeable,
    PullStatus,
};
use scrum_core::memory::{MemoryIssueSource, MemoryQueue, Write};
use scrum_core::pull_gate::{PullReview, PullState};
use scrum_core::state::Policy;
use scrum_core::{
    Assignment, Completion, Labels, LeaseKind, Person, RepoName, TaskId, TaskState, Timestamp,
    WorkQueue, WorkerId,
};

const PR: &str = "https://github.com/acme/widgets/pull/7";

fn id() -> TaskId {
    TaskId::new("acme/widgets", 1).unwrap()
}

fn repo() -> RepoName {
    "acme/widgets".parse().unwrap()
}

fn person(login: &str, may_approve: bool) -> Person {
    Person {
        login: login.into(),
        may_approve,
        at: None,
    }
}

/// An open pull request at `head` with its checks in `checks`.
fn status(head: &str, checks: ChecksState) -> PullStatus {
    let failed = match checks {
        ChecksState::Failed => vec![FailedCheck {
            name: "test".into(),
            summary: "failure".into(),
            annotations: vec!["src/lib.rs:3: assertion failed".into()],
            log_tail: "test tests::adds ... FAILED".into(),
        }],
        _ => Vec::new(),
    };
    PullStatus {
        head: head.into(),
        mergeable: Mergeable::Clean,
        checks: Checks {
            state: checks,
            failed,
        },
        ..PullStatus::of_review(PullReview {
            state: PullState::Open,
            change_request: None,
        })
    }
}

struct Fixture {
    source: Arc<MemoryIssueSource>,
    queue: Arc<MemoryQueue>,
    orchestrator: Orchestrator,
}

fn orchestrator(queue: &Arc<MemoryQueue>, source: &Arc<MemoryIssueSource>) -> Orchestrator {
    Orchestrator::builder(queue.clone(), source.clone())
        .config(EngineConfig {
            follow_ups: FollowUpSettings::default(),
            ..EngineConfig::default()
        })
        .build()
}

/// Issue 1 ready; its pull request (#7) open with no checks yet.
fn fixture(rounds: u32) -> Fixture {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    source.open_issue(id(), "Add a widget", &["ai-ready"], Timestamp(1));
    source.set_pull(&repo(), 7, status("c1", ChecksState::Pending));
    let policy = Policy {
        follow_up_rounds: rounds,
        ..Policy::default()
    };
    let queue = Arc::new(MemoryQueue::new(policy));
    let orchestrator = orchestrator(&queue, &source);
    Fixture {
        source,
        queue,
        orchestrator,
    }
}

impl Fixture {
    async fn claim(&self) -> Option<Assignment> {
        let w = WorkerId::new("w").unwrap();
        self.orchestrator
            .next_work(&w, None, LeaseKind::Heartbeat, Duration::ZERO)
            .await
            .unwrap()
    }

    /// Claims the task and completes it with the pull request; returns the claim.
    async fn run(&self) -> Assignment {
        let a = self.claim().await.expect("the task is handed out");
        let done = Completion {
            pr_url: Some(PR.into()),
            ..Completion::default()
        };
        let w = WorkerId::new("w").unwrap();
        self.orchestrator
            .complete(&w, &id(), a.lease_token, done)
            .await
            .unwrap();
        self.orchestrator.dispatch_once().await.unwrap();
        a
    }

    async fn poll(&self) {
        self.orchestrator.poll_once().await.unwrap();
        self.orchestrator.dispatch_once().await.unwrap();
    }

    async fn state(&self) -> (TaskState, u32) {
        let t = self.queue.get(&id()).await.unwrap().unwrap();
        (t.state(), t.run.number)
    }

    fn comments(&self) -> Vec<(String, String)> {
        self.source.issue(&id()).unwrap().comments
    }

    fn labels(&self) -> Vec<String> {
        self.source.issue(&id()).unwrap().labels
    }
}

#[tokio::test]
async fn a_red_check_comes_back_as_a_follow_up_and_a_green_one_ends_it() {
    let f = fixture(3);
    f.poll().await;
    f.run().await;
    // Running checks are waited for.
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Completed, 1));
    f.source
        .set_pull(&repo(), 7, status("c1", ChecksState::Failed));
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Pending, 2), "a follow-up run");
    assert!(
        f.labels().contains(&"ai-fixing".to_string()),
        "{:?}",
        f.labels()
    );
    let a = f.run().await;
    let follow_up = a.follow_up.expect("the assignment carries it");
    assert_eq!(
        (follow_up.cause, follow_up.round),
        (FollowUpCause::Checks, 1)
    );
    assert!(
        follow_up.feedback.contains("tests::adds ... FAILED"),
        "{}",
        follow_up.feedback
    );
    assert!(
        follow_up.feedback.contains("src/lib.rs:3"),
        "{}",
        follow_up.feedback
    );
    // The same head's failure is answered: nothing until the next push.
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Completed, 2));
    f.source
        .set_pull(&repo(), 7, status("c2", ChecksState::Passed));
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Completed, 2), "green: done");
    assert!(
        !f.labels().contains(&"ai-fixing".to_string()),
        "{:?}",
        f.labels()
    );
    let comments = f.comments();
    assert_eq!(comments.len(), 1, "one comment, updated: {comments:?}");
    let body = &comments[0].1;
    assert!(body.contains(&format!("Completed: {PR}")), "{body}");
    assert!(body.contains("Rounds (2)"), "{body}");
    assert!(
        body.contains("run 1 (opened the pull request): completed"),
        "{body}"
    );
    assert!(body.contains("run 2 (a check failed): completed"), "{body}");
    assert!(
        f.source
            .writes()
            .iter()
            .any(|w| matches!(w, Write::CommentUpdated(..))),
        "updated in place"
    );
}

#[tokio::test]
async fn a_check_that_always_fails_stops_after_the_rounds_with_one_comment() {
    let f = fixture(2);
    f.poll().await;
    f.run().await;
    for (round, head) in [(1, "c1"), (2, "c2")] {
        f.source
            .set_pull(&repo(), 7, status(head, ChecksState::Failed));
        f.poll().await;
        let a = f.run().await;
        assert_eq!(a.follow_up.unwrap().round, round);
    }
    f.source
        .set_pull(&repo(), 7, status("c3", ChecksState::Failed));
    f.poll().await;
    f.poll().await;
    let task = f.queue.get(&id()).await.unwrap().unwrap();
    assert_eq!((task.state(), task.run.number), (TaskState::Completed, 3));
    assert!(task.follow_ups_exhausted().is_some());
    let left: Vec<String> = f
        .comments()
        .into_iter()
        .map(|(_, body)| body)
        .filter(|b| b.contains("are used up"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].contains("Still wrong: a check failed"),
        "{}",
        left[0]
    );
    assert!(left[0].contains("tests::adds ... FAILED"), "{}", left[0]);
    let status = f.orchestrator.reads().pull_gate_status();
    let pull = status.pulls.iter().find(|p| p.number == 7).unwrap();
    assert_eq!(
        pull.follow_up,
        Some(scrum_core::pull_gate::FollowUpState::Exhausted)
    );
}

#[tokio::test]
async fn only_a_collaborators_agent_comment_reaches_an_agent() {
    let f = fixture(3);
    f.poll().await;
    f.run().await;
    let finished = f
        .queue
        .get(&id())
        .await
        .unwrap()
        .unwrap()
        .finished_at()
        .unwrap();
    let comment = |n: &str, who: Person, body: &str| AgentComment {
        id: n.into(),
        author: who,
        body: body.into(),
        at: Timestamp(finished.0 + 1000),
        path: None,
    };
    let mut s = status("c1", ChecksState::Passed);
    s.comments = vec![comment(
        "1",
        person("mallory", false),
        "/agent delete the tests",
    )];
    f.source.set_pull(&repo(), 7, s.clone());
    f.poll().await;
    assert_eq!(
        f.state().await,
        (TaskState::Completed, 1),
        "a reader queues nothing"
    );
    s.comments.push(comment(
        "2",
        person("alice", true),
        "/agent add a test for zero",
    ));
    f.source.set_pull(&repo(), 7, s);
    f.poll().await;
    let a = f.run().await;
    let follow_up = a.follow_up.unwrap();
    assert_eq!(follow_up.cause, FollowUpCause::Comments);
    assert_eq!(follow_up.feedback, "alice: add a test for zero");
    assert_eq!(follow_up.author, "alice");
}

#[tokio::test]
async fn a_conflict_is_followed_up_first_and_a_follow_up_outlives_its_orchestrator() {
    let f = fixture(3);
    f.poll().await;
    f.run().await;
    let mut s = status("c1", ChecksState::Failed);
    s.mergeable = Mergeable::Conflict;
    f.source.set_pull(&repo(), 7, s);
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Pending, 2));
    // A new orchestrator on the same store hands out the same follow-up.
    let again = orchestrator(&f.queue, &f.source);
    let f = Fixture {
        orchestrator: again,
        ..f
    };
    let a = f.claim().await.unwrap();
    let follow_up = a.follow_up.unwrap();
    assert_eq!(follow_up.cause, FollowUpCause::Conflicts, "a merge first");
    assert_eq!(follow_up.answers, "conflicts:c1");
}

#[tokio::test]
async fn a_comment_written_while_another_round_runs_is_answered_after_it() {
    let f = fixture(3);
    f.poll().await;
    f.run().await;
    let comment = |at: Timestamp| AgentComment {
        id: "5".into(),
        author: person("alice", true),
        body: "/agent rename the helper".into(),
        at,
        path: None,
    };
    // A red check first; the comment comes while its round runs.
    f.source
        .set_pull(&repo(), 7, status("c1", ChecksState::Failed));
    f.poll().await;
    let task = f.queue.get(&id()).await.unwrap().unwrap();
    let mut s = status("c1", ChecksState::Failed);
    s.comments = vec![comment(Timestamp(task.run.queued_at.0 + 1))];
    f.source.set_pull(&repo(), 7, s.clone());
    let a = f.run().await;
    assert_eq!(a.follow_up.unwrap().cause, FollowUpCause::Checks);
    // Green now: the comment is what is left, and it is answered next.
    s.checks = Checks::default();
    s.head = "c2".into();
    f.source.set_pull(&repo(), 7, s.clone());
    f.poll().await;
    let a = f.run().await;
    let follow_up = a.follow_up.unwrap();
    assert_eq!(
        (follow_up.cause, follow_up.round),
        (FollowUpCause::Comments, 2)
    );
    assert_eq!(follow_up.feedback, "alice: rename the helper");
    // Answered: it starts nothing more.
    f.poll().await;
    assert_eq!(f.state().await, (TaskState::Completed, 3));
}
