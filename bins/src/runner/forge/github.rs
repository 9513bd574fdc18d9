//! [`GitHubForge`]: GitHub for the worker: clones and pushes at `GIT_BASE_URL`
//! with `x-access-token`, pull requests through GitHub's API (`GITHUB_API_URL`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::pull_gate::PullState;
use scrum_core::{Error, IssueSource, RepoName, RepoToken, Result, TaskId};
use scrum_github::{GitHubClient, GitHubConfig};

use super::Forge;
use crate::runner::git::{GITHUB_USER, GitRemote};
use crate::runner::secret::Secret;

/// [`Forge`] on GitHub, one API client per repository for the worker's own token,
/// a new one for each token an assignment carries.
pub struct GitHubForge {
    api_url: String,
    git_url: String,
    token: Option<Secret>,
    clients: Mutex<HashMap<RepoName, GitHubClient>>,
}

impl GitHubForge {
    /// GitHub at `api_url` (its API) and `git_url` (its git remotes), with
    /// `token` when the assignment carries none.
    pub fn new(api_url: &str, git_url: &str, token: Option<Secret>) -> GitHubForge {
        GitHubForge {
            api_url: api_url.to_string(),
            git_url: git_url.to_string(),
            token,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, repo: &RepoName, token: Option<&RepoToken>) -> Result<GitHubClient> {
        if let Some(t) = token {
            return self.client_with(repo, t.expose());
        }
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
impl Forge for GitHubForge {
    fn remote(
        &self,
        _repo: &RepoName,
        token: Option<&RepoToken>,
        author: &(String, String),
    ) -> GitRemote {
        GitRemote {
            base_url: self.git_url.clone(),
            token: match token {
                Some(t) => Some(Secret::new(t.expose())),
                None => self.token.clone(),
            },
            user: GITHUB_USER,
            author: author.clone(),
        }
    }

    async fn open_change(
        &self,
        issue: &TaskId,
        branch: &str,
        _base: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String> {
        // GitHub's client finds the base (the default branch) and adds `Closes #N`.
        let client = self.client(&issue.repo_name(), token)?;
        let pr = client.open_pull_request(issue, branch, title, body).await?;
        Ok(pr.html_url)
    }

    async fn change_state(
        &self,
        repo: &RepoName,
        number: u64,
        token: Option<&RepoToken>,
    ) -> Result<Option<PullState>> {
        self.client(repo, token)?.pull_state(repo, number).await
    }

    async fn change_body(&self, url: &str, token: Option<&RepoToken>) -> Result<String> {
        let (repo, number) = super::change_of(url)?;
        self.client(&repo, token)?.pull_body(&repo, number).await
    }

    async fn set_change_body(
        &self,
        url: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<()> {
        let (repo, number) = super::change_of(url)?;
        self.client(&repo, token)?
            .set_pull_body(&repo, number, body)
            .await
    }
}
