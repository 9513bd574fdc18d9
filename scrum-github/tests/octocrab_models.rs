//! The fake answers in GitHub's JSON shapes: octocrab's own typed API parses them.

mod common;

use scrum_github::fake::{FakeGitHub, NewIssue};

#[tokio::test]
async fn octocrabs_models_deserialize_the_fakes_answers() {
    let github = FakeGitHub::start().await;
    github.add_repo_with_default_branch("acme/widgets", "trunk");
    let issue = github.add_issue(
        "acme/widgets",
        NewIssue::new("An issue")
            .body("text")
            .labels(&["ai-ready", "bug"]),
    );
    github.add_comment(&issue, "a comment");
    github.add_issue(
        "acme/widgets",
        NewIssue::new("A PR").pull_request("feature/x"),
    );
    let octo = octocrab::Octocrab::builder()
        .base_uri(github.url())
        .unwrap()
        .personal_token(github.token().to_string())
        .build()
        .unwrap();

    let repo = octo.repos("acme", "widgets").get().await.unwrap();
    assert_eq!(repo.default_branch.as_deref(), Some("trunk"));
    assert_eq!(repo.full_name.as_deref(), Some("acme/widgets"));

    let page = octo
        .issues("acme", "widgets")
        .list()
        .labels(&["ai-ready".to_string()])
        .send()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].title, "An issue");
    assert_eq!(page.items[0].labels.len(), 2);

    let all = octo.issues("acme", "widgets").list().send().await.unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.items.iter().any(|i| i.pull_request.is_some()));

    let one = octo
        .issues("acme", "widgets")
        .get(issue.number())
        .await
        .unwrap();
    assert_eq!(one.body.as_deref(), Some("text"));

    let comments = octo
        .issues("acme", "widgets")
        .list_comments(issue.number())
        .send()
        .await
        .unwrap();
    assert_eq!(comments.items[0].body.as_deref(), Some("a comment"));

    let pulls = octo.pulls("acme", "widgets").list().send().await.unwrap();
    assert_eq!(pulls.items.len(), 1);
    assert_eq!(pulls.items[0].head.ref_field, "feature/x");
    assert_eq!(pulls.items[0].base.ref_field, "trunk");
}

#[tokio::test]
async fn octocrab_follows_the_fakes_link_paging() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    common::seed_ready(&github, "acme/widgets", 75);
    let octo = octocrab::Octocrab::builder()
        .base_uri(github.url())
        .unwrap()
        .personal_token(github.token().to_string())
        .build()
        .unwrap();

    let first = octo
        .issues("acme", "widgets")
        .list()
        .per_page(30)
        .send()
        .await
        .unwrap();
    let all = octo.all_pages(first).await.unwrap();

    assert_eq!(all.len(), 75);
}
