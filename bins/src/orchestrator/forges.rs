//! The forges the service works on: GitHub, GitLab, or both. Each is checked at
//! start (a token refused, or with too little scope, stops the service with an
//! error naming the variable), then joined into the one issue source the engine
//! sees ([`scrum_core::forges::Forges`] when there are two, or GitLab alone), and
//! each one's health and rate limit reach `/health` apart.

use std::sync::Arc;

use async_trait::async_trait;
use scrum_core::engine::Orchestrator;
use scrum_core::forges::Forges;
use scrum_core::model::GITHUB;
use scrum_core::{ErrorKind, IssueSource, RepoCredentials, RepoName, RepoToken, Timestamp};
use scrum_github::{GitHubClient, GitHubConfig};
use scrum_gitlab::GitLabClient;

use super::settings::ServeArgs;
use super::settings::gitlab::GitLab;

/// GitLab's name among the forges ([`RepoName::forge`]).
pub const GITLAB: &str = "gitlab";

/// The GitHub client, its token checked: refused, or unable to label a
/// repository (unless `ALLOW_READ_ONLY_REPOS`), is a start-up error.
pub async fn start_github(config: &GitHubConfig, a: &ServeArgs) -> anyhow::Result<GitHubClient> {
    let github = GitHubClient::new(config.clone()).map_err(anyhow::Error::msg)?;
    let who = match config.is_app() {
        true => "the GitHub App (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)",
        false => "GITHUB_TOKEN",
    };
    let read_only = github.check().await.map_err(|e| match e.kind() {
        ErrorKind::Unauthorized => anyhow::anyhow!("{who} was refused by GitHub: {e}"),
        _ => anyhow::anyhow!("GitHub at {}: {e}", a.github.github_api_url),
    })?;
    for (repo, granted) in &read_only {
        let why = format!(
            "GITHUB_TOKEN may read {repo} but not label its issues: it needs the triage or \
             write permission there (it has: {granted})"
        );
        if !a.github.allow_read_only_repos {
            anyhow::bail!("{why}; grant it, or set ALLOW_READ_ONLY_REPOS=true to start anyway");
        }
        tracing::warn!(repository = %repo, "{why}; starting anyway (ALLOW_READ_ONLY_REPOS): its writes will be set aside and its tasks held");
    }
    let repos: Vec<String> = github.repos().iter().map(|r| r.to_string()).collect();
    tracing::info!(repos = ?repos, "GitHub token accepted");
    Ok(github)
}

/// The GitLab client, its token checked: refused, without the `api` scope (a
/// `read_api` token), or short of Developer access to a project, is a start-up
/// error that says so.
pub async fn start_gitlab(gitlab: &GitLab, a: &ServeArgs) -> anyhow::Result<GitLabClient> {
    let client = GitLabClient::new(gitlab.config.clone()).map_err(anyhow::Error::msg)?;
    client.check_access().await.map_err(|e| match e.kind() {
        ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::NotFound => {
            anyhow::anyhow!(
                "GITLAB_TOKEN was refused by GitLab at {}: {e}",
                a.gitlab.gitlab_url
            )
        }
        _ => anyhow::anyhow!("GitLab at {}: {e}", a.gitlab.gitlab_url),
    })?;
    let projects: Vec<String> = client.projects().iter().map(|p| p.to_string()).collect();
    tracing::info!(projects = ?projects, "GitLab token accepted");
    Ok(client)
}

/// The one source the engine reads: GitHub's client alone as before, else the
/// forges joined.
pub fn source(github: Option<&GitHubClient>, gitlab: Option<&GitLabClient>) -> Source {
    match (github, gitlab) {
        (Some(github), None) => Source {
            source: Arc::new(github.clone()),
            forges: None,
        },
        (github, gitlab) => {
            let mut forges = Forges::new();
            if let Some(g) = github {
                forges = forges.with(GITHUB, Arc::new(g.clone()));
            }
            if let Some(g) = gitlab {
                forges = forges.with(GITLAB, Arc::new(g.clone()));
            }
            let forges = Arc::new(forges);
            Source {
                source: forges.clone(),
                forges: Some(forges),
            }
        }
    }
}

/// What [`source`] built.
pub struct Source {
    /// What the engine reads.
    pub source: Arc<dyn IssueSource>,
    /// The forges joined, when there are several (or GitLab alone).
    pub forges: Option<Arc<Forges>>,
}

/// Sends each forge's view to the engine as it changes, for `/health` and the
/// dashboard: GitHub's client's own status (a rate limit being waited out reaches
/// `/health` at once), each forge's listing, and GitLab's rate limit as its last
/// answer gave it.
pub fn report_health(
    o: &Orchestrator,
    github: Option<&GitHubClient>,
    gitlab: Option<&GitLabClient>,
    forges: Option<&Forges>,
) {
    if let Some(github) = github {
        let (o, mut status, apart) = (o.clone(), github.subscribe_status(), forges.is_some());
        tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let s = status.borrow_and_update().clone();
                let reset = s
                    .rate_limit_reset
                    .map(|secs| Timestamp(i64::try_from(secs).unwrap_or(0).saturating_mul(1000)));
                o.report_source_health(s.is_connected(), s.degraded_reason().map(str::to_string));
                o.report_rate_limit(s.rate_limit_remaining, reset);
                if apart {
                    o.report_forge(
                        GITHUB,
                        scrum_core::engine::ForgeReport::RateLimit {
                            remaining: s.rate_limit_remaining,
                            reset,
                        },
                    );
                }
            }
        });
    }
    if let Some(forges) = forges {
        let (o, mut health, gitlab) = (o.clone(), forges.health(), gitlab.cloned());
        // With GitLab alone, its rate limit is the source's.
        let alone = github.is_none();
        tokio::spawn(async move {
            while health.changed().await.is_ok() {
                let all = health.borrow_and_update().clone();
                for (forge, h) in all {
                    o.report_forge(
                        &forge,
                        scrum_core::engine::ForgeReport::Health {
                            connected: h.connected,
                            reason: h.reason,
                        },
                    );
                }
                if let Some((remaining, reset)) = gitlab.as_ref().and_then(|g| g.rate_limit()) {
                    o.report_forge(
                        GITLAB,
                        scrum_core::engine::ForgeReport::RateLimit {
                            remaining: Some(remaining),
                            reset: Some(reset),
                        },
                    );
                    if alone {
                        o.report_rate_limit(Some(remaining), Some(reset));
                    }
                }
            }
        });
    }
}

/// A GitHub App's tokens for GitHub's repositories only: a GitLab task's worker
/// pushes with its own GitLab token.
pub struct GitHubCredentials(pub GitHubClient);

#[async_trait]
impl RepoCredentials for GitHubCredentials {
    async fn token_for(&self, repo: &RepoName) -> scrum_core::Result<Option<RepoToken>> {
        match repo.forge() == GITHUB {
            true => self.0.token_for(repo).await,
            false => Ok(None),
        }
    }
}
