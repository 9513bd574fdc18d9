//! The IssueSource conformance suite on GitHub: a [`GitHubClient`] against the fake
//! GitHub server, with retries and write spacing shrunk to milliseconds.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use common::{config, fast_timing};
use scrum_core::conformance::source::{REPOS, SourceFixture, labels};
use scrum_core::{IssueSource, TaskId, Timestamp};
use scrum_github::GitHubClient;
use scrum_github::fake::{FakeGitHub, Fault, NewIssue};

struct GitHubFixture {
    github: FakeGitHub,
    client: Arc<GitHubClient>,
    next_branch: AtomicU64,
}

#[async_trait]
impl SourceFixture for GitHubFixture {
    fn source(&self) -> Arc<dyn IssueSource> {
        self.client.clone()
    }

    async fn open_issue(
        &self,
        repo: &str,
        title: &str,
        labels: &[&str],
        created_at: Timestamp,
    ) -> TaskId {
        let issue = NewIssue::new(title).labels(labels).created_at(created_at);
        self.github.add_issue(repo, issue)
    }

    async fn open_pull_request(&self, repo: &str, title: &str, labels: &[&str]) -> Option<TaskId> {
        let branch = format!(
            "feature-{}",
            self.next_branch.fetch_add(1, Ordering::SeqCst)
        );
        let pull = NewIssue::new(title).labels(labels).pull_request(&branch);
        Some(self.github.add_issue(repo, pull))
    }

    async fn close_issue(&self, id: &TaskId) {
        self.github.close_issue(id);
    }

    async fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        self.github.set_labels(id, labels);
    }

    async fn labels(&self, id: &TaskId) -> Vec<String> {
        self.github.labels(id)
    }

    async fn comments(&self, id: &TaskId) -> Vec<String> {
        self.github.comments(id)
    }

    async fn fail_next_listing(&self, repo: &str) {
        // GitHub is down for the listing's first try and every retry.
        for _ in 0..=fast_timing().retries {
            self.github
                .inject_for("GET", &format!("/repos/{repo}/issues"), Fault::Status(502));
        }
    }

    async fn label_as(&self, id: &TaskId, labels: &[&str], login: &str, may_approve: bool) {
        let role = if may_approve { "write" } else { "read" };
        self.github.set_role(id.repo(), login, role);
        self.github.label_as(id, labels, login);
    }

    async fn edit_as(&self, id: &TaskId, body: &str, login: &str, may_approve: bool) {
        let role = if may_approve { "maintain" } else { "triage" };
        self.github.set_role(id.repo(), login, role);
        self.github.edit_as(id, login, None, Some(body));
    }

    async fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) -> bool {
        self.github.add_blocked_by(id, blocker);
        true
    }
}

async fn make() -> GitHubFixture {
    let github = FakeGitHub::start().await;
    for repo in REPOS {
        github.add_repo(repo);
    }
    let config = config(&github, &REPOS)
        .with_labels(labels())
        .expect("valid labels");
    let client = GitHubClient::new(config).expect("a client for the fake");
    GitHubFixture {
        github,
        client: Arc::new(client),
        next_branch: AtomicU64::new(1),
    }
}

scrum_core::source_conformance!(make);
