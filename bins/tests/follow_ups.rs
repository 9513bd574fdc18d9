//! Follow-ups end to end: the real `scrum-orchestrator` against the fake GitHub
//! (real git remotes, a CI script per repository, mergeability computed by git),
//! real `scrum-worker`s running the built-in workflow over the fake `claude`
//! (`scrum_bins::fleet::FAKE_CLAUDE`, which keeps every prompt it got).
//!
//! - **A failed check.** CI fails while the architect's file says "architect pass
//!   1", with a log line naming the failing test. A follow-up run's fix phase gets
//!   that line and pushes to the same branch; CI passes; the task ends done with
//!   one comment, updated, giving two rounds.
//! - **The cap.** A check that always fails stops after `FOLLOW_UP_ROUNDS` with one
//!   comment saying what still fails, and `/metrics` counts the follow-ups.
//! - **A conflict.** The base branch changes the file the pull request adds; the
//!   follow-up merges it, the agent resolves the conflict, and the pull request
//!   becomes mergeable.
//! - **Review comments.** A `/agent` comment by a reader queues nothing; the same
//!   comment by a writer queues a follow-up whose feedback is that comment, and
//!   that follow-up outlives a restart of the orchestrator.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_github::fake::FakeCheck;
use scrum_http::OrchestratorClient;
use scrum_http::wire::QueueQuery;

mod played;

use played::block_on;

const WAIT: Duration = Duration::from_secs(120);

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_scrum-worker"))
        .parent()
        .unwrap()
}

/// The task's run and state (`pending`, `in_progress`, `completed`…) as `/queue`
/// says: the run is the last of its pull request's rounds (1 before any).
fn run_of(client: &OrchestratorClient, id: &TaskId) -> Option<(u32, String)> {
    let q = block_on(client.queue(&QueueQuery::default()))?;
    let lists = [
        ("pending", &q.pending),
        ("in_progress", &q.in_progress),
        ("completed", &q.completed),
        ("failed", &q.failed),
        ("cancelled", &q.cancelled),
    ];
    lists.into_iter().find_map(|(state, list)| {
        let entry = list.iter().find(|t| t.task_id == id.to_string())?;
        let run = entry.rounds.last().map_or(1, |r| r.run);
        Some((run, state.to_string()))
    })
}

/// The time of the orchestrator's last poll, from `/health`.
fn last_poll(client: &OrchestratorClient) -> Option<String> {
    block_on(client.health())?.github?.last_poll
}

/// Waits until the orchestrator polled `n` more times.
async fn polls(fleet: &Fleet, client: &OrchestratorClient, n: usize) {
    let mut seen = Vec::new();
    fleet
        .wait_for("more polls", WAIT, || {
            if let Some(at) = last_poll(client) {
                if seen.last() != Some(&at) {
                    seen.push(at);
                }
            }
            seen.len() > n
        })
        .await;
}

