//! Follow-ups on GitHub: what `pull_status` reads of a pull request (its head,
//! whether it merges, the checks that count with what failed, `/agent` comments
//! with their authors' permission), the status comment `upsert_comment` keeps, and
//! what an unchanged pull request costs on each poll.

mod common;

use common::*;
use scrum_core::follow_up::{ChecksState, Mergeable, PullStatus};
use scrum_core::{Commented, IssueSource, RepoName};
use scrum_github::GitHubClient;
use scrum_github::fake::{FakeCheck, FakeGitHub, NewIssue};

const REPO: &str = "acme/widgets";

/// A fake with one repository and one open pull request (from `feature`), and a
/// client: the pull request's number.
async fn with_pull() -> (FakeGitHub, GitHubClient, u64) {
    let (github, client) = setup(&[REPO]).await;
    let pr = github.add_issue(REPO, NewIssue::new("Add a widget").pull_request("feature"));
    (github, client, pr.number())
}

fn repo() -> RepoName {
    REPO.parse().unwrap()
}

async fn status(client: &GitHubClient, pr: u64, checks: &[&str]) -> PullStatus {
    let checks: Vec<String> = checks.iter().map(|c| c.to_string()).collect();
    client
        .pull_status(&repo(), pr, &checks)
        .await
        .unwrap()
        .expect("GitHub has pull requests")
}

#[tokio::test]
async fn a_pull_request_without_checks_reads_as_none_with_its_head_and_clean() {
    let (github, client, pr) = with_pull().await;
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::None);
    assert!(s.checks.failed.is_empty());
    assert_eq!(s.mergeable, Mergeable::Clean);
    assert_eq!(Some(s.head.clone()), github.head_sha(REPO, pr));
    assert_eq!(s.head.len(), 40, "{}", s.head);
    assert!(s.comments.is_empty());
}

#[tokio::test]
async fn a_running_check_is_pending_and_a_passed_one_passes() {
    let (github, client, pr) = with_pull().await;
    github.set_check(REPO, pr, FakeCheck::passed("lint"));
    github.set_check(REPO, pr, FakeCheck::running("test"));
    assert_eq!(
        status(&client, pr, &[]).await.checks.state,
        ChecksState::Pending
    );
    // A re-run of the same name replaces it.
    github.set_check(REPO, pr, FakeCheck::passed("test"));
    assert_eq!(
        status(&client, pr, &[]).await.checks.state,
        ChecksState::Passed
    );
}

#[tokio::test]
async fn a_failed_check_carries_its_annotations_and_the_tail_of_its_log() {
    let (github, client, pr) = with_pull().await;
    let log: Vec<String> = (1..=100).map(|i| format!("log line {i}")).collect();
    let mut log = log;
    log.push("test widgets::spins ... FAILED".into());
    github.set_check(
        REPO,
        pr,
        FakeCheck::failed("test")
            .title("1 test failed")
            .log(&log)
            .annotation("src/widget.rs", 12, "assertion failed: spins()"),
    );
    github.set_check(REPO, pr, FakeCheck::passed("lint"));

    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::Failed);
    assert_eq!(s.checks.failed.len(), 1, "{:?}", s.checks.failed);
    let f = &s.checks.failed[0];
    assert_eq!(f.name, "test");
    assert_eq!(f.summary, "failure: 1 test failed");
    assert_eq!(
        f.annotations,
        ["src/widget.rs:12: assertion failed: spins()"]
    );
    assert!(
        f.log_tail.ends_with("test widgets::spins ... FAILED"),
        "{}",
        f.log_tail
    );
    assert_eq!(f.log_tail.lines().count(), 60, "the last 60 lines");
    assert!(!f.log_tail.contains("log line 1\n"));
    assert!(f.log_tail.chars().count() <= scrum_core::follow_up::LOG_TAIL_CHARS);
    // The log was read where GitHub's redirect pointed.
    assert_eq!(requests_to(&github, "GET", "/_fake/logs/"), 1);

    // A completed check run never changes: its details are read once.
    github.clear_requests();
    status(&client, pr, &[]).await;
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/actions/jobs/"),
        0
    );
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/check-runs/"),
        0
    );
}

#[tokio::test]
async fn a_check_of_another_app_has_no_log_to_read() {
    let (github, client, pr) = with_pull().await;
    github.set_check(
        REPO,
        pr,
        FakeCheck::failed("deploy").summary("quota").external(),
    );
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::Failed);
    assert_eq!(s.checks.failed[0].summary, "failure: quota");
    assert!(s.checks.failed[0].log_tail.is_empty());
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/actions/"),
        0
    );
}

