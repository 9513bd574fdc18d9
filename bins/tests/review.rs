//! Review gating, end to end: the real `scrum-orchestrator` against the fake
//! GitHub, whose pull requests it reads; workers played over the HTTP API.
//!
//! - with `MAX_PENDING_PRS=1`, after one completion `/work/next` answers
//!   `blocked` with a reason (and `/health` and `/pr-review/status` say so); once
//!   that pull request is merged on GitHub, work flows again;
//! - the tracked pull requests survive a restart (they come from the store), and
//!   so does an operator's `POST /pr-review/changes-requested/{n}` (recorded on
//!   the task), until GitHub says the pull request was merged;
//! - with changes requested (`BLOCK_ON_CHANGES_REQUESTED`, the default), blocked
//!   until the reviewer approves, and the issue is not sent back for rework
//!   (`REWORK_ON_CHANGES_REQUESTED` is off by default; `bins/tests/rework.rs`
//!   turns it on).

mod played;

use std::path::Path;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{NextResponse, QueueQuery, WorkItem};

use played::{block_on, next_response as next};

const REPO: &str = "acme/review";

/// Opens a pull request on the fake for `issue`'s branch, as the worker's
/// workflow would, and completes the task with it.
async fn complete_with_pull(fleet: &Fleet, client: &OrchestratorClient, w: &WorkItem) -> u64 {
    let pr = fleet.github.add_issue(
        REPO,
        NewIssue::new(&format!("Fix #{}", w.issue_number)).pull_request(&w.branch_name),
    );
    let url = format!("https://github.com/{REPO}/pull/{}", pr.number());
    played::complete(client, w, Some(url), None).await;
    pr.number()
}

async fn tracked_rework(
    client: &OrchestratorClient,
    number: u64,
) -> Option<scrum_core::pull_gate::FollowUpState> {
    let s = client.review_status().await.unwrap();
    s.pull_requests
        .iter()
        .find(|p| p.number == number)?
        .follow_up
}

fn offered(r: &NextResponse, id: &TaskId) -> WorkItem {
    assert!(r.work_available, "nothing offered: {r:?}");
    let w = r.work.clone().unwrap();
    assert_eq!(w.task_id, id.to_string());
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pull_requests_hold_work_until_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [(REPO, "First"), (REPO, "Second"), (REPO, "Third")];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| fleet.issues[i].clone());
    fleet.set_env("MAX_PENDING_PRS", "1");
    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    let w = offered(&next(&client, 10).await, &a);
    let p1 = complete_with_pull(&fleet, &client, &w).await;

    // One pull request awaits review: blocked, with the reason.
    let blocked = next(&client, 2).await;
    assert!(!blocked.work_available && blocked.blocked, "{blocked:?}");
    let reason = blocked.reason.unwrap();
    assert!(reason.contains("MAX_PENDING_PRS=1"), "{reason}");
    let health = client.health().await.unwrap().pr_review.unwrap();
    assert_eq!(health["blocked"], true, "{health}");
    assert_eq!(health["pending"], 1, "{health}");
    // The scaling signal counts the two held issues as blocked, and wants no worker.
    let s = client.scaling().await.unwrap();
    assert_eq!((s.ready, s.in_progress, s.blocked), (0, 0, 2), "{s:?}");
    assert_eq!((s.idle_workers, s.desired_workers), (1, 0), "{s:?}");
    let status = client.review_status().await.unwrap();
    assert_eq!(status.pull_requests.len(), 1);
    assert_eq!(status.pull_requests[0].number, p1);
    assert_eq!(status.pull_requests[0].task, a);

    // Merged on GitHub: work flows again.
    fleet.github.merge_pull(REPO, p1);
    let w = offered(&next(&client, 10).await, &b);
    let p2 = complete_with_pull(&fleet, &client, &w).await;
    assert!(next(&client, 2).await.blocked);

    // A restart tracks the same pull requests; with room for more, a request for
    // changes still holds the repository.
    fleet.stop_orchestrator_named("orchestrator");
    fleet.set_env("MAX_PENDING_PRS", "5");
    fleet.start_orchestrator().await.unwrap();
    let tracked = || {
        block_on(client.review_status())
            .map(|s| {
                s.pull_requests
                    .iter()
                    .map(|p| (p.number, p.state.as_str()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    fleet
        .wait_for(
            "the pull requests tracked again",
            Duration::from_secs(20),
            || tracked() == [(p1, "merged"), (p2, "open")],
        )
        .await;
    let status = client.review_status().await.unwrap();
    assert!(!status.blocked, "one open pull request of five: {status:?}");
    fleet
        .github
        .review_pull(REPO, p2, "reviewer", "CHANGES_REQUESTED");
    fleet
        .wait_for("changes requested seen", Duration::from_secs(20), || {
            tracked() == [(p1, "merged"), (p2, "changes_requested")]
        })
        .await;
    // REWORK_ON_CHANGES_REQUESTED is off: the issue is not sent back.
    let q = client.queue(&QueueQuery::default()).await.unwrap();
    assert!(
        q.completed.iter().any(|e| e.task_id == b.to_string()),
        "{q:?}"
    );
    assert!(
        tracked_rework(&client, p2).await.is_none(),
        "no rework without REWORK_ON_CHANGES_REQUESTED"
    );
    let r = next(&client, 2).await;
    assert!(!r.work_available && r.blocked, "{r:?}");
    let why = r.reason.unwrap();
    assert!(
        why.contains(&format!("{REPO}#{p2} has changes requested")),
        "{why}"
    );
    fleet.github.review_pull(REPO, p2, "reviewer", "APPROVED");
    let w = offered(&next(&client, 10).await, &c);
    assert_eq!(w.issue_number, c.number());

    // An operator's word outlives a restart: GitHub still says open.
    let p3 = complete_with_pull(&fleet, &client, &w).await;
    let said = client
        .mark_pull("changes-requested", p3, Some(REPO), None)
        .await
        .unwrap();
    assert!(said.blocked, "{said:?}");
    fleet.stop_orchestrator_named("orchestrator");
    fleet.start_orchestrator().await.unwrap();
    fleet
        .wait_for(
            "the operator's word counted again",
            Duration::from_secs(20),
            || tracked().contains(&(p3, "changes_requested")),
        )
        .await;
    let status = client.review_status().await.unwrap();
    assert!(status.blocked, "{status:?}");
    assert!(
        status
            .reason
            .unwrap()
            .contains(&format!("{REPO}#{p3} has changes requested"))
    );
    // Merged on GitHub: the tracker's word ends it.
    fleet.github.merge_pull(REPO, p3);
    fleet
        .wait_for("the merge seen", Duration::from_secs(20), || {
            tracked().contains(&(p3, "merged"))
        })
        .await;
    assert!(!client.review_status().await.unwrap().blocked);
    fleet.stop();
}
