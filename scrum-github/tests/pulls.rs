//! Pull requests: against the default branch, idempotent, `Closes #N`.

mod common;

use common::*;
use scrum_core::ErrorKind;
use scrum_github::GitHubClient;
use scrum_github::fake::{FakeGitHub, Fault, NewIssue};

async fn setup_develop() -> (FakeGitHub, GitHubClient) {
    let github = FakeGitHub::start().await;
    github.add_repo_with_default_branch("acme/widgets", "develop");
    let client = GitHubClient::connect(config(&github, &["acme/widgets"]))
        .await
        .unwrap();
    (github, client)
}

#[tokio::test]
async fn opens_a_pull_request_against_the_default_branch_that_closes_the_issue() {
    let (github, client) = setup_develop().await;
    let id = github.add_issue(
        "acme/widgets",
        NewIssue::new("Add a widget").labels(&["ai-ready"]),
    );
    github.add_branch("acme/widgets", "ai-feature/issue-1");

    let pr = client
        .open_pull_request(
            &id,
            "ai-feature/issue-1",
            "Add a widget",
            "Implements the widget.",
        )
        .await
        .unwrap();

    assert!(pr.created);
    let pulls = github.pull_requests("acme/widgets");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].number, pr.number);
    assert_eq!(pulls[0].base, "develop");
    assert_eq!(pulls[0].head, "ai-feature/issue-1");
    assert!(pulls[0].body.starts_with("Implements the widget."));
    assert!(pulls[0].body.ends_with("Closes #1"), "{}", pulls[0].body);
    assert!(
        pr.html_url
            .ends_with(&format!("/acme/widgets/pull/{}", pr.number)),
        "{}",
        pr.html_url
    );
}

#[tokio::test]
async fn a_retried_attempt_gets_the_pull_request_already_open() {
    let (github, client) = setup_develop().await;
    let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget"));
    github.add_branch("acme/widgets", "ai-feature/issue-1");

    let first = client
        .open_pull_request(&id, "ai-feature/issue-1", "Add a widget", "")
        .await
        .unwrap();
    let again = client
        .open_pull_request(&id, "ai-feature/issue-1", "Add a widget", "")
        .await
        .unwrap();

    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.number, first.number);
    assert_eq!(again.html_url, first.html_url);
    assert_eq!(github.pull_requests("acme/widgets").len(), 1);
    assert_eq!(github.pull_requests("acme/widgets")[0].body, "Closes #1");
}

#[tokio::test]
async fn a_branch_that_was_never_pushed_is_refused_clearly() {
    let (github, client) = setup_develop().await;
    let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget"));

    let err = client
        .open_pull_request(&id, "ai-feature/issue-1", "Add a widget", "")
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("ai-feature/issue-1"), "{err}");
    assert!(github.pull_requests("acme/widgets").is_empty());
}

#[tokio::test]
async fn a_pull_request_whose_answer_was_lost_is_found_on_retry() {
    let (github, client) = setup_develop().await;
    let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget"));
    github.add_branch("acme/widgets", "ai-feature/issue-1");
    github.inject_for("POST", "/repos/acme/widgets/pulls", Fault::LostAnswer);

    let pr = client
        .open_pull_request(&id, "ai-feature/issue-1", "Add a widget", "")
        .await
        .unwrap();

    let pulls = github.pull_requests("acme/widgets");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pr.number, pulls[0].number);
}

#[tokio::test]
async fn a_pull_requests_body_is_read_and_replaced() {
    let (github, client) = setup_develop().await;
    let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget"));
    github.add_branch("acme/widgets", "ai-feature/issue-1");
    let pr = client
        .open_pull_request(&id, "ai-feature/issue-1", "Add a widget", "Implements it.")
        .await
        .unwrap();
    let repo = id.repo_name();

    let body = client.pull_body(&repo, pr.number).await.unwrap();
    assert_eq!(body, "Implements it.\n\nCloses #1");
    client
        .set_pull_body(&repo, pr.number, &format!("{body}\n\n### Rounds"))
        .await
        .unwrap();

    assert_eq!(
        client.pull_body(&repo, pr.number).await.unwrap(),
        "Implements it.\n\nCloses #1\n\n### Rounds"
    );
    let pulls = github.pull_requests("acme/widgets");
    assert!(pulls[0].body.ends_with("### Rounds"), "{pulls:?}");
    assert!(pulls[0].open, "the rest unchanged");
    let missing = client.pull_body(&repo, 99).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
}
