//! The IssueSource conformance suite on GitLab: a [`GitLabClient`] against the
//! fake GitLab, with retries shrunk to milliseconds. The suite names GitHub-style
//! repositories (`acme/widgets`); here they are the GitLab projects
//! `gitlab:acme/widgets`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use common::{api_project, config};
use scrum_core::conformance::source::{REPOS, SourceFixture, labels};
use scrum_core::{IssueSource, TaskId, Timestamp};
use scrum_gitlab::fake::{FakeGitLab, Fault, NewIssue, access};
use scrum_gitlab::{GitLabClient, Timing};

struct GitLabFixture {
    gitlab: FakeGitLab,
    client: Arc<GitLabClient>,
    next_branch: AtomicU64,
}

fn project(id: &TaskId) -> String {
    id.repo_name().path().to_string()
}

#[async_trait]
impl SourceFixture for GitLabFixture {
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
        self.gitlab.add_issue(repo, issue)
    }

    /// GitLab's merge requests are not issues and have numbers of their own: one
    /// is opened, and no issue id names it.
    async fn open_pull_request(&self, repo: &str, title: &str, _labels: &[&str]) -> Option<TaskId> {
        let n = self.next_branch.fetch_add(1, Ordering::SeqCst);
        self.gitlab
            .add_merge_request(repo, &format!("feature-{n}"), "main", title);
        None
    }

    async fn close_issue(&self, id: &TaskId) {
        self.gitlab.close_issue(id);
    }

    async fn set_labels(&self, id: &TaskId, labels: &[&str]) {
        self.gitlab.set_labels(id, labels);
    }

    async fn labels(&self, id: &TaskId) -> Vec<String> {
        self.gitlab.labels(id)
    }

    async fn comments(&self, id: &TaskId) -> Vec<String> {
        self.gitlab.comments(id)
    }

    async fn fail_next_listing(&self, repo: &str) {
        // GitLab is down for the listing's first try and every retry.
        let path = format!("{}/issues", api_project(repo));
        for _ in 0..=Timing::fast_for_tests().retries {
            self.gitlab.inject_for("GET", &path, Fault::Status(502));
        }
    }

    async fn label_as(&self, id: &TaskId, labels: &[&str], login: &str, may_approve: bool) {
        let level = if may_approve {
            access::DEVELOPER
        } else {
            access::REPORTER
        };
        self.gitlab.add_member(&project(id), login, level);
        self.gitlab.label_as(id, labels, login);
    }

    async fn edit_as(&self, id: &TaskId, body: &str, login: &str, may_approve: bool) {
        let level = if may_approve {
            access::MAINTAINER
        } else {
            access::GUEST
        };
        self.gitlab.add_member(&project(id), login, level);
        self.gitlab.edit_as(id, login, None, Some(body));
    }

    async fn add_blocked_by(&self, id: &TaskId, blocker: &TaskId) -> bool {
        self.gitlab.add_link_blocked_by(id, blocker);
        true
    }
}

async fn make() -> GitLabFixture {
    let gitlab = FakeGitLab::start().await;
    for repo in REPOS {
        gitlab.add_project(repo);
    }
    let client = GitLabClient::new(config(&gitlab, &REPOS).with_labels(labels()))
        .expect("a client for the fake");
    GitLabFixture {
        gitlab,
        client: Arc::new(client),
        next_branch: AtomicU64::new(1),
    }
}

scrum_core::source_conformance!(make);
