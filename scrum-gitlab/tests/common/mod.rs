//! What every test file shares: a fake GitLab and a client with fast timing.

#![allow(dead_code, unreachable_pub)]

use scrum_core::{Labels, RepoName};
use scrum_gitlab::fake::FakeGitLab;
use scrum_gitlab::{GitLabClient, GitLabConfig, Timing};

/// `gitlab:{path}` for each path.
pub fn projects(paths: &[&str]) -> Vec<RepoName> {
    paths
        .iter()
        .map(|p| format!("gitlab:{p}").parse().unwrap())
        .collect()
}

pub fn config(gitlab: &FakeGitLab, paths: &[&str]) -> GitLabConfig {
    GitLabConfig::new(&gitlab.url(), gitlab.token(), projects(paths))
        .unwrap()
        .with_timing(Timing::fast_for_tests())
}

pub fn client_with_labels(gitlab: &FakeGitLab, paths: &[&str], labels: Labels) -> GitLabClient {
    GitLabClient::new(config(gitlab, paths).with_labels(labels)).unwrap()
}

/// A fake with `paths` added and a client for them (not yet checked).
pub async fn setup(paths: &[&str]) -> (FakeGitLab, GitLabClient) {
    let gitlab = FakeGitLab::start().await;
    for p in paths {
        gitlab.add_project(p);
    }
    let client = GitLabClient::new(config(&gitlab, paths)).unwrap();
    (gitlab, client)
}

/// The API path of a project (its path URL-encoded), e.g.
/// `/api/v4/projects/group%2Fproject`.
pub fn api_project(path: &str) -> String {
    format!("/api/v4/projects/{}", path.replace('/', "%2F"))
}
