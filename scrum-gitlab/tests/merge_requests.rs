//! Merge requests on GitLab: opening one (idempotent), pushing to the project's
//! git remote with the token, and what review gating and follow-ups read of a
//! merge request: state, approvals, conflicts, the head pipeline's jobs and
//! logs, and `/agent` notes.

mod common;

use std::process::Command;

use common::setup;
use scrum_core::follow_up::{ChecksState, Mergeable};
use scrum_core::pull_gate::PullState;
use scrum_core::{ErrorKind, IssueSource, RepoName};
use scrum_gitlab::fake::{FakeJob, access};

const PATH: &str = "group/sub/project";

fn repo() -> RepoName {
    format!("gitlab:{PATH}").parse().unwrap()
}

#[tokio::test]
async fn opening_a_merge_request_twice_opens_one() {
    let (gitlab, client) = setup(&[PATH]).await;
    let url = client
        .open_merge_request(&repo(), "ai-feature/issue-7", "main", "Fix #7", "Closes #7")
        .await
        .unwrap();
    let again = client
        .open_merge_request(&repo(), "ai-feature/issue-7", "main", "Fix #7", "Closes #7")
        .await
        .unwrap();
    assert_eq!(url, again);
    let mrs = gitlab.merge_requests(PATH);
    assert_eq!(mrs.len(), 1, "{mrs:#?}");
    assert_eq!(mrs[0].web_url, url);
    assert!(
        url.ends_with("/group/sub/project/-/merge_requests/1"),
        "{url}"
    );
    assert_eq!(
        (mrs[0].source_branch.as_str(), mrs[0].target_branch.as_str()),
        ("ai-feature/issue-7", "main")
    );
    assert_eq!(mrs[0].description, "Closes #7");

    // One opened by someone else for the branch is found, not duplicated.
    let theirs = gitlab.add_merge_request(PATH, "ai-feature/issue-8", "main", "By hand");
    let found = client
        .open_merge_request(&repo(), "ai-feature/issue-8", "main", "Fix #8", "")
        .await
        .unwrap();
    assert!(
        found.ends_with(&format!("/merge_requests/{theirs}")),
        "{found}"
    );
    assert_eq!(gitlab.merge_requests(PATH).len(), 2);
}

#[tokio::test]
async fn the_default_branch_is_the_projects() {
    let gitlab = scrum_gitlab::fake::FakeGitLab::start().await;
    gitlab.add_project_with_default_branch(PATH, "trunk");
    let client = scrum_gitlab::GitLabClient::new(common::config(&gitlab, &[PATH])).unwrap();
    assert_eq!(client.default_branch(&repo()).await.unwrap(), "trunk");
}

