//! GitLab beside GitHub in one fleet, with the real binaries: one
//! `scrum-orchestrator` serves a GitHub repository (the fake GitHub) and a GitLab
//! project in a nested group (the fake GitLab, `group/sub/project`); real
//! `scrum-worker`s run the scripted workflow command, clone from and push to each
//! forge's git remote with that forge's token, and open a pull request on GitHub and
//! a merge request on GitLab. An issue a Reporter labelled queues nothing; a GitLab
//! token that may only read is refused at start, and by `doctor`; GitLab alone
//! needs no GitHub setting.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use scrum_bins::fleet::Fleet;
use scrum_bins::runner::{Forge, GitLabForge, Secret};
use scrum_core::TaskId;
use scrum_core::pull_gate::PullState;
use scrum_gitlab::fake::{FakeGitLab, NewIssue, access};

const BIN: &str = env!("CARGO_BIN_EXE_scrum-orchestrator");
const PROJECT: &str = "group/sub/project";
const WEBHOOK_SECRET: &str = "gitlab-hook-secret";

fn bin_dir() -> &'static Path {
    Path::new(BIN).parent().unwrap()
}

/// The `Completed: …` notes on an issue.
fn completion_notes(fleet: &Fleet, id: &TaskId) -> Vec<String> {
    fleet
        .comments(id)
        .into_iter()
        .filter(|c| c.starts_with("Completed"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fleet_works_a_github_repository_and_a_nested_gitlab_project() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir(), &[("acme/api", "API change 1")])
        .await
        .unwrap();
    let lab = fleet
        .add_gitlab(&[(PROJECT, "Lab change 1")])
        .await
        .unwrap()
        .remove(0);
    let hub = fleet.issues[0].clone();
    assert_eq!(lab.to_string(), "gitlab:group/sub/project#1");

    // A Reporter may label issues but not approve work for an agent.
    let gitlab = fleet.gitlab();
    gitlab.add_member(PROJECT, "reporter-rita", access::REPORTER);
    let unapproved = gitlab.add_issue(PROJECT, NewIssue::new("Rita's wish"));
    gitlab.label_as(&unapproved, &["ai-ready"], "reporter-rita");

    fleet.set_env("GITLAB_WEBHOOK_SECRET", WEBHOOK_SECRET);
    fleet.start_orchestrator().await.unwrap();
    fleet
        .gitlab()
        .set_webhook(&format!("{}/webhooks/gitlab", fleet.url()), WEBHOOK_SECRET);
    for w in ["worker-1", "worker-2"] {
        fleet.start_worker(w).unwrap();
    }
    fleet.wait_for_outcomes(Duration::from_secs(90)).await;

    // Both end completed, each with one completion note naming its change request.
    for id in [&hub, &lab] {
        assert_eq!(
            fleet.labels(id),
            ["ai-completed"],
            "{id}: {:?}",
            fleet.comments(id)
        );
        let notes = completion_notes(&fleet, id);
        assert_eq!(notes.len(), 1, "{id}: {:?}", fleet.comments(id));
    }
    assert!(completion_notes(&fleet, &hub)[0].contains("/acme/api/pull/"));

    // GitLab: a merge request from the agent's branch into the default branch,
    // saying it closes the issue; the branch holds the workflow's commit.
    let mrs = fleet.gitlab().merge_requests(PROJECT);
    assert_eq!(mrs.len(), 1, "{mrs:?}");
    let mr = &mrs[0];
    assert_eq!(mr.source_branch, "ai-feature/issue-1");
    assert_eq!(mr.target_branch, "main");
    assert!(mr.description.contains("Closes #1"), "{}", mr.description);
    assert!(
        completion_notes(&fleet, &lab)[0].contains(&mr.web_url),
        "{:?} names {}",
        fleet.comments(&lab),
        mr.web_url
    );
    // The worker's forge reads it back as GitLab holds it.
    let forge = GitLabForge::new(&fleet.gitlab().url(), Secret::new(fleet.gitlab().token()));
    let project = lab.repo_name();
    let state = forge.change_state(&project, mr.iid, None).await.unwrap();
    assert_eq!(state, Some(PullState::Open));
    fleet.gitlab().merge(PROJECT, mr.iid);
    let state = forge.change_state(&project, mr.iid, None).await.unwrap();
    assert_eq!(state, Some(PullState::Merged));
    let change = fleet
        .remote_file(
            "gitlab:group/sub/project",
            "ai-feature/issue-1",
            "changes/issue-1.md",
        )
        .expect("the branch was pushed to GitLab's remote");
    assert!(change.contains("Lab change 1"), "{change}");
    assert!(
        fleet
            .remote_branches("acme/api")
            .unwrap()
            .contains(&"ai-feature/issue-1".to_string()),
        "the same branch name on GitHub"
    );

    // The Reporter's label queued nothing: the issue was told why, once, and never
    // went to a worker.
    fleet
        .wait_for(
            "the unapproved issue's note",
            Duration::from_secs(30),
            || !fleet.comments(&unapproved).is_empty(),
        )
        .await;
    assert!(
        !fleet
            .labels(&unapproved)
            .contains(&"ai-in-progress".to_string())
    );
    let listed = reqwest::get(format!("{}/queue?limit=500", fleet.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&unapproved.to_string()), "{listed}");
    assert!(listed.contains("gitlab:group/sub/project"), "{listed}");

    // /health shows each forge apart, both reached.
    let health: serde_json::Value = reqwest::get(format!("{}/health", fleet.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let forges = health["forges"].as_array().expect("forges listed");
    let names: Vec<&str> = forges.iter().filter_map(|f| f["forge"].as_str()).collect();
    assert_eq!(names, ["github", "gitlab"], "{health}");
    assert!(forges.iter().all(|f| f["connected"] == true), "{health}");

    // The worker's doctor checks a push and merge requests on the GitLab project
    // with the worker's GitLab token.
    let worker_doctor = Command::new(bin_dir().join("scrum-worker"))
        .args(["doctor", "--repo", "gitlab:group/sub/project"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WORKER_ID", "doctor")
        .env("ORCHESTRATOR_URL", fleet.url())
        .env("WORKSPACE_DIR", dir.path().join("doctor"))
        .env("WORKFLOW_COMMAND", "true")
        .env("SANDBOX", "none")
        .env("GITLAB_URL", fleet.gitlab().url())
        .env("GITLAB_TOKEN", fleet.gitlab().token())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&worker_doctor.stdout);
    for area in ["git", "gitlab"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("ok   {area}: "))),
            "no passing {area} check:\n{report}"
        );
    }

    // GitLab's webhook reached the orchestrator with its secret token.
    let deliveries = fleet.gitlab().deliveries();
    assert!(
        deliveries
            .iter()
            .any(|(_, status)| [200, 202].contains(status)),
        "{deliveries:?}"
    );
    assert!(
        deliveries.iter().all(|(_, status)| *status != 401),
        "{deliveries:?}"
    );
    fleet.stop();
}

/// `scrum-orchestrator ARGS` with only the GitLab settings (and a state directory)
/// in its environment.
async fn orchestrator(args: &[&str], gitlab: &FakeGitLab, state: &Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STATE_DIR", state)
        .env("ORCHESTRATOR_PORT", "0")
        .env("GITLAB_URL", gitlab.url())
        .env("GITLAB_TOKEN", FakeGitLab::TOKEN)
        .env("GITLAB_PROJECTS", PROJECT);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_token_that_may_only_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = FakeGitLab::start().await;
    gitlab.add_project(PROJECT);
    gitlab.set_scopes(&["read_api"]);

    let out = orchestrator(&[], &gitlab, dir.path()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    for part in [
        "GITLAB_TOKEN was refused by GitLab",
        "read_api",
        "api scope",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
    assert!(
        !stderr.contains(FakeGitLab::TOKEN),
        "the token leaked: {stderr}"
    );

    // The doctor says the same before anyone starts the service, with the fix.
    let doctor = orchestrator(&["doctor"], &gitlab, dir.path()).await;
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    let line = report
        .lines()
        .find(|l| l.starts_with("FAIL") && l.contains("gitlab"))
        .unwrap_or_else(|| panic!("no gitlab failure in:\n{report}"));
    assert!(line.contains("api scope"), "{line}");

    gitlab.set_scopes(&["api"]);
    let doctor = orchestrator(&["doctor"], &gitlab, dir.path()).await;
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("ok")
                && l.contains("Developer access to gitlab:group/sub/project")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_alone_needs_no_github_settings() {
    let dir = tempfile::tempdir().unwrap();
    let gitlab = FakeGitLab::start().await;
    gitlab.add_project(PROJECT);
    let id = gitlab.add_issue(
        PROJECT,
        NewIssue::new("Only on GitLab").labels(&["ai-ready"]),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut orchestrator = KillOnDrop(
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STATE_DIR", dir.path())
            .env("ORCHESTRATOR_HOST", "127.0.0.1")
            .env("ORCHESTRATOR_PORT", port.to_string())
            .env("GITHUB_POLL_INTERVAL", "1")
            .env("GITLAB_URL", gitlab.url())
            .env("GITLAB_TOKEN", FakeGitLab::TOKEN)
            .env("GITLAB_PROJECTS", PROJECT)
            .env("GITLAB_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while !gitlab.labels(&id).contains(&"ai-in-progress".to_string()) {
        if let Some(status) = orchestrator.0.try_wait().unwrap() {
            panic!("the orchestrator exited with {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the GitLab issue was not queued; /health said {last}"
        );
        if let Ok(r) = reqwest::get(format!("{url}/health")).await {
            last = r.text().await.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health: serde_json::Value = reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["forges"][0]["forge"], "gitlab", "{health}");

    // The doctor sends the running orchestrator a test GitLab delivery: taken with
    // the secret it runs with, refused with another.
    for (secret, want) in [
        (WEBHOOK_SECRET, "ok   webhook: the orchestrator at"),
        ("another-secret", "FAIL webhook: the orchestrator at"),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(["doctor", "--url", &url])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STATE_DIR", dir.path().join("doctor"))
            .env("GITLAB_URL", gitlab.url())
            .env("GITLAB_TOKEN", FakeGitLab::TOKEN)
            .env("GITLAB_PROJECTS", PROJECT)
            .env("GITLAB_WEBHOOK_SECRET", secret);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        let line = report
            .lines()
            .find(|l| l.starts_with(want) && l.contains("test GitLab delivery"))
            .unwrap_or_else(|| panic!("no {want:?} line about GitLab's webhook in:\n{report}"));
        if secret != WEBHOOK_SECRET {
            assert!(line.contains("another secret"), "{line}");
        }
    }
}

/// A process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
