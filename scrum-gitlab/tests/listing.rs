//! Listing ready issues on GitLab: every page read, unchanged pages asked for
//! with their ETag (a 304 reuses them), rate limits and faults turned into
//! errors or retried, never into an empty backlog.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{api_project, setup};
use scrum_core::{ErrorKind, IssueSource, TaskId, Timestamp};
use scrum_gitlab::fake::{FakeGitLab, Fault, NewIssue};

const PROJECT: &str = "group/sub/widgets";

fn seed(gitlab: &FakeGitLab, count: usize) -> BTreeSet<TaskId> {
    (0..count)
        .map(|k| {
            let issue = NewIssue::new(&format!("Issue {k}"))
                .labels(&["ai-ready"])
                .created_at(Timestamp(1_700_000_000_000 + k as i64 * 60_000));
            gitlab.add_issue(PROJECT, issue)
        })
        .collect()
}

fn listing_requests(gitlab: &FakeGitLab) -> Vec<scrum_gitlab::fake::ServedRequest> {
    let prefix = format!("{}/issues?", api_project(PROJECT));
    gitlab
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&prefix))
        .collect()
}

#[tokio::test]
async fn a_backlog_of_three_pages_is_listed_whole_in_a_nested_group() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    let want = seed(&gitlab, 250);
    let got: BTreeSet<TaskId> = client
        .list_ready()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, want);
    assert!(got.iter().all(|id| id.repo() == "gitlab:group/sub/widgets"));
    let pages: Vec<String> = listing_requests(&gitlab)
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert!(pages[2].contains("page=3") && pages[2].contains("per_page=100"));
}

#[tokio::test]
async fn an_unchanged_listing_is_answered_304_and_a_change_is_seen() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    seed(&gitlab, 120);
    let first = client.list_ready().await.unwrap();
    gitlab.clear_requests();

    let again = client.list_ready().await.unwrap();
    assert_eq!(again, first);
    let served = listing_requests(&gitlab);
    assert_eq!(served.len(), 2, "{served:#?}");
    assert!(
        served
            .iter()
            .all(|r| r.status == 304 && r.if_none_match.is_some()),
        "{served:#?}"
    );

    let new = gitlab.add_issue(PROJECT, NewIssue::new("Late").labels(&["ai-ready"]));
    let later = client.list_ready().await.unwrap();
    assert_eq!(later.len(), 121);
    assert!(later.iter().any(|i| i.id == new && i.title == "Late"));
}

#[tokio::test]
async fn an_issue_awaiting_clarification_is_not_ready() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    let ready = gitlab.add_issue(PROJECT, NewIssue::new("Go").labels(&["ai-ready"]));
    gitlab.add_issue(
        PROJECT,
        NewIssue::new("Wait").labels(&["ai-ready", "needs-clarification"]),
    );
    let got: Vec<TaskId> = client
        .list_ready()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [ready]);
}

#[tokio::test]
async fn an_exhausted_rate_limit_is_rate_limited_with_when_to_retry() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    seed(&gitlab, 1);
    client.list_ready().await.unwrap();
    let (remaining, reset) = client
        .rate_limit()
        .expect("GitLab's rate-limit headers kept");
    assert!(remaining > 0 && reset > Timestamp(0));

    gitlab.set_rate_limit(0, Duration::from_secs(30));
    let err = client.list_ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    let after = err.retry_after().expect("a retry_after");
    assert!(
        after >= Duration::from_secs(1) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    assert_eq!(client.rate_limit().map(|r| r.0), Some(0));
}

#[tokio::test]
async fn a_429_names_its_retry_after() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    gitlab.inject(Fault::RateLimited {
        retry_after_secs: 7,
    });
    let err = client.list_ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_passing_outage_or_a_cut_answer_is_retried() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    let want = seed(&gitlab, 3);
    gitlab.inject(Fault::Status(502));
    gitlab.inject(Fault::TruncatedJson);
    let got: BTreeSet<TaskId> = client
        .list_ready()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_lasting_outage_fails_the_listing() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    seed(&gitlab, 3);
    for _ in 0..10 {
        gitlab.inject(Fault::Status(503));
    }
    let err = client.list_ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let gitlab = FakeGitLab::start().await;
    gitlab.add_project(PROJECT);
    let config =
        scrum_gitlab::GitLabConfig::new(&gitlab.url(), "glpat-wrong", common::projects(&[PROJECT]))
            .unwrap()
            .with_timing(scrum_gitlab::Timing::fast_for_tests());
    let client = scrum_gitlab::GitLabClient::new(config).unwrap();
    let err = client.list_ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.to_string().contains("glpat-wrong"), "{err}");
}
