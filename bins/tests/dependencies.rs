//! Issue dependencies, end to end: the real `scrum-orchestrator` against the fake
//! GitHub, workers played over the HTTP API so every answer of `/work/next` is seen.
//!
//! - B ("Depends on #A", `priority:critical`, older than A) waits while A is
//!   offered; B is still held after A completes while A stays open; B is offered
//!   once A is closed;
//! - the same with a blocker in a repository the orchestrator does not poll, and
//!   with a GitHub-native `blocked_by` dependency;
//! - a cycle X ↔ Y is said once on each issue and in `/queue`, however many polls.

mod played;

use std::path::Path;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_core::{TaskId, Timestamp};
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{QueueEntry, QueueQuery, WorkItem};

use played::{block_on, next};

const REPO: &str = "acme/deps";
const OTHER: &str = "acme/other";

/// The pending tasks `/queue` lists.
fn pending(client: &OrchestratorClient) -> Vec<QueueEntry> {
    block_on(client.queue(&QueueQuery::default()))
        .map(|q| q.pending)
        .unwrap_or_default()
}

fn entry(client: &OrchestratorClient, id: &TaskId) -> Option<QueueEntry> {
    pending(client)
        .into_iter()
        .find(|e| e.task_id == id.to_string())
}

/// Whether `/queue` shows `id` blocked by exactly `by`.
fn blocked_by(client: &OrchestratorClient, id: &TaskId, by: &[&TaskId]) -> bool {
    let want: Vec<String> = by.iter().map(ToString::to_string).collect();
    entry(client, id).is_some_and(|e| e.blocked && e.blocked_by == want)
}

fn cycle_comments(fleet: &Fleet, id: &TaskId) -> usize {
    fleet.github.comments_containing(id, "dependency cycle")
}

fn issue(title: &str, body: &str, labels: &[&str], secs: i64) -> NewIssue {
    NewIssue::new(title)
        .body(body)
        .labels(labels)
        .created_at(Timestamp(1_700_000_000_000 + secs * 1000))
}

async fn complete(client: &OrchestratorClient, w: &WorkItem) {
    let pr = format!(
        "https://github.com/{}/pull/{}",
        w.repository,
        w.issue_number + 100
    );
    played::complete(client, w, Some(pr), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_issues_wait_until_their_blockers_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    // Issue #1 (A) is the fleet's: ready, no priority, opened at +0 s.
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[(REPO, "Blocker A")])
        .await
        .unwrap();
    let a = fleet.issues[0].clone();
    let critical = ["ai-ready", "priority:critical"];
    let b = fleet
        .github
        .add_issue(REPO, issue("B", "Depends on #1.", &critical, -100));
    fleet.github.add_repo(OTHER);
    let elsewhere = fleet
        .github
        .add_issue(OTHER, issue("Elsewhere", "", &["bug"], -90));
    let c = fleet.github.add_issue(
        REPO,
        issue("C", &format!("Blocked by {elsewhere}"), &critical, -80),
    );
    let native = fleet
        .github
        .add_issue(REPO, issue("Native blocker", "", &["bug"], -70));
    let d = fleet.github.add_issue(REPO, issue("D", "", &critical, -60));
    fleet.github.add_blocked_by(&d, &native);
    let (x_no, y_no) = (d.number() + 1, d.number() + 2);
    let x = fleet.github.add_issue(
        REPO,
        issue("X", &format!("Requires:\n- #{y_no}"), &critical, -50),
    );
    let y = fleet.github.add_issue(
        REPO,
        issue("Y", &format!("depends on #{x_no}"), &critical, -40),
    );
    assert_eq!((x.number(), y.number()), (x_no, y_no));

    fleet.start_orchestrator().await.unwrap();
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    fleet
        .wait_for(
            "the blocked tasks shown blocked",
            Duration::from_secs(20),
            || {
                blocked_by(&client, &b, &[&a])
                    && blocked_by(&client, &c, &[&elsewhere])
                    && blocked_by(&client, &d, &[&native])
                    && blocked_by(&client, &x, &[&y])
                    && blocked_by(&client, &y, &[&x])
                    && cycle_comments(&fleet, &x) == 1
                    && cycle_comments(&fleet, &y) == 1
            },
        )
        .await;
    let reason = entry(&client, &x).unwrap().blocked_reason.unwrap();
    assert!(
        reason.contains(&format!("dependency cycle: {x} → {y} → {x}")),
        "{reason}"
    );
    assert!(!entry(&client, &a).unwrap().blocked);

    // A is offered although B is critical and older; B waits.
    let work = next(&client, 5).await.expect("A is offered");
    assert_eq!(work.task_id, a.to_string());
    complete(&client, &work).await;
    // Completed while its issue stays open (its pull request not merged): B still
    // waits, over several polls (one a second).
    assert!(
        next(&client, 3).await.is_none(),
        "B was offered while A is open"
    );
    assert!(blocked_by(&client, &b, &[&a]));

    fleet.github.close_issue(&a);
    let work = next(&client, 10)
        .await
        .expect("B is offered once A is closed");
    assert_eq!(work.task_id, b.to_string());
    complete(&client, &work).await;

    // A blocker in a repository this orchestrator does not poll.
    assert!(next(&client, 2).await.is_none());
    fleet.github.close_issue(&elsewhere);
    let work = next(&client, 10).await.expect("C is offered");
    assert_eq!(work.task_id, c.to_string());
    complete(&client, &work).await;

    // GitHub's own dependency.
    assert!(next(&client, 2).await.is_none());
    fleet.github.close_issue(&native);
    let work = next(&client, 10).await.expect("D is offered");
    assert_eq!(work.task_id, d.to_string());
    complete(&client, &work).await;

    // The cycle was said once on each issue, however many polls saw it.
    assert_eq!(
        (cycle_comments(&fleet, &x), cycle_comments(&fleet, &y)),
        (1, 1)
    );
    assert!(
        next(&client, 1).await.is_none(),
        "a task of the cycle was offered"
    );
    fleet.stop();
}
