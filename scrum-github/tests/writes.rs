//! Writing back: labels (created once, with a colour), comments with hidden markers
//! posted once, issue state for reconciling, closing.

mod common;

use common::*;
use scrum_core::{Commented, ErrorKind, IssueSource};
use scrum_github::fake::{Fault, NewIssue};

#[tokio::test]
async fn a_missing_label_is_created_once_with_a_colour() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let a = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));
    let b = github.add_issue("acme/widgets", NewIssue::new("b").labels(&["ai-ready"]));
    assert_eq!(github.label_color("acme/widgets", "ai-in-progress"), None);

    let label = vec!["ai-in-progress".to_string()];
    client.add_labels(&a, &label).await.unwrap();
    client.add_labels(&b, &label).await.unwrap();

    assert_eq!(github.labels(&a), ["ai-ready", "ai-in-progress"]);
    assert_eq!(github.labels(&b), ["ai-ready", "ai-in-progress"]);
    assert_eq!(
        github
            .label_color("acme/widgets", "ai-in-progress")
            .as_deref(),
        Some("fbca04")
    );
    assert_eq!(
        requests_to(&github, "POST", "/repos/acme/widgets/labels"),
        1
    );
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/labels/"),
        1
    );
}

#[tokio::test]
async fn a_label_seen_on_an_issue_is_not_looked_up_again() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let a = github.add_issue(
        "acme/widgets",
        NewIssue::new("a").labels(&["ai-ready", "ai-failed"]),
    );
    let b = github.add_issue("acme/widgets", NewIssue::new("b").labels(&["ai-ready"]));
    client.list_ready().await.unwrap();
    github.clear_requests();

    client
        .add_labels(&b, &["ai-failed".to_string()])
        .await
        .unwrap();

    assert_eq!(github.labels(&b), ["ai-ready", "ai-failed"]);
    assert_eq!(github.labels(&a), ["ai-ready", "ai-failed"]);
    assert_eq!(github.requests().len(), 1, "only the add itself");
}

#[tokio::test]
async fn adding_a_label_twice_changes_nothing() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));
    let labels = vec!["ai-completed".to_string()];

    client.add_labels(&id, &labels).await.unwrap();
    client.add_labels(&id, &labels).await.unwrap();

    assert_eq!(github.labels(&id), ["ai-ready", "ai-completed"]);
    assert_eq!(
        github
            .label_color("acme/widgets", "ai-completed")
            .as_deref(),
        Some("0e8a16")
    );
}

#[tokio::test]
async fn removing_a_label_works_and_removing_an_absent_one_is_fine() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue(
        "acme/widgets",
        NewIssue::new("a").labels(&["ai-ready", "priority: high"]),
    );

    client.remove_label(&id, "priority: high").await.unwrap();
    client.remove_label(&id, "ai-in-progress").await.unwrap();
    client.remove_label(&id, "priority: high").await.unwrap();

    assert_eq!(github.labels(&id), ["ai-ready"]);
}

#[tokio::test]
async fn removing_a_label_of_an_unknown_issue_is_not_found() {
    let (_github, client) = setup(&["acme/widgets"]).await;
    let err = client
        .remove_label(&"acme/widgets#99".parse().unwrap(), "ai-ready")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("acme/widgets#99"), "{err}");
}

#[tokio::test]
async fn a_marked_comment_is_posted_once_even_behind_a_page_of_comments() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a"));
    for k in 0..120 {
        github.add_comment(&id, &format!("person comment {k}"));
    }

    let first = client
        .comment(&id, "scrum:acme/widgets#1:run1:completed", "Done: PR #5")
        .await
        .unwrap();
    let second = client
        .comment(&id, "scrum:acme/widgets#1:run1:completed", "Done: PR #5")
        .await
        .unwrap();
    let other = client
        .comment(&id, "scrum:acme/widgets#1:run2:completed", "Done again")
        .await
        .unwrap();

    assert_eq!(
        (first, second, other),
        (
            Commented::Posted,
            Commented::AlreadyPresent,
            Commented::Posted
        )
    );
    let comments = github.comments(&id);
    assert_eq!(comments.len(), 122);
    assert!(comments[120].starts_with("Done: PR #5"));
    assert!(comments[120].ends_with("<!-- scrum:acme/widgets#1:run1:completed -->"));
}

