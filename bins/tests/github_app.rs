//! The real binaries working as a GitHub App: the orchestrator has GITHUB_APP_ID
//! and the app's key, no GITHUB_TOKEN; the fake GitHub acts as the app, installed
//! on two owners. Each repository is polled and written with its own
//! installation's token, and the worker (no token of its own) pushes over HTTP and
//! opens its pull request with the token its assignment carried, scoped to the
//! task's repository.

use std::path::Path;
use std::time::Duration;

use scrum_bins::fleet::{Fleet, IssueProgress};
use scrum_github::fake::{FakeGitHub, ServedRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_two_installations_and_workers_push_with_scoped_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [("acme/api", "API change"), ("globex/web", "Web change")];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    let github = &fleet.github;
    github.act_as_app();
    let acme = github.add_installation("acme");
    let globex = github.add_installation("globex");
    let key = dir.path().join("app.pem");
    std::fs::write(&key, FakeGitHub::APP_KEY_PEM).unwrap();
    let git_url = github.git_url();
    fleet.unset_env("GITHUB_TOKEN");
    fleet.set_env("GITHUB_APP_ID", &FakeGitHub::APP_ID.to_string());
    fleet.set_env("GITHUB_APP_PRIVATE_KEY_PATH", key.to_str().unwrap());
    fleet.set_env("GIT_BASE_URL", &git_url);
    fleet.start_orchestrator().await.unwrap();
    fleet.start_worker("worker-1").unwrap();

    fleet.wait_for_outcomes(Duration::from_secs(90)).await;
    for (id, progress) in fleet.progress() {
        assert_eq!(progress, IssueProgress::Completed, "{id}");
    }
    let github = &fleet.github;
    for repo in ["acme/api", "globex/web"] {
        let pulls = github.pull_requests(repo);
        assert_eq!(pulls.len(), 1, "{repo}: {pulls:?}");
        let branches = fleet.remote_branches(repo).unwrap();
        assert!(branches.contains(&pulls[0].head), "{repo}: {branches:?}");
    }

    let log = github.requests();
    let refused: Vec<&ServedRequest> = log.iter().filter(|r| r.status == 401).collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    for (owner, installation, name) in [("acme", acme, "api"), ("globex", globex, "web")] {
        let api = format!("/repos/{owner}/");
        let on_owner =
            |r: &&ServedRequest| r.path.starts_with(&api) && !r.path.ends_with("/installation");
        // The orchestrator's polls and writes, and the pull request, with the
        // owner's installation.
        assert!(log.iter().filter(on_owner).count() >= 3);
        for r in log.iter().filter(on_owner) {
            assert_eq!(r.installation, Some(installation), "{r:?}");
        }
        let pull = log
            .iter()
            .find(|r| r.method == "POST" && r.path == format!("/repos/{owner}/{name}/pulls"))
            .expect("the pull request was opened");
        assert_eq!(pull.token_scope, Some(vec![name.to_string()]), "{pull:?}");
        // The push: git over HTTP with a token of that repository alone.
        let push = format!("/git/{owner}/{name}.git/git-receive-pack");
        let pushes: Vec<&ServedRequest> = log.iter().filter(|r| r.path == push).collect();
        assert!(!pushes.is_empty(), "no push to {push}");
        for r in pushes {
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.installation, Some(installation), "{r:?}");
            assert_eq!(r.token_scope, Some(vec![name.to_string()]), "{r:?}");
        }
    }
}
