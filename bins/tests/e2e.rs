//! End to end, with the real binaries: the fake GitHub, a local bare git repository
//! per repository as the remote, one `scrum-orchestrator` on SQLite and three
//! `scrum-worker`s: one runs a scripted workflow command, two the built-in
//! workflow over a fake `claude` (`fleet::FAKE_CLAUDE`). 20 issues across 2 repositories; one
//! fails once then succeeds, one always fails; a worker is killed with SIGKILL
//! mid-task; the orchestrator is killed and restarted once.

use std::path::Path;
use std::time::{Duration, Instant};

use scrum_bins::fleet::{Fleet, IssueProgress};
use scrum_http::OrchestratorClient;

const FAILS_ONCE: &str = "Handle the flaky import [fails-once]";
const ALWAYS_FAILS: &str = "Rewrite everything [always-fails]";
const SLOW: &str = "Migrate the schema [slow]";

fn issues() -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for n in 1..=10 {
        let title = match n {
            3 => FAILS_ONCE.to_string(),
            5 => SLOW.to_string(),
            _ => format!("API change {n}"),
        };
        v.push(("acme/api", title));
    }
    for n in 1..=10 {
        let title = if n == 4 {
            ALWAYS_FAILS.to_string()
        } else {
            format!("Web change {n}")
        };
        v.push(("acme/web", title));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issue_ends_right_through_crashes_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let list = issues();
    let refs: Vec<(&str, &str)> = list.iter().map(|(r, t)| (*r, t.as_str())).collect();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &refs).await.unwrap();
    // Nobody reviews the pull requests here: ten per repository would stop at
    // review gating's default of five (bins/tests/review.rs tests the gate).
    fleet.set_env("MAX_PENDING_PRS", "0");
    fleet.start_orchestrator().await.unwrap();
    // Without an API token the start-up log says who may call what.
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap();
    assert!(
        log.contains("no API token configured: /work/* and the reads (/queue, /workers"),
        "the start-up log does not state the access rule:\n{log}"
    );
    fleet.start_worker("worker-1").unwrap();
    for w in ["worker-2", "worker-3"] {
        fleet.start_agent_worker(w).unwrap();
    }
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // Kill whichever worker holds the slow issue, mid-task; a fresh worker replaces it.
    let slow = fleet.issues[4].clone();
    let mut victim = None;
    let start = Instant::now();
    while victim.is_none() && start.elapsed() < Duration::from_secs(60) {
        if let Ok(workers) = client.workers().await {
            victim = workers
                .workers
                .iter()
                .find(|w| w.current_task_id.as_deref() == Some(slow.to_string().as_str()))
                .map(|w| w.id.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let victim = victim.expect("a worker picked up the slow issue");
    fleet.kill_worker(&victim);
    // The replacement runs what the victim ran.
    if victim == "worker-1" {
        fleet.start_worker("worker-4").unwrap();
    } else {
        fleet.start_agent_worker("worker-4").unwrap();
    }

    // Crash the orchestrator once some work is done, and start it again.
    fleet
        .wait_for("5 completed issues", Duration::from_secs(90), || {
            fleet
                .progress()
                .iter()
                .filter(|(_, p)| *p == IssueProgress::Completed)
                .count()
                >= 5
        })
        .await;
    fleet.kill_orchestrator();
    fleet.start_orchestrator().await.unwrap();

    fleet.wait_for_outcomes(Duration::from_secs(240)).await;
    fleet.stop();

    let gh = &fleet.github;
    let mut prs = 0;
    let mut reviewed = 0;
    for (id, (repo, title)) in fleet.issues.iter().zip(&list) {
        let labels = gh.labels(id);
        let comments = gh.comments(id);
        let branch = format!("ai-feature/issue-{}", id.number());
        if title == ALWAYS_FAILS {
            assert_eq!(labels, ["ai-failed"], "{id}");
            let failed: Vec<_> = comments
                .iter()
                .filter(|c| c.contains("Failed after"))
                .collect();
            assert_eq!(failed.len(), 1, "{id}: {comments:?}");
            assert!(
                failed[0].contains("Failed after 2 attempt(s)"),
                "{}",
                failed[0]
            );
            assert!(
                !failed[0].contains(fleet.root().to_str().unwrap()),
                "a local path leaked: {}",
                failed[0]
            );
            continue;
        }
        assert_eq!(labels, ["ai-completed"], "{id}: {comments:?}");
        let pulls: Vec<_> = gh
            .pull_requests(repo)
            .into_iter()
            .filter(|p| p.head == branch)
            .collect();
        assert_eq!(pulls.len(), 1, "{id}: one pull request for {branch}");
        assert!(
            pulls[0].body.contains(&format!("Closes #{}", id.number())),
            "{}",
            pulls[0].body
        );
        assert_eq!(pulls[0].base, "main");
        prs += 1;
        if pulls[0].body.contains("| product-owner |") {
            reviewed += 1;
            assert!(
                comments
                    .iter()
                    .any(|c| c.contains("- cost: 0 revisions, $")),
                "{id}: the built-in workflow's completion reports its cost: {comments:?}"
            );
        }
        let completed: Vec<_> = comments
            .iter()
            .filter(|c| c.contains("Completed:"))
            .collect();
        assert_eq!(
            completed.len(),
            1,
            "{id}: exactly one completion comment: {comments:?}"
        );
        assert!(
            completed[0].contains(&format!("/pull/{}", pulls[0].number)),
            "{}",
            completed[0]
        );
        let file = fleet.remote_file(repo, &branch, &format!("changes/issue-{}.md", id.number()));
        assert!(
            file.is_some_and(|f| f.contains(title.as_str())),
            "{id}: the change is on {branch}"
        );
        if title == FAILS_ONCE || title == SLOW {
            assert!(
                comments
                    .iter()
                    .any(|c| c.contains("Attempt 1 of this issue failed")),
                "{id}: a retry note: {comments:?}"
            );
        }
    }
    assert_eq!(prs, 19);
    assert!(
        reviewed > 0,
        "the built-in workflow completed none of the issues"
    );
}
