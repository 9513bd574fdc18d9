//! The built-in AI Scrum Master workflow, end to end: the real `scrum-orchestrator`
//! on SQLite, the fake GitHub, and two real `scrum-worker`s without a
//! `WORKFLOW_COMMAND`, whose `PATH` starts with a fake `claude`
//! (`scrum_bins::fleet::FAKE_CLAUDE`) that answers with Claude Code's JSON result
//! and commits as each role would. One issue per scenario, one attempt each
//! (`MAX_ATTEMPTS=1`):
//!
//! 1. approved on the first pass: the pull request is opened, its body sums up the
//!    phases, and the completion reports the summed cost and tokens (comment,
//!    `/queue`);
//! 2. REVISE twice, then APPROVE: three architect passes, the product owner's
//!    feedback in the second and third prompts;
//! 3. REVISE four times: a failed attempt, "rejected after 3 revisions";
//! 4. an architect that commits nothing: the gate fails the attempt, naming the phase;
//! 6. a rate limit, then success: retried within the phase, one attempt;
//! 7. out of credits: handed back without spending an attempt, then completed.
//!
//! 5. Apart, a vague issue: the clarification check's questions are posted once,
//!    `needs-clarification` replaces `ai-ready`, the task is parked with no
//!    attempt spent and stays so while the label is there, even with `ai-ready`
//!    back; once a person removes it, a new run completes the issue.
//!
//! And `scrum-worker --help`, `workflow show` and a missing agent, as a user sees them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_bins::runner::workflow::DEFAULT_WORKFLOW;
use scrum_core::TaskId;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{QueueEntry, QueueQuery};

mod common;

const APPROVED: &str = "Add a health endpoint";
const REVISED: &str = "Handle empty input [revise-twice]";
const REJECTED: &str = "Rewrite the parser [revise-forever]";
const LAZY: &str = "Tidy the docs [lazy-architect]";
const RATE_LIMITED: &str = "Speed up search [rate-limited]";
const NO_CREDITS: &str = "Add invoices [no-credits]";

const ISSUES: [(&str, &str); 6] = [
    ("acme/api", APPROVED),
    ("acme/api", REVISED),
    ("acme/api", REJECTED),
    ("acme/api", LAZY),
    ("acme/api", RATE_LIMITED),
    ("acme/api", NO_CREDITS),
];

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_scrum-worker"))
        .parent()
        .unwrap()
}

fn entry<'a>(entries: &'a [QueueEntry], id: &TaskId) -> &'a QueueEntry {
    entries
        .iter()
        .find(|e| e.task_id == id.to_string())
        .unwrap_or_else(|| panic!("{id} is not listed: {entries:?}"))
}

fn comment_with(comments: Vec<String>, needle: &str) -> String {
    let found: Vec<&String> = comments.iter().filter(|c| c.contains(needle)).collect();
    assert_eq!(found.len(), 1, "one comment with {needle:?}: {comments:?}");
    found[0].clone()
}