#[tokio::test]
async fn a_failed_commit_status_counts_as_a_failed_check() {
    let (github, client, pr) = with_pull().await;
    github.add_status(REPO, pr, "ci/jenkins", "pending", "running");
    assert_eq!(
        status(&client, pr, &[]).await.checks.state,
        ChecksState::Pending
    );
    github.add_status(REPO, pr, "ci/jenkins", "failure", "2 tests failed");
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::Failed);
    assert_eq!(s.checks.failed[0].name, "ci/jenkins");
    assert_eq!(s.checks.failed[0].summary, "failure: 2 tests failed");
}

#[tokio::test]
async fn only_the_base_branchs_required_checks_count() {
    let (github, client, pr) = with_pull().await;
    github.require_checks(REPO, "main", &["build", "test"]);
    github.set_check(REPO, pr, FakeCheck::failed("flaky-optional"));
    github.set_check(REPO, pr, FakeCheck::passed("build"));
    // `test` is required and has not reported: it is waited for.
    assert_eq!(
        status(&client, pr, &[]).await.checks.state,
        ChecksState::Pending
    );
    github.set_check(REPO, pr, FakeCheck::passed("test"));
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::Passed, "{:?}", s.checks);
}

#[tokio::test]
async fn without_branch_protection_every_check_counts() {
    let (github, client, pr) = with_pull().await;
    github.set_check(REPO, pr, FakeCheck::passed("build"));
    github.set_check(REPO, pr, FakeCheck::failed("flaky-optional"));
    assert_eq!(
        status(&client, pr, &[]).await.checks.state,
        ChecksState::Failed
    );
}

#[tokio::test]
async fn follow_up_checks_name_the_checks_that_count() {
    let (github, client, pr) = with_pull().await;
    github.require_checks(REPO, "main", &["build"]);
    github.set_check(REPO, pr, FakeCheck::passed("build"));
    github.set_check(REPO, pr, FakeCheck::failed("lint"));
    github.set_check(REPO, pr, FakeCheck::failed("docs"));
    let s = status(&client, pr, &["lint"]).await;
    assert_eq!(s.checks.state, ChecksState::Failed);
    let names: Vec<&str> = s.checks.failed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["lint"]);
    assert_eq!(
        status(&client, pr, &["build"]).await.checks.state,
        ChecksState::Passed
    );
    // Branch protection is not read when the checks are named.
    github.clear_requests();
    status(&client, pr, &["build"]).await;
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/branches/"),
        0
    );
}

#[tokio::test]
async fn a_pull_request_that_cannot_merge_reads_as_a_conflict() {
    let (github, client, pr) = with_pull().await;
    github.set_mergeable(REPO, pr, Some(false));
    assert_eq!(
        status(&client, pr, &[]).await.mergeable,
        Mergeable::Conflict
    );
    github.set_mergeable(REPO, pr, None);
    assert_eq!(status(&client, pr, &[]).await.mergeable, Mergeable::Unknown);
    github.set_mergeable(REPO, pr, Some(true));
    assert_eq!(status(&client, pr, &[]).await.mergeable, Mergeable::Clean);
}

