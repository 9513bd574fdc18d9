//! File-level locks, end to end: the real `scrum-orchestrator` and three real
//! `scrum-worker`s against the fake GitHub. Two issues declare overlapping paths
//! ("Files: src/auth/**" and "Files: src/auth/login.rs"), a third declares other
//! ones. Each issue is labelled ready again after it completes, for 20 runs in all;
//! every run records when its workflow started and ended. The two overlapping
//! issues never ran at the same time, the third ran beside them, and `/queue`
//! showed the waiting one as waiting for the other's lock.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use scrum_bins::fleet::Fleet;
use scrum_core::{TaskId, Timestamp};
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::QueueQuery;

const REPO: &str = "acme/locks";
/// Runs per issue: 7 + 7 + 6 = 20.
const QUOTA: [usize; 3] = [7, 7, 6];

/// Each issue's runs, as (start, end) on the workflow's nanosecond clock.
fn runs(log: &Path, issues: &[TaskId]) -> Vec<Vec<(u128, u128)>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut open: BTreeMap<u64, u128> = BTreeMap::new();
    let mut runs = vec![Vec::new(); issues.len()];
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [what, number, at] = parts[..] else {
            continue;
        };
        let (Ok(number), Ok(at)) = (number.parse::<u64>(), at.parse::<u128>()) else {
            continue;
        };
        match what {
            "start" => drop(open.insert(number, at)),
            "end" => {
                let start = open.remove(&number).expect("a run ends after it starts");
                if let Some(i) = issues.iter().position(|id| id.number() == number) {
                    runs[i].push((start, at));
                }
            }
            _ => {}
        }
    }
    runs
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_issues_never_run_together_while_others_run_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[(REPO, "Guide")])
        .await
        .unwrap();
    let issue = |title: &str, body: &str, secs: i64| {
        NewIssue::new(title)
            .body(body)
            .labels(&["ai-ready"])
            .created_at(Timestamp(1_700_000_000_000 + secs * 1000))
    };
    // The fleet's issue (#1) is made to declare other paths than the two below.
    let guide = fleet.issues[0].clone();
    fleet.github.close_issue(&guide);
    let auth = fleet.github.add_issue(
        REPO,
        issue("Auth", "Rework the login.\n\nFiles: src/auth/**", -20),
    );
    let login = fleet.github.add_issue(
        REPO,
        issue("Login", "Files:\n- src/auth/login.rs\n- docs/login.md", -10),
    );
    let docs = fleet
        .github
        .add_issue(REPO, issue("Docs", "Files: docs/guide.md", -5));
    let issues = [auth.clone(), login.clone(), docs.clone()];

    let log = dir.path().join("runs.log");
    fleet.set_env("RUN_LOG", log.to_str().unwrap());
    fleet.set_env("RUN_HOLD_SECS", "0.3");
    // Nobody merges these pull requests: no review gating.
    fleet.set_env("MAX_PENDING_PRS", "0");
    fleet.start_orchestrator().await.unwrap();
    for w in ["w1", "w2", "w3"] {
        fleet.start_worker(w).unwrap();
    }
    let client = OrchestratorClient::new(&fleet.url()).unwrap();

    // Label each issue ready again once its run's labels are written, until each
    // ran its quota; watch /queue for a task waiting for the other's lock.
    let mut waited_for: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let done = runs(&log, &issues);
        if done.iter().zip(QUOTA).all(|(r, q)| r.len() >= q) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "20 runs did not finish in time: {:?} of {QUOTA:?}",
            done.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for (i, id) in issues.iter().enumerate() {
            let labels = fleet.github.labels(id);
            let finished = labels.iter().any(|l| l == "ai-completed")
                && !labels.iter().any(|l| l == "ai-ready");
            if finished && done[i].len() < QUOTA[i] {
                fleet.github.set_labels(id, &["ai-ready"]);
            }
        }
        if let Ok(q) = client.queue(&QueueQuery::default()).await {
            for e in q.pending {
                if let Some(holder) = e.waiting_for_lock {
                    waited_for.push((e.task_id, holder));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.stop();

    let [auth_runs, login_runs, docs_runs] = <[_; 3]>::try_from(runs(&log, &issues)).unwrap();
    for a in &auth_runs {
        for b in &login_runs {
            assert!(
                !overlap(*a, *b),
                "{auth} and {login} were in progress together: {a:?} {b:?}"
            );
        }
    }
    let beside = docs_runs
        .iter()
        .any(|d| auth_runs.iter().chain(&login_runs).any(|o| overlap(*d, *o)));
    assert!(beside, "{docs} never ran beside the locked issues");
    let pair = |a: &TaskId, b: &TaskId| (a.to_string(), b.to_string());
    assert!(
        waited_for
            .iter()
            .any(|w| *w == pair(&auth, &login) || *w == pair(&login, &auth)),
        "/queue never showed one waiting for the other's lock: {waited_for:?}"
    );
    assert!(
        waited_for
            .iter()
            .all(|(waiting, _)| *waiting != docs.to_string()),
        "{docs} waited for a lock it does not share: {waited_for:?}"
    );
}
