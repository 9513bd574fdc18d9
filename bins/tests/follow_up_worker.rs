//! Follow-ups as a worker runs them: the real `scrum-worker` with a workflow
//! command, the fake GitHub and real git remotes. Its work comes from a scripted
//! stand-in for the orchestrator (it answers `GET /work/next` with the
//! assignments, follow-ups included, and keeps the reports), so every cause is
//! exercised the way a worker receives it.
//!
//! Four issues each get a first run (a commit, a push, a pull request); then
//! `main` changes the README's first line, and each gets a follow-up:
//!
//! 1. a conflict (its branch changed the same line): the command, acting as the
//!    agent, gets `CONFLICTED_FILES` and the `FOLLOW_UP_*` variables, resolves
//!    the file without committing, and the worker pushes a merge commit whose
//!    parents are the branch's head and `main`'s;
//! 2. a conflict that merges cleanly (its branch changed another file): no
//!    command runs, the merge commit is pushed;
//! 3. a conflict the command leaves with its markers: a failed attempt naming
//!    the file, nothing pushed;
//! 4. a failed check: the command's fix goes on top of the branch's commit.
//!
//! Each pull request that got a follow-up lists its rounds in its body.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_core::Timestamp;
use scrum_core::follow_up::{FollowUp, FollowUpCause, Round};
use scrum_http::wire::{HeartbeatResponse, NextResponse, ReportResponse, WorkItem};
use serde_json::Value;

const REPO: &str = "acme/follow";
const CONFLICTING: &str = "Rename the project [readme]";
const CLEAN: &str = "Add a note";
const LEFT_MARKERS: &str = "Retitle the project [readme] [leaves-markers]";
const RED_CHECK: &str = "Add a counter";
const WAIT: Duration = Duration::from_secs(60);

/// The workflow command: it keeps what it was told under `$RECORD_DIR` (per issue
/// and run: the follow-up's variables, one file each, and the issue file). On a
/// first run it commits a change: the README's first line for a `[readme]` issue,
/// a file of its own otherwise. On a follow-up for a conflict it writes a
/// resolution into each conflicted file (unless `[leaves-markers]`) and leaves
/// the merge to the worker; for anything else it commits a fix.
const COMMAND: &str = r#"#!/bin/sh
set -e
rec="$RECORD_DIR/issue-$ISSUE_NUMBER"
mkdir -p "$rec"
n=$(( $(cat "$rec/runs" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$rec/runs"
for v in FOLLOW_UP_CAUSE FOLLOW_UP_FEEDBACK FOLLOW_UP_AUTHOR FOLLOW_UP_PR_URL FOLLOW_UP_ROUND \
    REWORK_FEEDBACK REWORK_REVIEWER REWORK_PR_URL CONFLICTED_FILES; do
  printenv "$v" > "$rec/$n.$v" || rm -f "$rec/$n.$v"
done
cp "$ISSUE_FILE" "$rec/$n.issue.json"
if [ -z "$FOLLOW_UP_CAUSE" ]; then
  case "$ISSUE_TITLE" in
    *"[readme]"*) printf '# renamed on the branch of #%s\n' "$ISSUE_NUMBER" > README.md ;;
    *) echo "work for #$ISSUE_NUMBER" > "issue-$ISSUE_NUMBER.txt" ;;
  esac
  git add -A && git commit -q -m "Run 1 of #$ISSUE_NUMBER"
  exit 0
fi
case "$FOLLOW_UP_CAUSE" in
  conflicts)
    case "$ISSUE_TITLE" in *"[leaves-markers]"*) exit 0 ;; esac
    echo "$CONFLICTED_FILES" | while read -r f; do
      printf '# resolved for #%s\n' "$ISSUE_NUMBER" > "$f"
    done ;;
  *)
    echo "fixed: $FOLLOW_UP_FEEDBACK" > "fix-$ISSUE_NUMBER.txt"
    git add -A && git commit -q -m "Fix #$ISSUE_NUMBER" ;;
esac
"#;

