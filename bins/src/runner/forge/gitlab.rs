//! [`GitLabForge`]: GitLab for the worker: clones and pushes at `GITLAB_URL` with
//! the token as the password of `oauth2`, merge requests through its REST API.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::pull_gate::PullState;
use scrum_core::{Error, IssueSource, RepoName, RepoToken, Result, TaskId};
use scrum_gitlab::{GitLabClient, GitLabConfig};

use super::{Forge, closing};
use crate::runner::git::GitRemote;
use crate::runner::secret::Secret;

/// GitLab's HTTP basic user for a token (any name works; GitLab documents this one).
const GITLAB_USER: &str = "oauth2";

/// [`Forge`] on GitLab (`GITLAB_URL`, `GITLAB_TOKEN`), one API client per project.
pub struct GitLabForge {
    url: String,
    token: Secret,
    clients: Mutex<HashMap<RepoName, GitLabClient>>,
}

impl GitLabForge {
    /// GitLab at `url` (its web address: the API is under `/api/v4`, git remotes
    /// at `/{group/sub/project}.git`), with `token` (scope `api`, or
    /// `write_repository` and `api`: it pushes and opens merge requests).
    pub fn new(url: &str, token: Secret) -> GitLabForge {
        GitLabForge {
            url: url.trim_end_matches('/').to_string(),
            token,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, project: &RepoName) -> Result<GitLabClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(project) {
            return Ok(c.clone());
        }
        let config = GitLabConfig::new(&self.url, self.token.expose(), vec![project.clone()])?;
        let client = GitLabClient::new(config)?;
        clients.insert(project.clone(), client.clone());
        Ok(client)
    }
}

/// An assignment's token is a GitHub App's: it means nothing to GitLab.
fn no_foreign_token(token: Option<&RepoToken>) -> Result<()> {
    match token {
        Some(_) => Err(Error::invalid(
            "the assignment carries a GitHub token for a GitLab project",
        )),
        None => Ok(()),
    }
}

#[async_trait]
impl Forge for GitLabForge {
    fn remote(
        &self,
        _project: &RepoName,
        _token: Option<&RepoToken>,
        author: &(String, String),
    ) -> GitRemote {
        GitRemote {
            base_url: self.url.clone(),
            token: Some(self.token.clone()),
            user: GITLAB_USER,
            author: author.clone(),
        }
    }

    async fn open_change(
        &self,
        issue: &TaskId,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String> {
        no_foreign_token(token)?;
        let project = issue.repo_name();
        self.client(&project)?
            .open_merge_request(&project, branch, base, title, &closing(issue, body))
            .await
    }

    async fn change_state(
        &self,
        project: &RepoName,
        number: u64,
        token: Option<&RepoToken>,
    ) -> Result<Option<PullState>> {
        no_foreign_token(token)?;
        self.client(project)?.pull_state(project, number).await
    }

    async fn change_body(&self, url: &str, token: Option<&RepoToken>) -> Result<String> {
        no_foreign_token(token)?;
        let (project, iid) = super::change_of(url)?;
        self.client(&project)?
            .merge_request_description(&project, iid)
            .await
    }

    async fn set_change_body(
        &self,
        url: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<()> {
        no_foreign_token(token)?;
        let (project, iid) = super::change_of(url)?;
        self.client(&project)?
            .set_merge_request_description(&project, iid, body)
            .await
    }
}
