//! The fake GitHub itself: what it checks, counts and logs, as other crates' tests
//! rely on it.

use std::time::Duration;

use scrum_github::fake::{FakeGitHub, Fault, NewIssue};

fn octo(github: &FakeGitHub, token: Option<&str>) -> octocrab::Octocrab {
    // No retries: each request here must reach the fake exactly once.
    let b = octocrab::Octocrab::builder()
        .base_uri(github.url())
        .unwrap()
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None);
    match token {
        Some(t) => b.personal_token(t.to_string()).build().unwrap(),
        None => b.build().unwrap(),
    }
}

async fn get(octo: &octocrab::Octocrab, path: &str) -> (u16, http::HeaderMap, String) {
    let r = octo._get(path).await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, octo.body_to_string(r).await.unwrap())
}

#[tokio::test]
async fn requests_without_the_token_are_refused_and_cost_nothing() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");

    let (anonymous, _, body) = get(&octo(&github, None), "/repos/acme/widgets").await;
    let (wrong, _, _) = get(&octo(&github, Some("nope")), "/repos/acme/widgets").await;
    let (right, headers, _) =
        get(&octo(&github, Some(github.token())), "/repos/acme/widgets").await;

    assert_eq!((anonymous, wrong, right), (401, 401, 200));
    assert!(body.contains("Requires authentication"));
    assert_eq!(github.points_spent(), 1);
    assert_eq!(headers["x-ratelimit-remaining"], "4999");
    assert!(headers.contains_key("x-ratelimit-reset"));
    assert!(headers["etag"].to_str().unwrap().starts_with("W/\""));
}

#[tokio::test]
async fn pages_carry_link_headers_and_etags_that_change_with_the_content() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let ids: Vec<_> = (0..5)
        .map(|k| github.add_issue("acme/widgets", NewIssue::new(&format!("i{k}"))))
        .collect();
    let o = octo(&github, Some(github.token()));

    let (_, h1, body) = get(&o, "/repos/acme/widgets/issues?per_page=2&direction=asc").await;
    let link = h1["link"].to_str().unwrap();
    assert!(
        link.contains("page=2") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("page=3") && link.contains("rel=\"last\""),
        "{link}"
    );
    assert!(body.contains("\"i0\"") && body.contains("\"i1\"") && !body.contains("\"i2\""));

    let (_, h3, _) = get(
        &o,
        "/repos/acme/widgets/issues?per_page=2&direction=asc&page=3",
    )
    .await;
    assert!(!h3["link"].to_str().unwrap().contains("rel=\"next\""));

    github.set_labels(&ids[0], &["bug"]);
    let (_, h1b, _) = get(&o, "/repos/acme/widgets/issues?per_page=2&direction=asc").await;
    assert_ne!(h1["etag"], h1b["etag"]);
}

#[tokio::test]
async fn faults_apply_in_order_and_aimed_ones_wait_for_their_request() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let o = octo(&github, Some(github.token()));
    github.inject_for("GET", "/repos/acme/widgets/pulls", Fault::Status(503));
    github.inject(Fault::SecondaryRateLimit {
        retry_after_secs: 7,
    });
    github.inject(Fault::Status(500));

    let (a, headers, _) = get(&o, "/repos/acme/widgets").await;
    let (b, _, _) = get(&o, "/repos/acme/widgets").await;
    let (c, _, _) = get(&o, "/repos/acme/widgets").await;
    let (d, _, _) = get(&o, "/repos/acme/widgets/pulls").await;
    let (e, _, _) = get(&o, "/repos/acme/widgets/pulls").await;

    assert_eq!((a, b, c, d, e), (403, 500, 200, 503, 200));
    assert_eq!(headers["retry-after"], "7");
    let log: Vec<(String, u16, u64)> = github
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status, r.points))
        .collect();
    assert_eq!(log[0], ("/repos/acme/widgets".to_string(), 403, 0));
    assert_eq!(github.points_spent(), 2, "injected errors are free");
}

#[tokio::test]
async fn an_exhausted_rate_limit_refuses_until_the_reset() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let o = octo(&github, Some(github.token()));
    github.set_rate_limit(1, Duration::from_secs(3600));

    let (first, _, _) = get(&o, "/repos/acme/widgets").await;
    let (second, headers, body) = get(&o, "/repos/acme/widgets").await;

    assert_eq!((first, second), (200, 403));
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(body.contains("API rate limit exceeded"));
}

#[tokio::test]
async fn people_can_close_reopen_relabel_and_comment() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let id = github.add_issue("acme/widgets", NewIssue::new("x").labels(&["ai-ready"]));

    github.close_issue(&id);
    assert_eq!(github.is_open(&id), Some(false));
    github.reopen_issue(&id);
    github.set_labels(&id, &["ai-ready", "priority:high"]);
    github.add_comment(&id, "hello");

    let issue = github.issue(&id).unwrap();
    assert!(issue.open);
    assert_eq!(issue.labels, ["ai-ready", "priority:high"]);
    let comments: Vec<(&str, &str)> = issue
        .comments
        .iter()
        .map(|c| (c.author.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(comments, [("octo-fake", "hello")]);
    assert_eq!(github.is_open(&"acme/widgets#9".parse().unwrap()), None);
}