/// The stand-in orchestrator: a queue of work to hand out, and the reports.
#[derive(Default)]
struct Standin {
    queue: VecDeque<WorkItem>,
    /// `(path, body)` of each report.
    reports: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<Standin>>;

async fn next(State(s): State<Shared>) -> Json<NextResponse> {
    let work = s.lock().unwrap().queue.pop_front();
    Json(NextResponse {
        work_available: work.is_some(),
        work,
        blocked: false,
        reason: None,
    })
}

async fn heartbeat() -> Json<HeartbeatResponse> {
    let at = now() + 600_000;
    Json(HeartbeatResponse {
        status: "acknowledged".into(),
        lease_expires_at: Timestamp(at).to_rfc3339(),
        lease_expires_at_ms: at,
        cancel: false,
    })
}

/// Keeps a report and acknowledges it.
fn record(s: &Shared, path: &str, body: Value) -> Json<ReportResponse> {
    let task = format!(
        "{}#{}",
        body["repository"].as_str().unwrap_or_default(),
        body["issue_number"]
    );
    s.lock().unwrap().reports.push((path.to_string(), body));
    Json(ReportResponse {
        status: "acknowledged".into(),
        task_id: task,
        state: "completed".into(),
    })
}

/// Serves the stand-in on `url`'s port (the fleet's orchestrator port, which no
/// orchestrator takes in this test).
async fn serve(url: &str) -> Shared {
    let shared = Shared::default();
    let app =
        Router::new()
            .route("/work/next", get(next))
            .route("/work/heartbeat", post(heartbeat))
            .route(
                "/work/complete",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    record(&s, "complete", b)
                }),
            )
            .route(
                "/work/failed",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    record(&s, "failed", b)
                }),
            )
            .route(
                "/work/release",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    record(&s, "release", b)
                }),
            )
            .route(
                "/work/clarify",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    record(&s, "clarify", b)
                }),
            )
            .with_state(shared.clone());
    let addr = url.trim_start_matches("http://");
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    shared
}

/// The work the orchestrator would hand out for `id`, a follow-up or not.
fn item(id: &TaskId, title: &str, follow_up: Option<FollowUp>, n: u128) -> WorkItem {
    let at = now() + 600_000;
    WorkItem {
        issue_number: id.number(),
        title: title.into(),
        body: "Scripted issue for the scrum orchestrator's demo.".into(),
        labels: vec!["ai-ready".into()],
        branch_name: format!("ai-feature/issue-{}", id.number()),
        repository: REPO.into(),
        task_id: id.to_string(),
        lease_token: format!("{n:032x}"),
        lease_expires_at: Timestamp(at).to_rfc3339(),
        lease_expires_at_ms: at,
        attempt: 1,
        max_attempts: 1,
        heartbeat_interval_secs: 5.0,
        text_digest: None,
        budget_left_usd: None,
        follow_up,
        github_token: None,
        github_token_expires_at: None,
        github_token_expires_at_ms: None,
    }
}

/// The first follow-up of the pull request at `pr_url`, for `cause`: round 1,
/// after run 1, which opened it.
fn follow_up(cause: FollowUpCause, pr_url: &str, author: &str, feedback: &str) -> FollowUp {
    let mut f = FollowUp::new(
        cause,
        pr_url,
        format!("{cause}:head"),
        author,
        feedback,
        1,
        Timestamp(now()),
    );
    f.history = vec![Round {
        run: 1,
        cause: None,
        outcome: "completed".into(),
        answers: String::new(),
        at: Timestamp(0),
    }];
    f
}

/// Milliseconds since the Unix epoch.
fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_millis() as i64
}

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_scrum-worker"))
        .parent()
        .unwrap()
}

