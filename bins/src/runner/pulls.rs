//! Opening pull requests: the [`PullRequests`] seam, and its GitHub implementation.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::{Error, RepoName, RepoToken, Result, TaskId};
use scrum_github::{GitHubClient, GitHubConfig};

use super::secret::Secret;

/// Opens the pull request for a task's branch, or returns the one already open.
#[async_trait]
pub trait PullRequests: Send + Sync + 'static {
    /// The pull request's URL. `token`, when the assignment carried one (a GitHub
    /// App's token scoped to the repository), is used instead of the worker's own.
    async fn open(
        &self,
        issue: &TaskId,
        branch: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String>;
}

/// [`PullRequests`] on GitHub's API (`GITHUB_API_URL`), one client per repository
/// for the worker's own token, a new one for each token an assignment carries.
pub struct GitHubPullRequests {
    api_url: String,
    token: Option<Secret>,
    clients: Mutex<HashMap<RepoName, GitHubClient>>,
}

impl GitHubPullRequests {
    /// Pull requests opened with `token` (when the assignment carries none)
    /// against the API at `api_url`.
    pub fn new(api_url: &str, token: Option<Secret>) -> GitHubPullRequests {
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
        let token = self.token.as_ref().ok_or_else(|| {
            Error::invalid(
                "no GitHub token to open the pull request with: set GITHUB_TOKEN on the worker, or configure a GitHub App on the orchestrator",
            )
        })?;
        let client = self.client_with(repo, token.expose())?;
        clients.insert(repo.clone(), client.clone());
        Ok(client)
    }

    fn client_with(&self, repo: &RepoName, token: &str) -> Result<GitHubClient> {
        let config = GitHubConfig::new(token, vec![repo.clone()])?.with_api_url(&self.api_url)?;
        GitHubClient::new(config)
    }
}

#[async_trait]
impl PullRequests for GitHubPullRequests {
    async fn open(
        &self,
        issue: &TaskId,
        branch: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String> {
        let client = match token {
            Some(t) => self.client_with(&issue.repo_name(), t.expose())?,
            None => self.client(&issue.repo_name())?,
        };
        let pr = client.open_pull_request(issue, branch, title, body).await?;
        Ok(pr.html_url)
    }
}
