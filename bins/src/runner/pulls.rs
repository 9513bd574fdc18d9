//! Opening pull requests: the [`PullRequests`] seam, and its GitHub implementation.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::{RepoName, Result, TaskId};
use scrum_github::{GitHubClient, GitHubConfig};

use super::secret::Secret;

/// Opens the pull request for a task's branch, or returns the one already open.
#[async_trait]
pub trait PullRequests: Send + Sync + 'static {
    /// The pull request's URL.
    async fn open(&self, issue: &TaskId, branch: &str, title: &str, body: &str) -> Result<String>;
}

/// [`PullRequests`] on GitHub's API (`GITHUB_API_URL`), one client per repository.
pub struct GitHubPullRequests {
    api_url: String,
    token: Secret,
    clients: Mutex<HashMap<RepoName, GitHubClient>>,
}

impl GitHubPullRequests {
    /// Pull requests opened with `token` against the API at `api_url`.
    pub fn new(api_url: &str, token: Secret) -> GitHubPullRequests {
        GitHubPullRequests {
            api_url: api_url.to_string(),
            token,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, repo: &RepoName) -> Result<GitHubClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(repo) {
            return Ok(c.clone());
        }
        let config = GitHubConfig::new(self.token.expose(), vec![repo.clone()])?
            .with_api_url(&self.api_url)?;
        let client = GitHubClient::new(config)?;
        clients.insert(repo.clone(), client.clone());
        Ok(client)
    }
}

#[async_trait]
impl PullRequests for GitHubPullRequests {
    async fn open(&self, issue: &TaskId, branch: &str, title: &str, body: &str) -> Result<String> {
        let client = self.client(&issue.repo_name())?;
        let pr = client.open_pull_request(issue, branch, title, body).await?;
        Ok(pr.html_url)
    }
}
