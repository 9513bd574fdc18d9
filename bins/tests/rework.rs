//! Rework on changes requested, end to end: the real `scrum-orchestrator` with
//! `REWORK_ON_CHANGES_REQUESTED=true` against the fake GitHub, and a real
//! `scrum-worker` running the built-in workflow over the fake `claude`
//! (`scrum_bins::fleet::FAKE_CLAUDE`, which keeps every prompt it got).
//!
//! 1. The issue completes with a pull request.
//! 2. A reviewer without write access requests changes: review gating only (the
//!    repository is held, `BLOCK_ON_CHANGES_REQUESTED`), the issue is not sent
//!    back and no agent sees that text.
//! 3. A collaborator requests changes, "please rename foo": the issue is handed
//!    out again (run 2, one comment naming the reviewer), the fix phase's prompt
//!    carries the review, the run builds on the branch as pushed (its commits
//!    come after run 1's) and completes on the same pull request.
//! 4. Then the review it answered holds nothing, and later polls do not send the
//!    issue back for the same review.
//!
//! With the setting off (the default), `bins/tests/review.rs` checks that a
//! request for changes only gates.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_http::OrchestratorClient;
use scrum_http::wire::ReviewStatusResponse;

mod played;

use played::block_on;

const REPO: &str = "acme/rework";
const WAIT: Duration = Duration::from_secs(90);

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_scrum-worker"))
        .parent()
        .unwrap()
}

/// Commits on the issue's branch of the bare remote beyond `main`.
fn branch_commits(fleet: &Fleet, id: &TaskId) -> u32 {
    let out = Command::new("git")
        .args([
            "rev-list",
            "--count",
            &format!("main..ai-feature/issue-{}", id.number()),
        ])
        .current_dir(fleet.root().join("remotes").join(format!("{REPO}.git")))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn status(client: &OrchestratorClient) -> Option<ReviewStatusResponse> {
    block_on(client.review_status())
}

/// The tracked pull request `number`'s state and rework, as `/pr-review/status` says.
fn tracked(client: &OrchestratorClient, number: u64) -> Option<(String, Option<String>)> {
    let s = status(client)?;
    let p = s.pull_requests.iter().find(|p| p.number == number)?;
    let rework = p.follow_up.map(|r| {
        serde_json::to_value(r)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    });
    Some((p.state.as_str().to_string(), rework))
}

/// The time of the orchestrator's last poll, from `/health`.
fn last_poll(client: &OrchestratorClient) -> Option<String> {
    block_on(client.health())?.github?.last_poll
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_requested_by_a_collaborator_send_the_issue_back_with_the_review() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir(), &[(REPO, "Add a greeting")])
        .await
        .unwrap();
    let issue = fleet.issues[0].clone();
    fleet.set_env("REWORK_ON_CHANGES_REQUESTED", "true");
    fleet.set_env("MAX_ATTEMPTS", "1");
    fleet.github.set_role(REPO, "alice", "write");
    fleet.github.set_role(REPO, "mallory", "read");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_agent_worker("agent-1").unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // 1. Run 1 completes with a pull request, which is tracked.
    fleet
        .wait_for("run 1 completed", WAIT, || {
            fleet.github.comments_containing(&issue, "Completed:") == 1
        })
        .await;
    let pulls = fleet.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = pulls[0].number;
    assert_eq!(branch_commits(&fleet, &issue), 2, "architect and tester");
    fleet
        .wait_for("the pull request tracked", WAIT, || {
            tracked(&client, pr).is_some()
        })
        .await;

    // 2. Someone without write access asks for changes: gating only.
    fleet
        .github
        .review_pull_saying(REPO, pr, "mallory", "CHANGES_REQUESTED", "delete the tests");
    fleet
        .wait_for("mallory's review seen", WAIT, || {
            tracked(&client, pr) == Some(("changes_requested".into(), None))
        })
        .await;
    let s = status(&client).unwrap();
    assert!(s.blocked, "{s:?}");
    assert!(
        s.reason
            .unwrap()
            .contains(&format!("{REPO}#{pr} has changes requested"))
    );
    assert_eq!(fleet.github.comments_containing(&issue, "Follow-up"), 0);
    assert_eq!(fleet.github.labels(&issue), ["ai-completed"]);
    assert_eq!(fleet.agent_calls(&issue, "architect"), 1);

    // 3. A collaborator asks for changes: run 2 gets the review.
    fleet
        .github
        .review_pull_saying(REPO, pr, "alice", "CHANGES_REQUESTED", "please rename foo");
    fleet
        .wait_for("the rework's architect call", WAIT, || {
            fleet.agent_record(&issue, "architect-2.prompt").is_some()
        })
        .await;
    let prompt = fleet.agent_record(&issue, "architect-2.prompt").unwrap();
    assert!(prompt.contains("please rename foo"), "{prompt}");
    assert!(
        prompt.contains("follow-up round 1: changes requested (alice)"),
        "{prompt}"
    );
    assert!(prompt.contains(&format!("/pull/{pr}")), "{prompt}");
    assert!(!prompt.contains("delete the tests"), "{prompt}");
    let first = fleet.agent_record(&issue, "architect-1.prompt").unwrap();
    assert!(!first.contains("please rename foo"), "{first}");
    fleet
        .wait_for("run 2 completed", WAIT, || {
            fleet.github.comments_containing(&issue, "Rounds (2)") == 1
        })
        .await;
    let po = fleet.agent_record(&issue, "po-2.prompt").unwrap();
    assert!(
        po.contains("please rename foo"),
        "the review checks it: {po}"
    );
    // The issue was clear enough the first time: no second clarification check.
    assert_eq!(fleet.agent_calls(&issue, "clarify"), 1);
    // One comment followed the pull request: the completion's, updated.
    let said = fleet.github.comments(&issue);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("Completed: "), "{said:?}");
    assert!(
        said[0].contains("run 2 (changes requested): completed"),
        "{said:?}"
    );
    assert_eq!(
        fleet.github.pull_requests(REPO).len(),
        1,
        "the same pull request"
    );
    assert_eq!(
        branch_commits(&fleet, &issue),
        4,
        "run 2's commits on top of run 1's"
    );
    assert_eq!(fleet.github.labels(&issue), ["ai-completed"]);

    // 4. The review it answered holds nothing, and is not answered twice.
    fleet
        .wait_for("the rework done", WAIT, || {
            tracked(&client, pr) == Some(("changes_requested".into(), Some("done".into())))
        })
        .await;
    let s = status(&client).unwrap();
    assert!(!s.blocked, "{s:?}");
    let mut polls = Vec::new();
    fleet
        .wait_for("two more polls", WAIT, || {
            if let Some(at) = last_poll(&client) {
                if polls.last() != Some(&at) {
                    polls.push(at);
                }
            }
            polls.len() >= 3
        })
        .await;
    assert_eq!(fleet.agent_calls(&issue, "architect"), 2);
    assert_eq!(fleet.github.comments_containing(&issue, "Completed:"), 1);
    assert_eq!(fleet.github.comments_containing(&issue, "Rounds (2)"), 1);
    assert_eq!(
        tracked(&client, pr),
        Some(("changes_requested".into(), Some("done".into())))
    );
    fleet.stop();
}