/// `git args` in `dir`, its output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "maintainer")
        .env("GIT_AUTHOR_EMAIL", "maintainer@example.invalid")
        .env("GIT_COMMITTER_NAME", "maintainer")
        .env("GIT_COMMITTER_EMAIL", "maintainer@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What the command recorded of issue `n`'s run `run`: `name` (a variable, or
/// `issue.json`), if it was set.
fn recorded(records: &Path, n: u64, run: u32, name: &str) -> Option<String> {
    std::fs::read_to_string(records.join(format!("issue-{n}/{run}.{name}")))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// How many times the command ran for issue `n`.
fn runs(records: &Path, n: u64) -> u32 {
    std::fs::read_to_string(records.join(format!("issue-{n}/runs")))
        .map_or(0, |s| s.trim().parse().unwrap())
}

/// The reports about issue `n`, in order: `(path, body)`.
fn reports_of(s: &Shared, n: u64) -> Vec<(String, Value)> {
    s.lock()
        .unwrap()
        .reports
        .iter()
        .filter(|(_, b)| b["issue_number"] == n)
        .cloned()
        .collect()
}

/// Waits until `done` holds, failing with `what` and the worker's log.
async fn wait_for(fleet: &Fleet, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > WAIT {
            let log = std::fs::read_to_string(fleet.log("worker-1")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "timed out waiting for {what}; worker log (newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pull request whose head is issue `id`'s branch: its page and body.
fn pull_of(fleet: &Fleet, id: &TaskId) -> (String, String) {
    let head = format!("ai-feature/issue-{}", id.number());
    let pulls: Vec<_> = fleet
        .github
        .pull_requests(REPO)
        .into_iter()
        .filter(|p| p.head == head)
        .collect();
    assert_eq!(pulls.len(), 1, "one pull request for {head}: {pulls:?}");
    let url = format!("{}/{REPO}/pull/{}", fleet.github.url(), pulls[0].number);
    (url, pulls[0].body.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_merge_the_base_branch_answer_their_cause_and_record_their_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let titles = [CONFLICTING, CLEAN, LEFT_MARKERS, RED_CHECK];
    let issues: Vec<(&str, &str)> = titles.iter().map(|t| (REPO, *t)).collect();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir(), &issues)
        .await
        .unwrap();
    let ids = fleet.issues.clone();
    let records: PathBuf = dir.path().join("records");
    std::fs::write(dir.path().join("workflow.sh"), COMMAND).unwrap();
    fleet.set_env("RECORD_DIR", records.to_str().unwrap());
    let standin = serve(&fleet.url()).await;
    fleet.start_worker("worker-1").unwrap();

    // Run 1 of each: a commit, a push, a pull request.
    for (k, (id, title)) in ids.iter().zip(titles).enumerate() {
        let work = item(id, title, None, k as u128 + 1);
        standin.lock().unwrap().queue.push_back(work);
    }
    wait_for(&fleet, "every first run reported", || {
        standin.lock().unwrap().reports.len() == 4
    })
    .await;
    let mut pulls = Vec::new();
    for id in &ids {
        let r = reports_of(&standin, id.number());
        assert_eq!(r[0].0, "complete", "{r:?}");
        let (url, _) = pull_of(&fleet, id);
        assert_eq!(r[0].1["pr_url"], url.as_str(), "{r:?}");
        pulls.push(url);
    }

    // `main` changes the README's first line.
    let maintainer = dir.path().join("maintainer");
    let bare = fleet.root().join("remotes").join(format!("{REPO}.git"));
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            maintainer.to_str().unwrap(),
        ],
    );
    std::fs::write(maintainer.join("README.md"), "# renamed on main\n").unwrap();
    git(&maintainer, &["commit", "--quiet", "-am", "Rename on main"]);
    git(&maintainer, &["push", "--quiet", "origin", "main"]);
    let main_head = git(&maintainer, &["rev-parse", "HEAD"]);
    let heads: Vec<String> = ids
        .iter()
        .map(|id| {
            git(
                &bare,
                &["rev-parse", &format!("ai-feature/issue-{}", id.number())],
            )
        })
        .collect();

    // The follow-ups.
    let conflict = "The pull request's branch conflicts with its base branch.";
    let check = "Check \"test\" failed: 1 test failed\n  src/lib.rs:3: assertion failed";
    let follow_ups = [
        follow_up(FollowUpCause::Conflicts, &pulls[0], "forge", conflict),
        follow_up(FollowUpCause::Conflicts, &pulls[1], "forge", conflict),
        follow_up(FollowUpCause::Conflicts, &pulls[2], "forge", conflict),
        follow_up(FollowUpCause::Checks, &pulls[3], "checks", check),
    ];
    for (k, ((id, title), f)) in ids.iter().zip(titles).zip(follow_ups).enumerate() {
        let work = item(id, title, Some(f), k as u128 + 10);
        standin.lock().unwrap().queue.push_back(work);
    }
    wait_for(&fleet, "every follow-up reported", || {
        standin.lock().unwrap().reports.len() == 8
    })
    .await;
    let outcome = |k: usize| reports_of(&standin, ids[k].number())[1].clone();
    let branch = |k: usize| format!("ai-feature/issue-{}", ids[k].number());
    let parents = |k: usize| -> Vec<String> {
        git(&bare, &["rev-list", "--parents", "-n", "1", &branch(k)])
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };

    // 1. The conflict, resolved by the command, concluded by the worker.
    let n = ids[0].number();
    let var = |name: &str| recorded(&records, n, 2, name);
    assert_eq!(var("FOLLOW_UP_CAUSE").as_deref(), Some("conflicts"));
    assert_eq!(var("CONFLICTED_FILES").as_deref(), Some("README.md"));
    assert_eq!(var("FOLLOW_UP_ROUND").as_deref(), Some("1"));
    assert_eq!(var("FOLLOW_UP_AUTHOR").as_deref(), Some("forge"));
    assert_eq!(var("FOLLOW_UP_PR_URL").as_deref(), Some(pulls[0].as_str()));
    assert_eq!(var("REWORK_PR_URL").as_deref(), Some(pulls[0].as_str()));
    let feedback = var("FOLLOW_UP_FEEDBACK").unwrap();
    assert!(feedback.starts_with(conflict), "{feedback}");
    assert!(feedback.contains("- README.md"), "{feedback}");
    assert_eq!(var("REWORK_FEEDBACK").as_deref(), Some(feedback.as_str()));
    let file: Value = serde_json::from_str(&var("issue.json").unwrap()).unwrap();
    assert_eq!(file["follow_up"]["cause"], "conflicts", "{file}");
    assert_eq!(file["conflicted_files"], serde_json::json!(["README.md"]));
    assert_eq!(
        recorded(&records, n, 1, "FOLLOW_UP_CAUSE"),
        None,
        "run 1 was no follow-up"
    );
    let first = outcome(0);
    assert_eq!(first.0, "complete", "{first:?}");
    assert_eq!(first.1["pr_url"], pulls[0].as_str());
    assert_eq!(
        parents(0),
        [heads[0].clone(), main_head.clone()],
        "a merge commit"
    );
    assert_eq!(
        fleet.remote_file(REPO, &branch(0), "README.md").as_deref(),
        Some(format!("# resolved for #{n}\n").as_str())
    );

    // 2. A clean merge: no command, the merge commit pushed.
    assert_eq!(runs(&records, ids[1].number()), 1, "no command ran");
    assert_eq!(outcome(1).0, "complete", "{:?}", outcome(1));
    assert_eq!(parents(1), [heads[1].clone(), main_head.clone()]);
    assert_eq!(
        fleet.remote_file(REPO, &branch(1), "README.md").as_deref(),
        Some("# renamed on main\n")
    );

    // 3. Markers left: a failed attempt naming the file, nothing pushed.
    let failed = outcome(2);
    assert_eq!(failed.0, "failed", "{failed:?}");
    let error = failed.1["error"].as_str().unwrap();
    assert!(
        error.contains("left conflict markers in README.md"),
        "{error}"
    );
    assert_eq!(git(&bare, &["rev-parse", &branch(2)]), heads[2]);

    // 4. A red check: the fix on top of the branch's commit, no merge.
    let n = ids[3].number();
    assert_eq!(
        recorded(&records, n, 2, "FOLLOW_UP_CAUSE").as_deref(),
        Some("checks")
    );
    assert_eq!(
        recorded(&records, n, 2, "FOLLOW_UP_FEEDBACK").as_deref(),
        Some(check)
    );
    assert_eq!(recorded(&records, n, 2, "CONFLICTED_FILES"), None);
    assert_eq!(outcome(3).0, "complete", "{:?}", outcome(3));
    assert_eq!(parents(3), [heads[3].clone()]);
    assert!(
        fleet
            .remote_file(REPO, &branch(3), &format!("fix-{n}.txt"))
            .is_some_and(|f| f.contains("1 test failed"))
    );

    // The rounds, in the bodies of the pull requests that were pushed to.
    for (k, cause) in [
        (0, "a conflict with the base branch"),
        (1, "a conflict with the base branch"),
        (3, "a check failed"),
    ] {
        let (_, body) = pull_of(&fleet, &ids[k]);
        assert!(body.starts_with("Automated change for #"), "{body}");
        assert!(body.contains("Closes #"), "the rest kept: {body}");
        assert!(body.contains("### Rounds"), "{body}");
        assert!(
            body.contains("- run 1 (opened the pull request): completed\n"),
            "{body}"
        );
        assert!(
            body.contains(&format!("- run 2 ({cause}): completed\n")),
            "{body}"
        );
    }
    let (_, untouched) = pull_of(&fleet, &ids[2]);
    assert!(!untouched.contains("### Rounds"), "{untouched}");
    assert_eq!(
        fleet.github.pull_requests(REPO).len(),
        4,
        "no new pull request"
    );
    fleet.stop();
}