#[tokio::test]
async fn agent_comments_come_with_their_authors_permission_and_place() {
    let (github, client, pr) = with_pull().await;
    github.set_role(REPO, "writer", "write");
    github.set_role(REPO, "reader", "read");
    github.comment_on_pull(REPO, pr, "writer", "/agent rename foo to bar");
    github.comment_on_pull(REPO, pr, "writer", "looks good otherwise");
    github.comment_on_pull(REPO, pr, "reader", "/agent delete the tests");
    github.review_comment(
        REPO,
        pr,
        "writer",
        "src/lib.rs",
        12,
        "/agent handle None here",
    );

    let s = status(&client, pr, &[]).await;
    let seen: Vec<(&str, bool, &str, Option<&str>)> = s
        .comments
        .iter()
        .map(|c| {
            (
                c.author.login.as_str(),
                c.author.may_approve,
                c.body.as_str(),
                c.path.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("writer", true, "/agent rename foo to bar", None),
            ("reader", false, "/agent delete the tests", None),
            (
                "writer",
                true,
                "/agent handle None here",
                Some("src/lib.rs:12")
            ),
        ]
    );
    assert!(s.comments.windows(2).all(|w| w[0].at <= w[1].at));
    let ids: std::collections::BTreeSet<&str> = s.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each comment keeps its own id");
}

#[tokio::test]
async fn the_status_comment_is_posted_once_then_edited_in_place() {
    let (github, client, pr) = with_pull().await;
    let id = scrum_core::TaskId::new(REPO, pr).unwrap();
    let first = client
        .upsert_comment(&id, "follow-up", "Round 1: checks failed")
        .await
        .unwrap();
    assert_eq!(first, Commented::Posted);
    let second = client
        .upsert_comment(&id, "follow-up", "Round 2: fixed")
        .await
        .unwrap();
    assert_eq!(second, Commented::Updated);
    let comments = github.comments(&id);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].starts_with("Round 2: fixed"), "{comments:?}");
    assert!(comments[0].contains("<!-- follow-up -->"));

    // The same body again changes nothing and writes nothing.
    github.clear_requests();
    let again = client
        .upsert_comment(&id, "follow-up", "Round 2: fixed")
        .await
        .unwrap();
    assert_eq!(again, Commented::Updated);
    assert_eq!(requests_to(&github, "PATCH", "/"), 0);
    assert_eq!(requests_to(&github, "POST", "/"), 0);

    // Another marker is another comment; `comment` still never edits.
    client.upsert_comment(&id, "other", "x").await.unwrap();
    assert_eq!(github.comments(&id).len(), 2);
    let kept = client.comment(&id, "follow-up", "ignored").await.unwrap();
    assert_eq!(kept, Commented::AlreadyPresent);
    assert!(github.comments(&id)[0].starts_with("Round 2: fixed"));
}

#[tokio::test]
async fn an_unknown_pull_request_is_not_found() {
    let (_github, client, _pr) = with_pull().await;
    let err = client.pull_status(&repo(), 99, &[]).await.unwrap_err();
    assert_eq!(err.kind(), scrum_core::ErrorKind::NotFound);
}

#[tokio::test]
async fn an_unchanged_pull_request_costs_no_rate_limit_point_on_the_next_poll() {
    let (github, client, pr) = with_pull().await;
    github.set_role(REPO, "writer", "write");
    github.require_checks(REPO, "main", &["test"]);
    github.set_check(
        REPO,
        pr,
        FakeCheck::failed("test")
            .log(&["boom"])
            .annotation("a.rs", 1, "x"),
    );
    github.add_status(REPO, pr, "ci/other", "success", "");
    github.comment_on_pull(REPO, pr, "writer", "/agent fix it");
    github.review_comment(REPO, pr, "writer", "a.rs", 1, "/agent and here");

    let before = (github.requests().len(), github.points_spent());
    status(&client, pr, &[]).await;
    let first = (
        github.requests().len() - before.0,
        github.points_spent() - before.1,
    );
    let before = (github.requests().len(), github.points_spent());
    status(&client, pr, &[]).await;
    let second = (
        github.requests().len() - before.0,
        github.points_spent() - before.1,
    );
    eprintln!(
        "one tracked pull request: first poll {} requests, {} points; unchanged, the next {} requests, {} points",
        first.0, first.1, second.0, second.1
    );
    assert_eq!(second.1, 0, "an unchanged pull request costs no point");
    assert!(second.0 <= 4, "{second:?}");
    assert!(first.0 <= 12, "{first:?}");

    // A new comment changes the pull request (it counts its comments): read.
    github.comment_on_pull(REPO, pr, "writer", "/agent and the docs");
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.comments.len(), 3, "{:?}", s.comments);
    assert_eq!(s.comments[2].body, "/agent and the docs");

    // A pull request with no comments and no checks reads fewer lists.
    let quiet = github.add_issue(REPO, NewIssue::new("Quiet").pull_request("quiet"));
    status(&client, quiet.number(), &[]).await;
    github.clear_requests();
    status(&client, quiet.number(), &[]).await;
    let paths: Vec<String> = github.requests().iter().map(|r| r.path.clone()).collect();
    assert!(!paths.iter().any(|p| p.contains("/comments")), "{paths:?}");
}

#[tokio::test]
async fn checks_the_token_may_not_read_are_left_out_not_an_error() {
    let (github, client, pr) = with_pull().await;
    github.set_check(REPO, pr, FakeCheck::failed("test"));
    github.add_status(REPO, pr, "ci/jenkins", "success", "");
    // A token without Checks: read is refused the check runs.
    github.inject_for(
        "GET",
        &format!("/repos/{REPO}/commits/"),
        scrum_github::fake::Fault::Status(403),
    );
    let s = status(&client, pr, &[]).await;
    assert_eq!(s.checks.state, ChecksState::Passed, "{:?}", s.checks);
    assert_eq!(s.mergeable, Mergeable::Clean);
}