/// The attempt logs the workers wrote, all together.
fn task_logs(fleet: &Fleet) -> String {
    let mut all = String::new();
    for worker in ["agent-1", "agent-2"] {
        let dir = fleet.root().join("workspaces").join(worker).join("logs");
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}

fn assert_close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no cost"));
    assert!((got - want).abs() < 1e-6, "{what}: cost {got}, want {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_workflow_reviews_revises_and_reports_its_cost() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir(), &ISSUES)
        .await
        .unwrap();
    fleet.set_env("MAX_ATTEMPTS", "1");
    fleet.start_orchestrator().await.unwrap();
    for w in ["agent-1", "agent-2"] {
        fleet.start_agent_worker(w).unwrap();
    }
    fleet.wait_for_outcomes(Duration::from_secs(120)).await;
    let queue = OrchestratorClient::new(&fleet.url())
        .unwrap()
        .queue(&QueueQuery::default())
        .await
        .unwrap();
    fleet.stop();
    let [approved, revised, rejected, lazy, rate_limited, no_credits] =
        std::array::from_fn(|n| fleet.issues[n].clone());
    let gh = &fleet.github;
    let pulls = gh.pull_requests("acme/api");
    let pull = |id: &TaskId| {
        pulls
            .iter()
            .find(|p| p.head == format!("ai-feature/issue-{}", id.number()))
    };

    // 1. Approved at once: one pass of each phase (and the clarification check).
    // $0.02 + $0.25 + 3 × $0.10, 1500 tokens a call.
    assert_eq!(gh.labels(&approved), ["ai-completed"]);
    for role in ["clarify", "architect", "security", "tester", "po"] {
        assert_eq!(fleet.agent_calls(&approved, role), 1, "{role} ran once");
    }
    let args = fleet.agent_record(&approved, "architect-1.args").unwrap();
    for flag in [
        "-p",
        "--output-format",
        "json",
        "--append-system-prompt",
        "--allowedTools",
    ] {
        assert!(args.lines().any(|l| l == flag), "claude got {flag}: {args}");
    }
    let prompt = fleet.agent_record(&approved, "architect-1.prompt").unwrap();
    assert!(
        prompt.contains(APPROVED),
        "the prompt (stdin) has the issue: {prompt}"
    );
    assert!(
        !args.contains(APPROVED),
        "the issue title is not on the command line: {args}"
    );
    let body = &pull(&approved).expect("a pull request").body;
    for part in [
        "| architect |",
        "| security |",
        "| tester |",
        "| product-owner |",
        "Approve",
        "$0.57",
    ] {
        assert!(
            body.contains(part),
            "the pull request sums up {part:?}: {body}"
        );
    }
    let done = comment_with(gh.comments(&approved), "Completed:");
    assert!(
        done.contains("- cost: 0 revisions, $0.57, 7k tokens"),
        "{done}"
    );
    let e = entry(&queue.completed, &approved);
    assert_close(e.cost_usd, 0.57, "/queue");
    assert_eq!(e.tokens, Some(7_500));

    // 2. REVISE twice, then APPROVE: three architect passes, each revision's prompt
    // carrying the product owner's feedback.
    assert_eq!(gh.labels(&revised), ["ai-completed"]);
    assert_eq!(fleet.agent_calls(&revised, "architect"), 3);
    assert_eq!(fleet.agent_calls(&revised, "po"), 3);
    let first = fleet.agent_record(&revised, "architect-1.prompt").unwrap();
    assert!(!first.contains("asked for changes"), "{first}");
    for (pass, review) in [(2, 1), (3, 2)] {
        let p = fleet
            .agent_record(&revised, &format!("architect-{pass}.prompt"))
            .unwrap();
        assert!(
            p.contains(&format!("Please handle empty input (review {review})")),
            "pass {pass} carries review {review}'s feedback: {p}"
        );
        assert!(
            p.contains(&format!("This is revision {} of 3", pass - 1)),
            "{p}"
        );
    }
    let done = comment_with(gh.comments(&revised), "Completed:");
    assert!(
        done.contains("- cost: 2 revisions, $1.67, 19k tokens"),
        "{done}"
    );
    assert!(pull(&revised).unwrap().body.contains("- revisions: 2"));

    // 3. REVISE four times: the fourth answer finds no revision left.
    assert_eq!(gh.labels(&rejected), ["ai-failed"]);
    assert_eq!(fleet.agent_calls(&rejected, "architect"), 4);
    let failed = comment_with(gh.comments(&rejected), "Failed after");
    assert!(failed.contains("Failed after 1 attempt(s)"), "{failed}");
    assert!(failed.contains("rejected after 3 revisions"), "{failed}");
    assert!(
        failed.contains("misses the edge cases"),
        "the reviewer's reason: {failed}"
    );
    assert!(
        pull(&rejected).is_none(),
        "only APPROVE opens a pull request"
    );
    let e = entry(&queue.failed, &rejected);
    assert_close(e.cost_usd, 0.02 + 4.0 * 0.55, "a failure's cost");
    assert_eq!(e.tokens, Some(1_500 * 17));

    // 4. The architect commits nothing: the gate fails and names the phase; the
    // later phases never run.
    assert_eq!(gh.labels(&lazy), ["ai-failed"]);
    let failed = comment_with(gh.comments(&lazy), "Failed after");
    assert!(
        failed.contains("the architect phase made no commit"),
        "{failed}"
    );
    assert_eq!(fleet.agent_calls(&lazy, "security"), 0);

    // 6. A rate limit, then success, within the phase and the one attempt.
    assert_eq!(gh.labels(&rate_limited), ["ai-completed"]);
    assert_eq!(fleet.agent_calls(&rate_limited, "architect"), 2);
    let done = comment_with(gh.comments(&rate_limited), "Completed:");
    assert!(done.contains("- attempts: 1"), "{done}");

    // 7. Out of credits: handed back, no attempt spent, then done on attempt 1.
    assert_eq!(gh.labels(&no_credits), ["ai-completed"]);
    let done = comment_with(gh.comments(&no_credits), "Completed:");
    assert!(done.contains("- attempts: 1"), "{done}");
    assert_eq!(
        fleet.agent_calls(&no_credits, "clarify"),
        2,
        "asked again after the release"
    );

    for id in &fleet.issues {
        assert_eq!(
            fleet.agent_record(id, "leaked"),
            None,
            "{id}: a token reached an agent"
        );
    }
    let logs = task_logs(&fleet);
    for part in [
        "== phase architect (pass 1, try 1) ==",
        "--- prompt ---",
        "gate passed: committed",
        "DECISION: Revise",
        "--- transient error, retrying in",
        "== workflow: Approved; 2 revision(s); $1.67",
    ] {
        assert!(logs.contains(part), "the task logs record {part:?}");
    }
}

/// Waits until the orchestrator has finished two more polls than when called, so
/// that one poll started after whatever the caller just changed.
async fn two_polls(fleet: &Fleet, client: &OrchestratorClient) {
    let last_poll = || async {
        client
            .health()
            .await
            .ok()
            .and_then(|h| h.github)
            .and_then(|g| g.last_poll)
    };
    let mut seen = last_poll().await;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        loop {
            let now = last_poll().await;
            if now.is_some() && now != seen {
                seen = now;
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                common::fail_with_logs(
                    fleet,
                    &["orchestrator"],
                    "the orchestrator stopped polling",
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vague_issue_is_parked_with_its_questions_until_a_person_answers() {
    let dir = tempfile::tempdir().unwrap();
    let issues = [("acme/web", "Restyle the page [vague]")];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir(), &issues)
        .await
        .unwrap();
    fleet.set_env("MAX_ATTEMPTS", "1");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_agent_worker("agent-1").unwrap();
    let id = fleet.issues[0].clone();
    let gh = &fleet.github;
    fleet
        .wait_for(
            "the questions to be posted",
            Duration::from_secs(60),
            || gh.labels(&id) == ["needs-clarification"],
        )
        .await;
    let asked = comment_with(gh.comments(&id), "needs answers to these questions");
    assert!(
        asked.contains("- Which page should change?\n- What should it look like?"),
        "{asked}"
    );
    assert!(asked.contains("Why: The issue names no page."), "{asked}");
    assert!(
        asked.contains("remove the `needs-clarification` label"),
        "{asked}"
    );
    assert_eq!(
        fleet.agent_calls(&id, "architect"),
        0,
        "no agent works on a vague issue"
    );
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    let queue = client.queue(&QueueQuery::default()).await.unwrap();
    let parked = entry(&queue.parked, &id);
    assert_close(parked.cost_usd, 0.02, "the check's cost");
    assert!(
        parked
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Which page")),
        "{parked:?}"
    );
    assert_eq!(client.health().await.unwrap().queue.parked, 1);
    assert!(
        !gh.comments(&id).iter().any(|c| c.contains("failed")),
        "parking is no failure: {:?}",
        gh.comments(&id)
    );

    // The ready label back while needs-clarification stays: still parked.
    gh.set_labels(&id, &["needs-clarification", "ai-ready"]);
    two_polls(&fleet, &client).await;
    let queue = client.queue(&QueueQuery::default()).await.unwrap();
    assert_eq!(entry(&queue.parked, &id).task_id, id.to_string());
    assert_eq!(fleet.agent_calls(&id, "clarify"), 1);

    // A person answered and removed it: a new run does the work.
    gh.set_labels(&id, &["ai-ready"]);
    fleet
        .wait_for("the new run to complete", Duration::from_secs(60), || {
            gh.labels(&id).contains(&"ai-completed".to_string())
        })
        .await;
    fleet.stop();
    let gh = &fleet.github;
    assert_eq!(fleet.agent_calls(&id, "clarify"), 2);
    let done = comment_with(gh.comments(&id), "Completed:");
    assert!(done.contains("- attempts: 1"), "{done}");
    comment_with(gh.comments(&id), "needs answers to these questions");
}

fn worker(args: &[&str], path: &str) -> (bool, String) {
    let out = Command::new(bin_dir().join("scrum-worker"))
        .args(args)
        .env("PATH", path)
        .env_remove("WORKFLOW_COMMAND")
        .env_remove("WORKFLOW_FILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn help_and_workflow_show_describe_the_builtin_workflow() {
    let (ok, help) = worker(&["--help"], "/usr/bin:/bin");
    assert!(ok, "{help}");
    for part in [
        "architect",
        "security",
        "tester",
        "product-owner",
        "DECISION: APPROVE, REVISE or REJECT",
        "up to 3 revisions",
        "WORKFLOW_FILE",
        "SKIP_CLARIFICATION_CHECK",
        "workflow show",
    ] {
        assert!(help.contains(part), "--help mentions {part:?}:\n{help}");
    }
    let (ok, shown) = worker(&["workflow", "show"], "/usr/bin:/bin");
    assert!(ok);
    assert_eq!(shown, DEFAULT_WORKFLOW);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    std::fs::write(&file, DEFAULT_WORKFLOW).unwrap();
    let (ok, said) = worker(
        &["workflow", "check", file.to_str().unwrap()],
        "/usr/bin:/bin",
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("phases architect (") && said.contains("on a follow-up, phases fix ("),
        "which phases each kind of run goes through: {said}"
    );
    assert!(!said.contains("follow-up, phases architect"), "{said}");
    std::fs::write(
        &file,
        DEFAULT_WORKFLOW.replace("{{issue_body}}", "{{issue_bdy}}"),
    )
    .unwrap();
    let (ok, said) = worker(
        &["workflow", "check", file.to_str().unwrap()],
        "/usr/bin:/bin",
    );
    assert!(!ok);
    assert!(said.contains("unknown placeholder {{issue_bdy}}"), "{said}");
}

/// A directory of links to every program of `/usr/bin` but `claude`: the
/// machine's tools, without the agent (which may be installed there).
fn path_without_claude() -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "claude" {
            std::os::unix::fs::symlink(entry.path(), bin.path().join(entry.file_name())).unwrap();
        }
    }
    bin
}

#[test]
fn a_worker_without_its_agent_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let bin = path_without_claude();
    let (ok, said) = worker(
        &[
            "--worker-id",
            "w",
            "--orchestrator-url",
            "http://127.0.0.1:9",
            "--github-token",
            "t",
            "--workspace-dir",
            dir.path().to_str().unwrap(),
        ],
        bin.path().to_str().unwrap(),
    );
    assert!(!ok);
    assert!(
        said.contains("runs `claude`, which is not on PATH"),
        "{said}"
    );
}