#[tokio::test]
async fn a_merge_request_reads_open_approved_merged_and_closed() {
    let (gitlab, client) = setup(&[PATH]).await;
    let a = gitlab.add_merge_request(PATH, "a", "main", "A");
    let b = gitlab.add_merge_request(PATH, "b", "main", "B");
    let state = |n| {
        let client = client.clone();
        async move { client.pull_state(&repo(), n).await.unwrap() }
    };
    assert_eq!(state(a).await, Some(PullState::Open));
    gitlab.approve(PATH, a, "reviewer");
    assert_eq!(state(a).await, Some(PullState::Approved));
    gitlab.merge(PATH, a);
    assert_eq!(state(a).await, Some(PullState::Merged));
    gitlab.close_merge_request(PATH, b);
    assert_eq!(state(b).await, Some(PullState::Closed));
    let err = client.pull_state(&repo(), 99).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_request_for_changes_names_its_reviewer_and_words() {
    let (gitlab, client) = setup(&[PATH]).await;
    gitlab.add_member(PATH, "lead", access::MAINTAINER);
    gitlab.add_member(PATH, "visitor", access::REPORTER);
    let n = gitlab.add_merge_request(PATH, "ai-feature/issue-2", "main", "Fix");
    gitlab.approve(PATH, n, "lead");
    gitlab.request_changes(PATH, n, "lead", "Please handle the empty case.");
    let review = client.pull_review(&repo(), n).await.unwrap().unwrap();
    assert_eq!(review.state, PullState::ChangesRequested);
    let asked = review.change_request.expect("the request");
    assert_eq!(
        (
            asked.reviewer.login.as_str(),
            asked.reviewer.may_approve,
            asked.body.as_str()
        ),
        ("lead", true, "Please handle the empty case.")
    );

    // A later request is a new one (a new id), by whoever asked last.
    gitlab.request_changes(PATH, n, "visitor", "Rewrite it in Go.");
    let later = client.pull_review(&repo(), n).await.unwrap().unwrap();
    let again = later.change_request.clone().expect("the request");
    assert_ne!(again.id, asked.id);
    assert_eq!(
        (again.reviewer.login.as_str(), again.reviewer.may_approve),
        ("visitor", false)
    );
    let status = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    assert_eq!(status.review, later);

    gitlab.approve(PATH, n, "lead");
    gitlab.approve(PATH, n, "visitor");
    assert_eq!(
        client.pull_state(&repo(), n).await.unwrap(),
        Some(PullState::Approved)
    );
}

#[tokio::test]
async fn a_failed_job_brings_its_log_tail_and_a_conflict_reads_as_one() {
    let (gitlab, client) = setup(&[PATH]).await;
    let n = gitlab.add_merge_request(PATH, "ai-feature/issue-1", "main", "Fix");
    let none = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    assert_eq!(none.checks.state, ChecksState::None);
    assert_eq!(none.mergeable, Mergeable::Clean);

    gitlab.set_pipeline(
        PATH,
        n,
        &[
            FakeJob::new("lint", "success"),
            FakeJob::new("test", "running"),
        ],
    );
    let running = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    assert_eq!(running.checks.state, ChecksState::Pending);
    assert_eq!(Some(running.head), gitlab.head_sha(PATH, n));

    let log = "$ cargo test\nrunning 3 tests\ntest widget_spins ... FAILED\nerror: 1 test failed\n";
    gitlab.set_pipeline(
        PATH,
        n,
        &[
            FakeJob::new("lint", "success"),
            FakeJob::new("test", "failed").trace(log),
        ],
    );
    gitlab.set_conflicts(PATH, n, true);
    let red = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    assert_eq!(red.checks.state, ChecksState::Failed);
    assert_eq!(red.checks.failed.len(), 1);
    assert_eq!(red.checks.failed[0].name, "test");
    assert!(
        red.checks.failed[0]
            .log_tail
            .contains("widget_spins ... FAILED")
    );
    assert_eq!(red.mergeable, Mergeable::Conflict);

    // Only the named checks count.
    let lint_only = client
        .pull_status(&repo(), n, &["lint".to_string()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lint_only.checks.state, ChecksState::Passed);

    gitlab.set_conflicts(PATH, n, false);
    gitlab.set_merge_status(PATH, n, "checking");
    let checking = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    assert_eq!(checking.mergeable, Mergeable::Unknown);
}

#[tokio::test]
async fn agent_notes_are_read_with_their_authors_access() {
    let (gitlab, client) = setup(&[PATH]).await;
    gitlab.add_member(PATH, "dev", access::DEVELOPER);
    gitlab.add_member(PATH, "reporter", access::REPORTER);
    let n = gitlab.add_merge_request(PATH, "ai-feature/issue-1", "main", "Fix");
    gitlab.comment_on_mr(PATH, n, "dev", "Looks fine overall.");
    let asked = gitlab.comment_on_mr(PATH, n, "dev", "/agent rename the helper");
    gitlab.comment_on_mr(PATH, n, "reporter", "/agent delete the tests");
    let status = client.pull_status(&repo(), n, &[]).await.unwrap().unwrap();
    let got: Vec<(&str, bool, &str)> = status
        .comments
        .iter()
        .map(|c| {
            (
                c.author.login.as_str(),
                c.author.may_approve,
                c.body.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("dev", true, "/agent rename the helper"),
            ("reporter", false, "/agent delete the tests"),
        ]
    );
    assert_eq!(status.comments[0].id, asked.to_string());
}

fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs")
}

#[tokio::test]
async fn a_push_to_the_push_url_lands_and_a_wrong_token_is_refused() {
    let (gitlab, client) = setup(&[PATH]).await;
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join(format!("{PATH}.git"));
    std::fs::create_dir_all(&bare).unwrap();
    assert!(
        git(&bare, &["init", "--bare", "-q", "-b", "main"])
            .status
            .success()
    );
    gitlab.serve_git_from(root.path());

    let push_url = client.push_url(&repo());
    assert_eq!(
        push_url,
        format!("{}/{PATH}.git", gitlab.url())
            .replace("http://", &format!("http://oauth2:{}@", gitlab.token()))
    );
    assert!(!format!("{client:?}").contains(gitlab.token()));

    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(git(dir, &["init", "-q", "-b", "ai-feature/issue-1"]));
    std::fs::write(dir.join("README"), "hello\n").unwrap();
    ok(git(dir, &["add", "README"]));
    ok(git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "first",
        ],
    ));
    let url = push_url.clone();
    let dir_owned = dir.to_path_buf();
    let pushed =
        tokio::task::spawn_blocking(move || git(&dir_owned, &["push", "-q", &url, "HEAD"]))
            .await
            .unwrap();
    ok(pushed);
    let refs = git(&bare, &["branch", "--list"]);
    assert!(String::from_utf8_lossy(&refs.stdout).contains("ai-feature/issue-1"));

    let wrong = push_url.replace(gitlab.token(), "glpat-wrong");
    let dir_owned = dir.to_path_buf();
    let refused =
        tokio::task::spawn_blocking(move || git(&dir_owned, &["push", "-q", &wrong, "HEAD:other"]))
            .await
            .unwrap();
    assert!(!refused.status.success());
}
