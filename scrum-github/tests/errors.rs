//! Errors classified once: a refused token and an unknown repository are clear
//! start-up errors, 5xx, timeouts and cut-short answers are retried, rate limits are
//! waited out while health says why.

mod common;

use std::time::{Duration, Instant};

use common::*;
use scrum_core::{ErrorKind, IssueSource};
use scrum_github::fake::{FakeGitHub, Fault};
use scrum_github::{GitHubClient, GitHubConfig, Health};

#[tokio::test]
async fn a_refused_token_is_a_start_up_error_that_names_github_token() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let config = GitHubConfig::new("ghp_wrongwrongwrongwrongwrong", repos(&["acme/widgets"]))
        .unwrap()
        .with_api_url(&github.url())
        .unwrap()
        .with_timing(fast_timing());

    let err = GitHubClient::connect(config).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("GITHUB_TOKEN"), "{text}");
    assert!(!text.contains("ghp_wrong"), "the token leaked: {text}");
    assert_eq!(github.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn an_unknown_repository_is_a_start_up_error_that_names_it() {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");

    let err = GitHubClient::connect(config(&github, &["acme/widgets", "acme/missing"]))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("acme/missing"), "{err}");
}

#[tokio::test]
async fn config_errors_name_the_variable_and_debug_hides_the_token() {
    let e = GitHubConfig::new(" ", repos(&["acme/widgets"])).unwrap_err();
    assert!(e.to_string().contains("GITHUB_TOKEN"), "{e}");
    let e = GitHubConfig::new("tok", vec![]).unwrap_err();
    assert!(e.to_string().contains("GITHUB_REPO"), "{e}");
    let e = scrum_github::parse_repos("GITHUB_REPOS", "acme/ok, not-a-repo").unwrap_err();
    assert!(e.to_string().contains("GITHUB_REPOS"), "{e}");
    let config = GitHubConfig::new("ghp_secretsecretsecret", repos(&["acme/widgets"])).unwrap();
    let e = config
        .clone()
        .with_api_url("ftp://example.com")
        .unwrap_err();
    assert!(e.to_string().contains("GITHUB_API_URL"), "{e}");
    assert!(!format!("{config:?}").contains("ghp_secret"));
    assert_eq!(config.api_url, "https://api.github.com");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 2);
    github.inject(Fault::Status(500));
    github.inject(Fault::Status(503));

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 2);
    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 503, 200]);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 2);
    github.inject(Fault::Delay(Duration::from_secs(3)));

    let started = Instant::now();
    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the client gave up waiting"
    );
    assert_eq!(
        requests_to(&github, "GET", "/repos/acme/widgets/issues"),
        1,
        "only the retry was served so far"
    );
}

#[tokio::test]
async fn timeouts_to_the_end_fail_with_timeout() {
    let (github, client) = setup(&["acme/widgets"]).await;
    github.inject_times(Fault::Delay(Duration::from_secs(3)), 4);

    let err = client.list_ready().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(client.status().degraded_reason().is_some());
}

#[tokio::test]
async fn a_truncated_answer_is_retried_not_read_as_empty() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 5);
    github.inject(Fault::TruncatedJson);

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 5);
    assert_eq!(requests_to(&github, "GET", "/repos/acme/widgets/issues"), 2);
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out_while_health_says_why() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 2);
    github.inject(Fault::SecondaryRateLimit {
        retry_after_secs: 1,
    });
    let mut status = client.subscribe_status();

    let started = Instant::now();
    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.list_ready().await }
    });
    let seen = status
        .wait_for(|s| matches!(s.health, Health::Degraded(_)))
        .await
        .unwrap()
        .clone();
    let ready = poll.await.unwrap().unwrap();

    assert!(
        seen.degraded_reason()
            .unwrap()
            .contains("secondary rate limit"),
        "{seen:?}"
    );
    assert!(seen.waiting_until.is_some());
    assert_eq!(ready.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after was honoured"
    );
    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 200], "no request during the wait");
    assert!(client.status().is_connected());
}

#[tokio::test]
async fn a_429_without_retry_after_waits_the_default_secondary_wait() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 1);
    github.inject(Fault::Status(429));

    let started = Instant::now();
    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 1);
    assert!(started.elapsed() >= fast_timing().secondary_default_wait);
    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn an_exhausted_primary_limit_is_waited_out_until_the_reset() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 2);
    github.set_rate_limit(0, Duration::from_secs(1));

    let ready = client.list_ready().await.unwrap();

    assert_eq!(ready.len(), 2);
    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [403, 200],
        "one refused request, then one after the reset"
    );
    assert_eq!(client.status().rate_limit_remaining, Some(4999));
}

#[tokio::test]
async fn the_last_point_spent_makes_the_next_call_wait_instead_of_being_refused() {
    let (github, client) = setup(&["acme/widgets"]).await;
    seed_ready(&github, "acme/widgets", 1);
    github.set_rate_limit(1, Duration::from_secs(1));

    client.list_ready().await.unwrap();
    let id = "acme/widgets#1".parse().unwrap();
    client.issue_state(&id).await.unwrap();

    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200],
        "no request was sent while no point remained"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_patience_fails_with_retry_after() {
    let (github, client) = setup(&["acme/widgets"]).await;
    github.set_rate_limit(0, Duration::from_secs(3600));

    let err = client.list_ready().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.retry_after().unwrap() > Duration::from_secs(3000));
    assert!(
        client
            .status()
            .degraded_reason()
            .unwrap()
            .contains("rate limit")
    );
    // Known exhausted: the next call waits or fails without sending anything.
    let err = client.list_ready().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(github.requests().len(), 1);
}

#[tokio::test]
async fn a_forbidden_answer_is_not_retried() {
    let (github, client) = setup(&["acme/widgets"]).await;
    let id = github.add_issue("acme/widgets", scrum_github::fake::NewIssue::new("x"));
    github.inject(Fault::Status(403));

    let err = client.remove_label(&id, "ai-ready").await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(err.to_string().contains("GITHUB_TOKEN"), "{err}");
    assert_eq!(github.requests().len(), 1);
}

#[tokio::test]
async fn health_is_unknown_until_github_answers() {
    let (github, client) = setup(&["acme/widgets"]).await;
    assert_eq!(client.status().health, Health::Unknown);
    client.check().await.unwrap();
    let status = client.status();
    assert!(status.is_connected());
    assert_eq!(status.rate_limit_remaining, Some(4999));
    assert_eq!(github.points_spent(), 1);
}
