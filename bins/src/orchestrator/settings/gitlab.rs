//! The GitLab settings: GitLab's address, the token, the projects (in nested
//! groups too) and the webhook's secret token. GitLab is a second forge beside
//! GitHub, or the only one.

use std::sync::Arc;

use anyhow::bail;
use clap::Args;
use scrum_core::{Labels, RepoName};
use scrum_gitlab::{GitLabConfig, WebhookToken};

use crate::runner::Secret;

/// GitLab: projects whose issues are worked on beside (or instead of) GitHub's.
#[derive(Debug, Args)]
#[command(next_help_heading = "GitLab")]
pub struct GitLabArgs {
    /// GitLab's address (gitlab.com or your own instance; the API is under /api/v4).
    #[arg(
        long,
        env = "GITLAB_URL",
        value_name = "GITLAB_URL",
        default_value = scrum_gitlab::GITLAB_COM
    )]
    pub gitlab_url: String,
    /// A GitLab access token with the api scope, whose user is at least a
    /// Developer of every project (to label, comment and read who labelled);
    /// a read_api token is refused at start.
    #[arg(
        long,
        env = "GITLAB_TOKEN",
        value_name = "GITLAB_TOKEN",
        hide_env_values = true
    )]
    pub gitlab_token: Option<Secret>,
    /// The GitLab projects to watch, comma-separated, each by its full path
    /// (group/sub/project). Their tasks are named gitlab:group/sub/project#N.
    #[arg(long, env = "GITLAB_PROJECTS", value_name = "GITLAB_PROJECTS")]
    pub gitlab_projects: Option<String>,
    /// The secret token of the GitLab webhook (POST /webhooks/gitlab, checked
    /// against X-Gitlab-Token); without it the route is off.
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SECRET",
        value_name = "GITLAB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub gitlab_webhook_secret: Option<Secret>,
}

/// GitLab as the service uses it: the client's configuration and the webhook.
#[derive(Debug, Clone)]
pub struct GitLab {
    /// The client's configuration.
    pub config: GitLabConfig,
    /// Checks deliveries at `POST /webhooks/gitlab`, when a secret is set.
    pub webhook: Option<Arc<WebhookToken>>,
}

impl GitLabArgs {
    /// Whether GitLab is configured at all (a project is named).
    pub fn is_set(&self) -> bool {
        self.gitlab_projects
            .as_deref()
            .is_some_and(|p| !p.trim().is_empty())
    }

    /// GitLab's configuration with the ready `labels`, or `None` when no project
    /// is named. Each error names the variable to fix.
    pub fn validate(&self, labels: &Labels) -> anyhow::Result<Option<GitLab>> {
        if !self.is_set() {
            if self.gitlab_token.is_some() || self.gitlab_webhook_secret.is_some() {
                bail!(
                    "GITLAB_TOKEN or GITLAB_WEBHOOK_SECRET is set but GITLAB_PROJECTS is not: name the GitLab projects to watch (group/sub/project), or unset them"
                );
            }
            return Ok(None);
        }
        let projects = parse_projects(self.gitlab_projects.as_deref().unwrap_or_default())?;
        let Some(token) = &self.gitlab_token else {
            bail!(
                "GITLAB_PROJECTS is set without GITLAB_TOKEN: give a GitLab access token with the api scope"
            );
        };
        let config = GitLabConfig::new(&self.gitlab_url, token.expose(), projects)
            .map_err(|e| anyhow::anyhow!("GITLAB_URL or GITLAB_TOKEN: {e}"))?
            .with_labels(labels.clone());
        let webhook = match &self.gitlab_webhook_secret {
            Some(secret) => Some(Arc::new(
                WebhookToken::new(secret.expose())
                    .map_err(|e| anyhow::anyhow!("GITLAB_WEBHOOK_SECRET: {e}"))?,
            )),
            None => None,
        };
        Ok(Some(GitLab { config, webhook }))
    }
}

/// `GITLAB_PROJECTS` (`group/sub/project, other/project`) as `gitlab:` names,
/// without repeats. A name written with its prefix is taken as it is.
pub fn parse_projects(value: &str) -> anyhow::Result<Vec<RepoName>> {
    let mut projects = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let path = part
            .strip_prefix("gitlab:")
            .unwrap_or(part)
            .trim_matches('/');
        let name: RepoName = format!("gitlab:{path}").parse().map_err(|e| {
            anyhow::anyhow!(
                "GITLAB_PROJECTS: {part:?} is not a project path such as group/sub/project: {e}"
            )
        })?;
        if !projects.contains(&name) {
            projects.push(name);
        }
    }
    if projects.is_empty() {
        bail!("GITLAB_PROJECTS names no project: give group/project");
    }
    Ok(projects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_read_as_gitlab_names_with_their_groups() {
        let got = parse_projects(" group/sub/project, gitlab:other/p ,group/sub/project").unwrap();
        let names: Vec<&str> = got.iter().map(RepoName::as_str).collect();
        assert_eq!(names, ["gitlab:group/sub/project", "gitlab:other/p"]);
        assert_eq!(got[0].owner(), "group/sub");
        let e = parse_projects("justone").unwrap_err().to_string();
        assert!(
            e.contains("GITLAB_PROJECTS") && e.contains("justone"),
            "{e}"
        );
        assert!(parse_projects(" , ").is_err());
    }
}