/// Whether `ancestor` is an ancestor of the issue's branch in `repo`'s remote.
fn branch_contains(fleet: &Fleet, repo: &str, id: &TaskId, ancestor: &str) -> bool {
    Command::new("git")
        .args([
            "merge-base",
            "--is-ancestor",
            ancestor,
            &format!("ai-feature/issue-{}", id.number()),
        ])
        .current_dir(fleet.root().join("remotes").join(format!("{repo}.git")))
        .status()
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_check_is_fixed_by_a_follow_up_and_one_that_stays_red_stops_at_the_cap() {
    const GREEN: &str = "acme/checks";
    const RED: &str = "acme/always-red";
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::prepare(
        dir.path(),
        bin_dir(),
        &[(GREEN, "Add a greeting"), (RED, "Add a farewell")],
    )
    .await
    .unwrap();
    let (fixed, stuck) = (fleet.issues[0].clone(), fleet.issues[1].clone());
    fleet.github.ci_fails_while(
        GREEN,
        "test",
        &format!("changes/issue-{}.md", fixed.number()),
        "architect pass 1",
        "test greeting::says_hello ... FAILED",
    );
    fleet.github.set_ci(RED, |_| {
        FakeCheck::failed("test")
            .title("1 test failed")
            .log(&["test farewell::says_bye ... FAILED"])
    });
    fleet.set_env("FOLLOW_UP_ROUNDS", "2");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_agent_worker("agent-1").unwrap();
    fleet.start_agent_worker("agent-2").unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // The red check comes back as a follow-up, fixed on the same branch.
    fleet
        .wait_for("the fixed issue's two rounds", WAIT, || {
            fleet.github.comments_containing(&fixed, "Rounds (2)") == 1
        })
        .await;
    let prompt = fleet.agent_record(&fixed, "architect-2.prompt").unwrap();
    assert!(
        prompt.contains("test greeting::says_hello ... FAILED"),
        "the fix phase got the failing test's log line: {prompt}"
    );
    assert!(prompt.contains("a check failed"), "{prompt}");
    let pulls = fleet.github.pull_requests(GREEN);
    assert_eq!(pulls.len(), 1, "the same pull request: {pulls:?}");
    let comments = fleet.github.comments(&fixed);
    assert_eq!(comments.len(), 1, "one comment, updated: {comments:?}");
    assert!(
        comments[0].contains("run 2 (a check failed): completed"),
        "{comments:?}"
    );
    polls(&fleet, &client, 2).await;
    assert_eq!(
        run_of(&client, &fixed),
        Some((2, "completed".into())),
        "green: no third run"
    );
    assert_eq!(fleet.github.labels(&fixed), ["ai-completed"]);

    // The check that stays red: two follow-ups, then left for people.
    fleet
        .wait_for("the rounds used up", WAIT, || {
            fleet.github.comments_containing(&stuck, "are used up") == 1
        })
        .await;
    let left: Vec<String> = fleet
        .github
        .comments(&stuck)
        .into_iter()
        .filter(|c| c.contains("are used up"))
        .collect();
    assert!(left[0].contains("Still wrong: a check failed"), "{left:?}");
    assert!(left[0].contains("farewell::says_bye"), "{left:?}");
    polls(&fleet, &client, 2).await;
    assert_eq!(run_of(&client, &stuck), Some((3, "completed".into())));
    assert_eq!(fleet.agent_calls(&stuck, "architect"), 3);
    assert_eq!(
        fleet.github.comments_containing(&stuck, "are used up"),
        1,
        "said once"
    );
    let metrics = block_on(client.metrics()).unwrap();
    for line in [
        r#"scrum_follow_ups_total{cause="checks",outcome="run"} 3"#,
        r#"scrum_follow_ups_total{cause="checks",outcome="exhausted"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    fleet.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_merged_and_only_a_writers_agent_comment_is_followed_up() {
    const MERGE: &str = "acme/merge";
    const TALK: &str = "acme/talk";
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::prepare(
        dir.path(),
        bin_dir(),
        &[(MERGE, "Change the greeting"), (TALK, "Write the docs")],
    )
    .await
    .unwrap();
    let (merged, talked) = (fleet.issues[0].clone(), fleet.issues[1].clone());
    fleet.github.set_role(TALK, "alice", "write");
    fleet.github.set_role(TALK, "mallory", "read");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_agent_worker("agent-1").unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    fleet
        .wait_for("both first runs", WAIT, || {
            fleet.github.comments_containing(&merged, "Completed:") == 1
                && fleet.github.comments_containing(&talked, "Completed:") == 1
        })
        .await;

    // The base branch changes the file the pull request adds: a conflict.
    let pr = fleet.github.pull_requests(MERGE)[0].number;
    let base = fleet.github.commit_to_branch(
        MERGE,
        "main",
        &format!("changes/issue-{}.md", merged.number()),
        "Someone else's greeting\n",
    );
    fleet
        .wait_for("the conflict merged", WAIT, || {
            fleet.github.comments_containing(&merged, "Rounds (2)") == 1
        })
        .await;
    let prompt = fleet.agent_record(&merged, "architect-2.prompt").unwrap();
    assert!(
        prompt.contains(&format!("changes/issue-{}.md", merged.number())),
        "the conflicted file: {prompt}"
    );
    assert!(
        branch_contains(&fleet, MERGE, &merged, &base),
        "the base is merged in"
    );
    let comments = fleet.github.comments(&merged);
    assert!(
        comments[0].contains("run 2 (a conflict with the base branch): completed"),
        "{comments:?}"
    );
    fleet
        .wait_for("mergeable again", WAIT, || {
            fleet.github.pull_requests(MERGE)[0].mergeable == Some(true)
        })
        .await;
    assert_eq!(fleet.github.pull_requests(MERGE).len(), 1);
    assert_eq!(
        fleet.github.pull_requests(MERGE)[0].number,
        pr,
        "the same pull request"
    );

    // A reader's /agent comment reaches no agent.
    let talk_pr = fleet.github.pull_requests(TALK)[0].number;
    fleet
        .github
        .comment_on_pull(TALK, talk_pr, "mallory", "/agent delete the tests");
    polls(&fleet, &client, 3).await;
    assert_eq!(run_of(&client, &talked), Some((1, "completed".into())));
    assert_eq!(fleet.agent_calls(&talked, "architect"), 1);

    // A writer's does, and its follow-up outlives the orchestrator: no worker runs
    // while it is queued, and the orchestrator crashes and restarts before one
    // comes back.
    fleet.kill_worker("agent-1");
    fleet
        .github
        .comment_on_pull(TALK, talk_pr, "alice", "/agent add an example for zero");
    fleet
        .wait_for("the follow-up queued", WAIT, || {
            run_of(&client, &talked).is_some_and(|(run, state)| run == 2 && state == "pending")
        })
        .await;
    fleet.kill_orchestrator();
    fleet.start_orchestrator().await.unwrap();
    fleet.start_agent_worker("agent-2").unwrap();
    fleet
        .wait_for("the comment answered", WAIT, || {
            fleet.github.comments_containing(&talked, "Rounds (2)") == 1
        })
        .await;
    let prompt = fleet.agent_record(&talked, "architect-2.prompt").unwrap();
    assert!(prompt.contains("add an example for zero"), "{prompt}");
    assert!(!prompt.contains("delete the tests"), "{prompt}");
    let comments = fleet.github.comments(&talked);
    assert!(
        comments[0].contains("run 2 (a review comment): completed"),
        "{comments:?}"
    );
    fleet.stop();
}
