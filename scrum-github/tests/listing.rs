//! Listing ready issues: every page, pull requests out, all labels required, every
//! repository, and conditional requests that make an unchanged poll free.

mod common;

use common::*;
use scrum_core::{ErrorKind, IssueSource, Labels, Timestamp};
use scrum_github::fake::{Fault, NewIssue};

#[tokio::test]
async fn reads_250_ready_issues_over_3_pages_with_their_creation_times() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let ids = seed_ready(&github, "acme/widgets", 250);
    github.add_issue("acme/widgets", NewIssue::new("not ready"));
    let closed = github.add_issue(
        "acme/widgets",
        NewIssue::new("closed").labels(&["ai-ready"]),
    );
    github.close_issue(&closed);

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 250);
    let got: Vec<_> = ready.iter().map(|i| i.id.clone()).collect();
    assert_eq!(got, ids, "every ready issue, oldest first");
    assert_eq!(ready[0].created_at, Timestamp(1_700_000_000_000));
    assert_eq!(
        ready[249].created_at,
        Timestamp(1_700_000_000_000 + 249 * 60_000)
    );
    assert_eq!(ready[7].title, "Issue 7");
    assert_eq!(ready[7].body, "Body 7");
    assert_eq!(ready[7].labels, ["ai-ready"]);
    assert_eq!(requests_to(&github, "GET", "/repos/acme/widgets/issues"), 3);
    assert_eq!(client.last_poll().requests, 3);
    assert_eq!(client.last_poll().issues, 250);
}

#[tokio::test]
async fn labelled_pull_requests_are_left_out() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let issue = github.add_issue("acme/widgets", NewIssue::new("issue").labels(&["ai-ready"]));
    github.add_issue(
        "acme/widgets",
        NewIssue::new("a pull request")
            .labels(&["ai-ready"])
            .pull_request("feature/x"),
    );

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.iter().map(|i| &i.id).collect::<Vec<_>>(), [&issue]);
}

#[tokio::test]
async fn an_issue_must_carry_every_ready_label() {
    let github = scrum_github::fake::FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let both = github.add_issue(
        "acme/widgets",
        NewIssue::new("both").labels(&["AI-Ready", "backend", "bug"]),
    );
    github.add_issue("acme/widgets", NewIssue::new("one").labels(&["ai-ready"]));
    github.add_issue("acme/widgets", NewIssue::new("other").labels(&["backend"]));
    let labels = Labels {
        ready: scrum_github::parse_ready_labels("ai-ready,backend"),
        ..Labels::default()
    };
    let client = client_with_labels(&github, &["acme/widgets"], labels);

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.iter().map(|i| &i.id).collect::<Vec<_>>(), [&both]);
}

#[tokio::test]
async fn ready_labels_with_spaces_and_colons_are_matched() {
    let github = scrum_github::fake::FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let id = github.add_issue(
        "acme/widgets",
        NewIssue::new("x").labels(&["status: ready for AI", "bug"]),
    );
    github.add_issue(
        "acme/widgets",
        NewIssue::new("y").labels(&["status: ready"]),
    );
    let labels = Labels {
        ready: vec!["status: ready for AI".to_string()],
        ..Labels::default()
    };
    let client = client_with_labels(&github, &["acme/widgets"], labels);

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.iter().map(|i| &i.id).collect::<Vec<_>>(), [&id]);
}

#[tokio::test]
async fn every_configured_repository_is_listed_with_its_own_ids() {
    let (github, client) = setup(&["acme/widgets", "acme/gadgets"]).await;
    let a = github.add_issue("acme/widgets", NewIssue::new("w1").labels(&["ai-ready"]));
    let b = github.add_issue("acme/gadgets", NewIssue::new("g1").labels(&["ai-ready"]));
    assert_eq!(a.number(), b.number());

    let ready = client.list_ready().await.unwrap();

    let ids: Vec<String> = ready.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(ids, ["acme/widgets#1", "acme/gadgets#1"]);
}

#[tokio::test]
async fn an_unchanged_repository_costs_no_rate_limit_points() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 250);
    let first = client.list_ready().await.unwrap();
    let after_first = github.points_spent();
    assert_eq!(after_first, 3, "one point per page on the first poll");
    github.clear_requests();

    let second = client.list_ready().await.unwrap();
    let third = client.list_ready().await.unwrap();

    assert_eq!(second, first);
    assert_eq!(third, first);
    assert_eq!(github.points_spent(), after_first, "304s are free");
    let served = github.requests();
    assert_eq!(served.len(), 6, "3 API calls per poll (one per page)");
    assert!(
        served
            .iter()
            .all(|r| r.status == 304 && r.if_none_match.is_some())
    );
    let stats = client.last_poll();
    assert_eq!((stats.requests, stats.not_modified), (3, 3));
    eprintln!(
        "steady-state poll of 250 ready issues: {} API calls, {} answered 304, {} rate-limit points",
        stats.requests,
        stats.not_modified,
        github.points_spent() - after_first
    );
}

#[tokio::test]
async fn a_change_on_the_last_page_is_seen_and_costs_one_point() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let ids = seed_ready(&github, "acme/widgets", 250);
    client.list_ready().await.unwrap();
    let before = github.points_spent();

    github.set_labels(&ids[240], &["question"]);
    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 249);
    assert!(!ready.iter().any(|i| i.id == ids[240]));
    assert_eq!(
        github.points_spent() - before,
        1,
        "only the changed page is paid for"
    );

    let new = github.add_issue(
        "acme/widgets",
        NewIssue::new("new")
            .labels(&["ai-ready"])
            .created_at(Timestamp(1_800_000_000_000)),
    );
    let ready = client.list_ready().await.unwrap();
    assert_eq!(ready.len(), 250);
    assert_eq!(ready.last().unwrap().id, new);
}

/// A full last page (exactly 100 issues) has no next link, and GitHub answers it
/// 304 when a 101st issue arrives (its body is unchanged): the listing must still
/// look past it.
#[tokio::test]
async fn an_issue_past_a_full_last_page_is_seen() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 100);
    assert_eq!(client.list_ready().await.unwrap().len(), 100);

    let new = github.add_issue(
        "acme/widgets",
        NewIssue::new("the 101st")
            .labels(&["ai-ready"])
            .created_at(Timestamp(1_800_000_000_000)),
    );
    let ready = client.list_ready().await.unwrap();
    assert_eq!(ready.len(), 101);
    assert_eq!(ready.last().unwrap().id, new);
    // Unchanged since: both pages are asked for conditionally, and cost nothing.
    let before = github.points_spent();
    assert_eq!(client.list_ready().await.unwrap().len(), 101);
    assert_eq!(github.points_spent(), before);
}

#[tokio::test]
async fn a_closed_issue_on_the_first_page_drops_out() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let ids = seed_ready(&github, "acme/widgets", 120);
    client.list_ready().await.unwrap();

    github.close_issue(&ids[3]);
    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 119);
    assert!(!ready.iter().any(|i| i.id == ids[3]));
}

#[tokio::test]
async fn a_failing_poll_is_an_error_never_an_empty_backlog() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 3);
    github.inject_times(Fault::Status(502), 4);

    let err = client.list_ready().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    assert!(err.to_string().contains("acme/widgets"), "{err}");
    assert_eq!(github.requests().len(), 4, "one try and three retries");
    let status = client.status();
    assert!(!status.is_connected());
    assert!(
        status.degraded_reason().unwrap().contains("502"),
        "{status:?}"
    );

    // Once GitHub recovers, the backlog is there again and health with it.
    assert_eq!(client.list_ready().await.unwrap().len(), 3);
    assert!(client.status().is_connected());
}
