//! What every test file shares: a fake GitHub and a client with fast timing.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use scrum_core::{Labels, RepoName, TaskId, Timestamp};
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_github::{GitHubClient, GitHubConfig, Timing};

/// Timing shrunk so retries and backoff take milliseconds.
pub fn fast_timing() -> Timing {
    Timing {
        request_timeout: Duration::from_millis(250),
        retries: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        max_rate_limit_wait: Duration::from_secs(5),
        secondary_default_wait: Duration::from_secs(1),
        write_spacing: Duration::ZERO,
        token_refresh_margin: Duration::from_secs(1),
    }
}

pub fn repos(names: &[&str]) -> Vec<RepoName> {
    names.iter().map(|r| r.parse().unwrap()).collect()
}

pub fn config(github: &FakeGitHub, names: &[&str]) -> GitHubConfig {
    GitHubConfig::new(github.token(), repos(names))
        .unwrap()
        .with_api_url(&github.url())
        .unwrap()
        .with_timing(fast_timing())
}

pub fn client_with_labels(github: &FakeGitHub, names: &[&str], labels: Labels) -> GitHubClient {
    GitHubClient::new(config(github, names).with_labels(labels).unwrap()).unwrap()
}

/// A fake with `names` added and a client for them (not yet checked).
pub async fn setup(names: &[&str]) -> (FakeGitHub, GitHubClient) {
    let github = FakeGitHub::start().await;
    for n in names {
        github.add_repo(n);
    }
    let client = GitHubClient::new(config(&github, names)).unwrap();
    (github, client)
}

/// Seeds `count` ready issues created one minute apart, oldest first.
pub fn seed_ready(github: &FakeGitHub, repo: &str, count: usize) -> Vec<TaskId> {
    (0..count)
        .map(|k| {
            github.add_issue(
                repo,
                NewIssue::new(&format!("Issue {k}"))
                    .body(&format!("Body {k}"))
                    .labels(&["ai-ready"])
                    .created_at(Timestamp(1_700_000_000_000 + k as i64 * 60_000)),
            )
        })
        .collect()
}

/// Requests whose path starts with `prefix`.
pub fn requests_to(github: &FakeGitHub, method: &str, prefix: &str) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .count()
}
