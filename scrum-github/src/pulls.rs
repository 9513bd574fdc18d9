//! Opening the pull request for an issue's branch, idempotently.

use http::{Method, StatusCode};
use scrum_core::{Error, ErrorKind, RepoName, Result, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::classify::{Subject, What};
use crate::client::GitHubClient;
use crate::transport::Call;
use crate::wire::{self, encode_segment};

/// A pull request: what a worker reports as its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its page, e.g. `https://github.com/acme/widgets/pull/12`.
    pub html_url: String,
    /// Whether this call opened it (`false`: it was already open).
    pub created: bool,
}

impl GitHubClient {
    /// Opens a pull request from `head` into the repository's default branch for
    /// `issue`, or returns the open one that already exists for `head`, so a retried
    /// attempt succeeds. The body ends with `Closes #N`.
    ///
    /// # Errors
    /// `Invalid` when GitHub refuses it (e.g. `head` was never pushed); `NotFound`
    /// naming the repository; the transport's errors.
    pub async fn open_pull_request(
        &self,
        issue: &TaskId,
        head: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest> {
        let head = head.trim();
        if head.is_empty() || head.contains(':') {
            return Err(Error::invalid(format!(
                "branch {head:?} must be a branch name of {}",
                issue.repo()
            )));
        }
        let repo = issue.repo_name();
        if let Some(pr) = self.open_pull_for(&repo, head).await? {
            return Ok(pr);
        }
        let base = self.default_branch(&repo).await?;
        let closes = format!("Closes #{}", issue.number());
        let body = if body.contains(&closes) {
            body.to_string()
        } else if body.trim().is_empty() {
            closes
        } else {
            format!("{body}\n\n{closes}")
        };
        let what = What {
            action: "open a pull request in",
            subject: Subject::Repo(repo.clone()),
        };
        let reply = self
            .inner
            .transport
            .send(
                &Call::with_body(
                    Method::POST,
                    format!("/repos/{repo}/pulls"),
                    json!({ "title": title, "head": head, "base": base, "body": body }),
                    what.clone(),
                )
                // A repeat is refused with 422 "already exists", handled below.
                .idempotent(),
            )
            .await?;
        if reply.status == StatusCode::UNPROCESSABLE_ENTITY
            && reply.message().contains("already exists")
        {
            // Opened by an earlier attempt whose answer was lost.
            if let Some(pr) = self.open_pull_for(&repo, head).await? {
                return Ok(pr);
            }
        }
        let reply = reply.success(&what)?;
        let pull: wire::Pull = reply.json(&what)?;
        Ok(PullRequest {
            number: pull.number,
            html_url: pull.html_url,
            created: true,
        })
    }

    /// The open pull request whose head is `branch` in `repo`, if any.
    async fn open_pull_for(&self, repo: &RepoName, branch: &str) -> Result<Option<PullRequest>> {
        let what = What {
            action: "list the pull requests of",
            subject: Subject::Repo(repo.clone()),
        };
        let head = format!("{}:{}", repo.owner(), branch);
        let path = format!(
            "/repos/{repo}/pulls?state=open&head={}&per_page=100",
            encode_segment(&head)
        );
        let reply = self
            .inner
            .transport
            .send(&Call::get(path, what.clone()))
            .await?
            .success(&what)?;
        if reply.status == StatusCode::NOT_MODIFIED {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("GitHub answered 304 to an unconditional request to {what}"),
            ));
        }
        let pulls: Vec<wire::Pull> = reply.json(&what)?;
        Ok(pulls
            .into_iter()
            .find(|p| p.head.branch == branch)
            .map(|p| PullRequest {
                number: p.number,
                html_url: p.html_url,
                created: false,
            }))
    }
}

/// What the worker reads of a pull request to edit its body.
#[derive(Deserialize)]
struct PullBody {
    #[serde(default)]
    body: Option<String>,
}

impl GitHubClient {
    /// The body of pull request `number` of `repo` (empty when it has none), to
    /// edit a section of it with [`GitHubClient::set_pull_body`].
    ///
    /// # Errors
    /// `NotFound` naming the repository; the transport's errors.
    pub async fn pull_body(&self, repo: &RepoName, number: u64) -> Result<String> {
        let what = What {
            action: "read a pull request of",
            subject: Subject::Repo(repo.clone()),
        };
        let reply = self
            .inner
            .transport
            .send(&Call::get(
                format!("/repos/{repo}/pulls/{number}"),
                what.clone(),
            ))
            .await?
            .success(&what)?;
        let pull: PullBody = reply.json(&what)?;
        Ok(pull.body.unwrap_or_default())
    }

    /// Replaces the body of pull request `number` of `repo`.
    ///
    /// # Errors
    /// `NotFound` naming the repository; the transport's errors.
    pub async fn set_pull_body(&self, repo: &RepoName, number: u64, body: &str) -> Result<()> {
        let what = What {
            action: "edit a pull request of",
            subject: Subject::Repo(repo.clone()),
        };
        self.inner
            .transport
            .send(
                &Call::with_body(
                    Method::PATCH,
                    format!("/repos/{repo}/pulls/{number}"),
                    json!({ "body": body }),
                    what.clone(),
                )
                .idempotent(),
            )
            .await?
            .success(&what)?;
        Ok(())
    }
}
