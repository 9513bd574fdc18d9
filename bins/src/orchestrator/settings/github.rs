//! The GitHub settings: the token or the GitHub App, the repositories, the ready labels, how often
//! GitHub is polled and how fast it is written to, and the webhook's secret.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use scrum_core::Labels;
use scrum_github::config::{Timing, parse_ready_labels, parse_repos};
use scrum_github::webhook::WebhookSecret;
use scrum_github::{GitHubApp, GitHubConfig};

use crate::runner::Secret;

/// GitHub: where work comes from and where outcomes go.
#[derive(Debug, Args)]
#[command(next_help_heading = "GitHub")]
pub struct GitHubArgs {
    /// GitHub token that can read and label issues (this or a GitHub App is
    /// required for GitHub repositories).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        value_name = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<Secret>,
    /// A GitHub App's id, instead of GITHUB_TOKEN: the orchestrator then works as
    /// the app's installation on each repository's owner, and hands each worker a
    /// short-lived token scoped to its task's repository (set
    /// GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH too).
    #[arg(long, env = "GITHUB_APP_ID", value_name = "GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// The GitHub App's private key, the PEM text GitHub hands out (or
    /// GITHUB_APP_PRIVATE_KEY_PATH).
    #[arg(
        long,
        env = "GITHUB_APP_PRIVATE_KEY",
        value_name = "GITHUB_APP_PRIVATE_KEY",
        hide_env_values = true
    )]
    pub github_app_private_key: Option<Secret>,
    /// A file holding the GitHub App's private key (the .pem file GitHub hands out).
    #[arg(
        long,
        env = "GITHUB_APP_PRIVATE_KEY_PATH",
        value_name = "GITHUB_APP_PRIVATE_KEY_PATH"
    )]
    pub github_app_private_key_path: Option<PathBuf>,
    /// The repository to watch, owner/name (this, GITHUB_REPOS or GITLAB_PROJECTS
    /// is required).
    #[arg(long, env = "GITHUB_REPO", value_name = "GITHUB_REPO")]
    pub github_repo: Option<String>,
    /// Several repositories, comma-separated (instead of GITHUB_REPO; it wins when
    /// both are set).
    #[arg(long, env = "GITHUB_REPOS", value_name = "GITHUB_REPOS")]
    pub github_repos: Option<String>,
    /// Labels an issue must carry (all of them, comma-separated) to be queued, on
    /// GitHub and on GitLab.
    #[arg(
        long,
        env = "GITHUB_ISSUE_LABELS",
        value_name = "GITHUB_ISSUE_LABELS",
        default_value = "ai-ready"
    )]
    pub github_issue_labels: String,
    /// Seconds between polls (of GitHub and of GitLab).
    #[arg(long, env = "GITHUB_POLL_INTERVAL", value_name = "GITHUB_POLL_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub github_poll_interval: u64,
    /// GitHub's API base (point it at a GitHub Enterprise server or a test server).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        value_name = "GITHUB_API_URL",
        default_value = scrum_github::config::DEFAULT_API_URL
    )]
    pub github_api_url: String,
    /// The least time between two writes to GitHub, in milliseconds (GitHub asks for a
    /// second, to stay clear of its secondary rate limits).
    #[arg(
        long,
        env = "GITHUB_WRITE_SPACING_MS",
        value_name = "GITHUB_WRITE_SPACING_MS",
        default_value_t = 1000
    )]
    pub github_write_spacing_ms: u64,
    /// The most GitHub requests in flight at once: reads of different issues and
    /// repositories go out together up to this many (writes go one at a time,
    /// spaced by GITHUB_WRITE_SPACING_MS, whatever this says).
    #[arg(long, env = "GITHUB_CONCURRENCY", value_name = "GITHUB_CONCURRENCY", default_value_t = scrum_github::config::DEFAULT_CONCURRENCY as u64, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub github_concurrency: u64,
    /// Secret of the GitHub webhook (POST /webhooks/github); without it the route is off.
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        value_name = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub github_webhook_secret: Option<Secret>,
    /// Start even when GITHUB_TOKEN may read a repository but not label its issues
    /// there (it needs triage or write): that repository shows as degraded in
    /// /health, its labels and comments are set aside, and its tasks are not handed
    /// out until a write to it succeeds. Without it such a repository is a start-up
    /// error.
    #[arg(long, env = "ALLOW_READ_ONLY_REPOS", value_name = "ALLOW_READ_ONLY_REPOS", default_value = "false", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_read_only_repos: bool,
}

