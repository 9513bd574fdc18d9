//! GitHub at its real latency: reads go out together up to the concurrency, writes
//! one at a time, a rate limit one request meets holds the others, and the trust of
//! many issues is read in a few GraphQL queries.

mod common;

use std::time::{Duration, Instant};

use common::*;
use scrum_core::{IssueSource, TaskId};
use scrum_github::GitHubClient;
use scrum_github::fake::{FakeGitHub, Fault, NewIssue};

const LATENCY: Duration = Duration::from_millis(150);

fn repo_names(n: usize) -> Vec<String> {
    (1..=n).map(|k| format!("acme/repo-{k}")).collect()
}

/// A fake with `n` repositories of one ready issue each, answering after
/// [`LATENCY`], and a client with `concurrency`.
async fn setup(n: usize, concurrency: usize) -> (FakeGitHub, GitHubClient, Vec<TaskId>) {
    let github = FakeGitHub::start().await;
    let names = repo_names(n);
    let mut ids = Vec::new();
    for name in &names {
        github.add_repo(name);
        ids.push(github.add_issue(name, NewIssue::new("Ready").labels(&["ai-ready"])));
    }
    github.set_latency(LATENCY);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let config = config(&github, &names).with_concurrency(concurrency);
    (github, GitHubClient::new(config).unwrap(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_out_together_up_to_the_concurrency() {
    let (_github, together, _) = setup(6, 8).await;
    let started = Instant::now();
    assert_eq!(together.list_ready().await.unwrap().len(), 6);
    let elapsed = started.elapsed();
    assert!(elapsed < LATENCY * 3, "six listings took {elapsed:?}");

    let (_github, one_by_one, _) = setup(6, 1).await;
    let started = Instant::now();
    assert_eq!(one_by_one.list_ready().await.unwrap().len(), 6);
    assert!(started.elapsed() >= LATENCY * 6, "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_one_at_a_time_whatever_the_concurrency() {
    let (github, client, ids) = setup(4, 8).await;
    let label = ["ai-in-progress".to_string()];
    // The labels exist: each write is one request.
    for id in &ids {
        client.add_labels(id, &label).await.unwrap();
    }
    github.clear_requests();
    let started = Instant::now();
    let writes = ids
        .iter()
        .map(|id| client.remove_label(id, "ai-in-progress"));
    for result in futures::future::join_all(writes).await {
        result.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= LATENCY * 4,
        "four writes overlapped: {elapsed:?}"
    );
    assert_eq!(github.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_one_request_meets_holds_the_others() {
    let (github, client, ids) = setup(2, 8).await;
    let first = format!("/repos/{}/issues/{}", ids[0].repo(), ids[0].number());
    github.inject_for(
        "GET",
        &first,
        Fault::SecondaryRateLimit {
            retry_after_secs: 2,
        },
    );
    let c = client.clone();
    let id = ids[0].clone();
    let limited = tokio::spawn(async move { c.issue_state(&id).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !github.requests().iter().any(|r| r.status == 403) {
        assert!(Instant::now() < deadline, "the limit was never met");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    client.issue_state(&ids[1]).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "sent during the limit: {waited:?}"
    );
    limited.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trust_of_many_issues_is_read_in_a_few_queries() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/a");
    github.add_repo("acme/b");
    let mut ids = Vec::new();
    for n in 0..120 {
        let repo = if n % 2 == 0 { "acme/a" } else { "acme/b" };
        ids.push(github.add_issue(repo, NewIssue::new("Ready").labels(&["ai-ready"])));
    }
    github.set_role("acme/b", "stranger", "read");
    github.edit_as(&ids[1], "stranger", None, Some("Other words."));
    let client = GitHubClient::new(config(&github, &["acme/a", "acme/b"])).unwrap();

    let answers = client.provenance(&ids, false).await.unwrap();

    assert_eq!(answers.len(), 120);
    for (n, answer) in answers.iter().enumerate() {
        let p = answer.as_ref().unwrap();
        assert!(p.labelled_by.may_approve && p.still_ready, "{n}: {p:?}");
        let stranger = p
            .edited_by
            .as_ref()
            .map(|e| (e.login.as_str(), e.may_approve));
        let expected = (n == 1).then_some(("stranger", false));
        assert_eq!(stranger, expected, "{n}");
    }
    let log = github.requests();
    let queries = log.iter().filter(|r| r.path == "/graphql").count();
    assert_eq!(queries, 3, "120 issues, 50 a query");
    let permissions = log
        .iter()
        .filter(|r| r.path.contains("/permission"))
        .count();
    assert_eq!(
        permissions, 3,
        "the maintainer in each repository, and the stranger"
    );
    assert_eq!(client.points_spent(), (3, github.graphql_points_spent()));
    assert_eq!(github.graphql_points_spent(), 3);
}
