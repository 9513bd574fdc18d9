//! Pull requests: the [`PullRequests`] seam (open one, read and edit its body), and
//! its GitHub implementation.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::{Error, RepoName, RepoToken, Result, TaskId};
use scrum_github::{GitHubClient, GitHubConfig};

use super::secret::Secret;

/// Opens the pull request for a task's branch, or returns the one already open;
/// reads and replaces its body (a follow-up keeps its Rounds section there).
///
/// `token`, when the assignment carried one (a GitHub App's token scoped to the
/// repository), is used instead of the worker's own.
#[async_trait]
pub trait PullRequests: Send + Sync + 'static {
    /// The pull request's URL.
    async fn open(
        &self,
        issue: &TaskId,
        branch: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String>;

    /// The body of the pull request at `pr_url` (as [`PullRequests::open`]
    /// returned it) of `issue`'s repository; empty when it has none.
    async fn body(&self, issue: &TaskId, pr_url: &str, token: Option<&RepoToken>)
    -> Result<String>;

    /// Replaces the body of the pull request at `pr_url`.
    async fn set_body(
        &self,
        issue: &TaskId,
        pr_url: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<()>;
}

/// The number of the pull request at `pr_url` (`…/pull/12`).
fn pull_number(pr_url: &str) -> Result<u64> {
    pr_url
        .trim_end_matches('/')
        .rsplit_once("/pull/")
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| Error::invalid(format!("{pr_url:?} is not a pull request's page")))
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

    /// The client for `issue`'s repository: with the assignment's `token`, else
    /// the worker's own.
    fn client_for(&self, issue: &TaskId, token: Option<&RepoToken>) -> Result<GitHubClient> {
        match token {
            Some(t) => self.client_with(&issue.repo_name(), t.expose()),
            None => self.client(&issue.repo_name()),
        }
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
        let client = self.client_for(issue, token)?;
        let pr = client.open_pull_request(issue, branch, title, body).await?;
        Ok(pr.html_url)
    }

    async fn body(
        &self,
        issue: &TaskId,
        pr_url: &str,
        token: Option<&RepoToken>,
    ) -> Result<String> {
        let client = self.client_for(issue, token)?;
        client
            .pull_body(&issue.repo_name(), pull_number(pr_url)?)
            .await
    }

    async fn set_body(
        &self,
        issue: &TaskId,
        pr_url: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<()> {
        let client = self.client_for(issue, token)?;
        client
            .set_pull_body(&issue.repo_name(), pull_number(pr_url)?, body)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_requests_number_is_read_from_its_page() {
        assert_eq!(
            pull_number("https://github.com/acme/api/pull/12").unwrap(),
            12
        );
        assert_eq!(
            pull_number("http://127.0.0.1:9/acme/api/pull/3/").unwrap(),
            3
        );
        let e = pull_number("https://github.com/acme/api/issues/12").unwrap_err();
        assert!(
            e.to_string().contains("is not a pull request's page"),
            "{e}"
        );
    }
}