impl GitHubArgs {
    /// The client's configuration (`None` when no repository is named and
    /// GitLab, `gitlab_set`, is the one forge), and the webhook's secret when one
    /// is set. Each error names the variable to fix.
    pub fn validate(
        &self,
        gitlab_set: bool,
    ) -> anyhow::Result<(Option<GitHubConfig>, Option<Arc<WebhookSecret>>)> {
        let app = self.app()?;
        let (variable, list) = match (&self.github_repo, &self.github_repos) {
            (_, Some(list)) if !list.trim().is_empty() => ("GITHUB_REPOS", list.as_str()),
            (Some(one), _) if !one.trim().is_empty() => ("GITHUB_REPO", one.as_str()),
            _ if gitlab_set => {
                if self.github_webhook_secret.is_some() {
                    bail!(
                        "GITHUB_WEBHOOK_SECRET is set but no GitHub repository is: name them with GITHUB_REPOS, or unset it"
                    );
                }
                return Ok((None, None));
            }
            _ => bail!(
                "neither GITHUB_REPO nor GITHUB_REPOS is set: name the repository to watch (owner/name), or GitLab projects with GITLAB_PROJECTS"
            ),
        };
        let repos = parse_repos(variable, list).map_err(anyhow::Error::msg)?;
        let labels = self.labels()?;
        let config = match (app, &self.github_token) {
            (Some(app), _) => GitHubConfig::for_app(app, repos),
            (None, Some(token)) => GitHubConfig::new(token.expose(), repos),
            (None, None) => bail!(
                "neither GITHUB_TOKEN nor GITHUB_APP_ID is set: the orchestrator needs a token that can read and label issues, or a GitHub App"
            ),
        };
        let github = config
            .and_then(|c| c.with_api_url(&self.github_api_url))
            .and_then(|c| c.with_labels(labels))
            .map_err(anyhow::Error::msg)?
            .with_timing(Timing {
                write_spacing: Duration::from_millis(self.github_write_spacing_ms),
                ..Timing::default()
            })
            .with_concurrency(usize::try_from(self.github_concurrency).unwrap_or(1));
        let webhook = match &self.github_webhook_secret {
            Some(secret) => Some(Arc::new(
                WebhookSecret::new(secret.expose())
                    .map_err(|e| anyhow::anyhow!("GITHUB_WEBHOOK_SECRET: {e}"))?
                    .with_pull_heads(github.pull_heads()),
            )),
            None => None,
        };
        Ok((Some(github), webhook))
    }

    /// The lifecycle labels with the ready labels `GITHUB_ISSUE_LABELS` names
    /// (GitLab's issues are read with the same).
    pub fn labels(&self) -> anyhow::Result<Labels> {
        let labels = Labels {
            ready: parse_ready_labels(&self.github_issue_labels),
            ..Labels::default()
        };
        if labels.ready.is_empty() {
            bail!("GITHUB_ISSUE_LABELS is empty: name at least one label, e.g. ai-ready");
        }
        Ok(labels)
    }

    /// The GitHub App, when one is configured. Each error names the variable.
    fn app(&self) -> anyhow::Result<Option<GitHubApp>> {
        let key = match (
            &self.github_app_private_key,
            &self.github_app_private_key_path,
        ) {
            (Some(_), Some(_)) => bail!(
                "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are both set: give the key one way"
            ),
            (Some(key), None) => Some(key.expose().to_string()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| {
                format!(
                    "GITHUB_APP_PRIVATE_KEY_PATH {} cannot be read",
                    path.display()
                )
            })?),
            (None, None) => None,
        };
        let (id, key) = match (self.github_app_id, key) {
            (None, None) => return Ok(None),
            (Some(_), None) => bail!(
                "GITHUB_APP_ID is set without a key: set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH"
            ),
            (None, Some(_)) => {
                bail!("a GitHub App key is set without GITHUB_APP_ID: set the app's id")
            }
            (Some(id), Some(key)) => (id, key),
        };
        if self.github_token.is_some() {
            bail!(
                "both GITHUB_TOKEN and GITHUB_APP_ID are set: use a personal token or a GitHub App, not both (unset one)"
            );
        }
        Ok(Some(
            GitHubApp::from_pem(id, &key).map_err(anyhow::Error::msg)?,
        ))
    }

    /// How often GitHub is polled.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.github_poll_interval)
    }
}
