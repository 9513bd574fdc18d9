//! Requests as a GitHub App: each repository is reached with a token of the
//! app's installation on its owner, found once (`GET /repos/{o}/{r}/installation`)
//! and renewed before it expires (`POST /app/installations/{id}/access_tokens`).
//! The app's own requests carry its JWT and are paced on a lane of their own;
//! each installation's requests on the installation's lane.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use scrum_core::{Error, ErrorKind, RepoName, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{GitHubApp, InstallationToken};
use crate::classify::{Subject, What};
use crate::config::Auth;
use crate::transport::{Call, Reply, Transport};
use crate::wire::parse_time;

/// `GET /repos/{o}/{r}/installation`, the part read.
#[derive(Deserialize)]
struct Installation {
    id: u64,
}

/// `POST /app/installations/{id}/access_tokens`, the part read.
#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

impl Transport {
    /// Sends `call` with the token of the installation on its repository's owner.
    /// A token GitHub refuses (revoked, or expired early) is renewed and the call
    /// sent once more.
    pub(crate) async fn send_as_installation(&self, app: &GitHubApp, call: &Call) -> Result<Reply> {
        let repo = call.what.subject.repo();
        let id = self.installation_of(app, &repo).await?;
        let lane = self.lane(Some(id));
        let token = self.installation_token(app, id, &repo, false).await?;
        match self.send_on(&lane, call, &token).await {
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                tracing::warn!(
                    installation = id,
                    "GitHub refused the installation token; renewing it"
                );
                let token = self.installation_token(app, id, &repo, true).await?;
                self.send_on(&lane, call, &token).await
            }
            other => other,
        }
    }

    /// The installation of the app on `repo`'s owner (read once per owner).
    async fn installation_of(&self, app: &GitHubApp, repo: &RepoName) -> Result<u64> {
        if let Some(id) = self.installations.of(repo.owner()) {
            return Ok(id);
        }
        let what = What {
            action: "find the GitHub App's installation on",
            subject: Subject::Repo(repo.clone()),
        };
        let call = Call::get(format!("/repos/{repo}/installation"), what.clone());
        let reply = self.send_as_app(app, &call).await?;
        if reply.status == http::StatusCode::NOT_FOUND {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "the GitHub App {} is not installed on {} (or not given {repo}): install it there",
                    app.id(),
                    repo.owner()
                ),
            ));
        }
        let found: Installation = reply.success(&what)?.json(&what)?;
        self.installations.learn(repo.owner(), found.id);
        Ok(found.id)
    }

    /// The installation's token: the one kept while more than
    /// `token_refresh_margin` is left of it, else a new one (`renew` asks for a
    /// new one in any case).
    async fn installation_token(
        &self,
        app: &GitHubApp,
        id: u64,
        repo: &RepoName,
        renew: bool,
    ) -> Result<String> {
        let slot = self.installations.slot(id);
        let mut kept = slot.lock().await;
        if let Some(t) = kept
            .as_ref()
            .filter(|t| !renew && t.fresh(self.timing.token_refresh_margin))
        {
            return Ok(t.token.clone());
        }
        let fresh = self.mint(app, id, repo, json!({})).await?;
        *kept = Some(fresh.clone());
        Ok(fresh.token)
    }

    /// A new token of the installation on `repo`'s owner that reaches `repo` alone,
    /// and may push to it and open pull requests there (for a worker's task);
    /// `None` when the client uses a personal token.
    pub(crate) async fn repo_token(&self, repo: &RepoName) -> Result<Option<InstallationToken>> {
        let Auth::App(app) = &self.auth else {
            return Ok(None);
        };
        let id = self.installation_of(app, repo).await?;
        let body = json!({
            "repositories": [repo.name()],
            "permissions": { "contents": "write", "pull_requests": "write" },
        });
        self.mint(app, id, repo, body).await.map(Some)
    }

    /// `POST /app/installations/{id}/access_tokens` with `body`.
    async fn mint(
        &self,
        app: &GitHubApp,
        id: u64,
        repo: &RepoName,
        body: Value,
    ) -> Result<InstallationToken> {
        let what = What {
            action: "get an installation token for",
            subject: Subject::Repo(repo.clone()),
        };
        let path = format!("/app/installations/{id}/access_tokens");
        let call = Call::with_body(Method::POST, path, body, what.clone()).idempotent();
        let answer: AccessToken = self
            .send_as_app(app, &call)
            .await?
            .success(&what)?
            .json(&what)?;
        let expires_at = parse_time(&answer.expires_at).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "GitHub's installation token expiry {:?} is no time",
                    answer.expires_at
                ),
            )
        })?;
        let ms = u64::try_from(expires_at.0).unwrap_or(0);
        Ok(InstallationToken {
            token: answer.token,
            expires_at: UNIX_EPOCH + Duration::from_millis(ms),
        })
    }

    /// Sends `call` as the app itself (its JWT), on the app's lane.
    async fn send_as_app(&self, app: &GitHubApp, call: &Call) -> Result<Reply> {
        let jwt = app.jwt(SystemTime::now())?;
        self.send_on(&self.lane(None), call, &jwt).await
    }
}