#[tokio::test]
async fn a_marker_that_could_break_out_of_its_html_comment_is_refused() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a"));
    let err = client.comment(&id, "x --> <b>", "body").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(github.requests().is_empty());
}

#[tokio::test]
async fn issue_state_follows_what_people_do_and_is_free_when_unchanged() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));

    let state = client.issue_state(&id).await.unwrap();
    assert!(state.open);
    assert_eq!(state.labels, ["ai-ready"]);

    let points = github.points_spent();
    assert_eq!(client.issue_state(&id).await.unwrap(), state);
    assert_eq!(github.points_spent(), points, "unchanged: answered 304");

    github.set_labels(&id, &["question"]);
    github.close_issue(&id);
    let state = client.issue_state(&id).await.unwrap();
    assert!(!state.open);
    assert_eq!(state.labels, ["question"]);

    let err = client
        .issue_state(&"acme/widgets#42".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn close_issue_closes_it() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a"));

    client.close_issue(&id).await.unwrap();
    client.close_issue(&id).await.unwrap();

    assert_eq!(github.is_open(&id), Some(false));
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_is_not_posted_twice() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a"));
    github.inject_for(
        "POST",
        "/repos/acme/widgets/issues/1/comments",
        Fault::LostAnswer,
    );

    let outcome = client
        .comment(&id, "scrum:run1:failed", "Failed")
        .await
        .unwrap();

    assert_eq!(
        outcome,
        Commented::AlreadyPresent,
        "found on the second look"
    );
    assert_eq!(github.comments(&id).len(), 1);
}

#[tokio::test]
async fn a_comment_refused_with_a_server_error_is_posted_on_retry() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a"));
    github.inject_for(
        "POST",
        "/repos/acme/widgets/issues/1/comments",
        Fault::Status(500),
    );

    let outcome = client
        .comment(&id, "scrum:run1:failed", "Failed")
        .await
        .unwrap();

    assert_eq!(outcome, Commented::Posted);
    assert_eq!(github.comments(&id).len(), 1);
    assert_eq!(
        requests_to(&github, "POST", "/repos/acme/widgets/issues/1/comments"),
        2
    );
}

#[tokio::test]
async fn labels_whose_answer_was_lost_are_added_once() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));
    github.inject_for(
        "POST",
        "/repos/acme/widgets/issues/1/labels",
        Fault::LostAnswer,
    );

    client
        .add_labels(&id, &["ai-in-progress".to_string()])
        .await
        .unwrap();

    assert_eq!(github.labels(&id), ["ai-ready", "ai-in-progress"]);
}

#[tokio::test]
async fn writes_are_spaced_as_github_asks() {
    let (github, _) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));
    let spacing = std::time::Duration::from_millis(150);
    let config = config(&github, &["acme/widgets"]).with_timing(scrum_github::Timing {
        write_spacing: spacing,
        ..fast_timing()
    });
    let client = scrum_github::GitHubClient::new(config).unwrap();
    client.list_ready().await.unwrap();

    let started = std::time::Instant::now();
    for label in ["a", "b", "c"] {
        client.remove_label(&id, label).await.unwrap();
    }

    assert!(started.elapsed() >= spacing * 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_read_never_waits_for_a_writes_spacing() {
    let (github, _) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", NewIssue::new("a").labels(&["ai-ready"]));
    let spacing = std::time::Duration::from_secs(2);
    let config = config(&github, &["acme/widgets"]).with_timing(scrum_github::Timing {
        write_spacing: spacing,
        ..fast_timing()
    });
    let client = scrum_github::GitHubClient::new(config).unwrap();
    client.remove_label(&id, "a").await.unwrap();

    // The next write waits out the spacing; a read sent meanwhile goes first.
    let writer = client.clone();
    let w = id.clone();
    let write = tokio::spawn(async move {
        writer.remove_label(&w, "b").await.unwrap();
        std::time::Instant::now()
    });
    let read_started = std::time::Instant::now();
    client.list_ready().await.unwrap();
    let read_done = std::time::Instant::now();
    let write_done = write.await.unwrap();
    assert!(read_done < write_done, "the read waited for the write");
    assert!(
        read_done - read_started < spacing / 2,
        "{:?}",
        read_done - read_started
    );
}
