//! `scrum-orchestrator doctor`: checks a configuration (the same flags, environment
//! variables and settings file as the service) without starting the service, one
//! line per check ([`crate::doctor::Report`]):
//!
//! - `settings`: every group of settings is valid;
//! - `github`: the token is accepted, and may read and write issues and read pull
//!   requests in each repository ([`github`]);
//! - `labels`: the ready and lifecycle labels exist, or can be created ([`github`]);
//! - `gitlab`: with GitLab projects, the token has the `api` scope and Developer
//!   access to each project, as the service checks at start;
//! - `webhook`: the secret signs and verifies a delivery through the server's own
//!   check, a running orchestrator takes a signed ping, and the repositories'
//!   hooks (where the token may read them) carry a secret and were not refused
//!   ([`webhook`]);
//! - `store`: the store opens and is migrated; `ssh`: each worker host answers
//!   over SSH with its pinned key; `sandbox`: a sandbox tool is installed when
//!   workers run on this machine ([`fleet`]).

pub mod fleet;
pub mod github;
pub mod webhook;

use std::time::Duration;

use clap::Args;
use scrum_github::{GitHubClient, GitHubConfig, Timing};

use super::settings::ServeArgs;
use crate::doctor::Report;

/// What `doctor` takes beyond the service's settings.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The running orchestrator to send a signed webhook ping to (default: the
    /// address ORCHESTRATOR_HOST and ORCHESTRATOR_PORT name, when one answers there).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Create the labels that are missing (the service creates the lifecycle labels
    /// on first use anyway); this is the one change the doctor makes on GitHub.
    #[arg(long)]
    pub create_labels: bool,
}

/// Runs every check of `serve`'s configuration into `report`.
pub async fn check(serve: &ServeArgs, args: &DoctorArgs, report: &mut Report) {
    let valid = fleet::settings(serve, report);
    let github = valid
        .github
        .as_ref()
        .and_then(|config| github_client(config, report));
    let readable = match &github {
        Some(client) => github::token(client, report).await,
        None => Vec::new(),
    };
    if let Some(client) = &github {
        github::labels(client, &readable, args.create_labels, report).await;
    }
    if let Some(gitlab) = &valid.gitlab {
        gitlab_access(gitlab, report).await;
    }
    let target = webhook::target(args.url.as_deref(), &serve.listener);
    webhook::check(
        valid.webhook.as_deref(),
        github.as_ref().map(|c| (c, readable.as_slice())),
        &target,
        report,
    )
    .await;
    if valid.gitlab.is_some() {
        let secret = serve.gitlab.gitlab_webhook_secret.as_ref();
        webhook::gitlab(secret.map(|s| s.expose()), &target, report).await;
    }
    if let Some(store) = &valid.store {
        fleet::store(serve, store, report).await;
    }
    fleet::ssh(&serve.workers.hosts(), valid.ssh.as_ref(), report).await;
    fleet::sandbox(&serve.workers.hosts(), report);
}

/// A GitHub client for the checks: the service's settings, with short waits (a
/// doctor answers within seconds or says why not).
fn github_client(config: &GitHubConfig, report: &mut Report) -> Option<GitHubClient> {
    let timing = Timing {
        request_timeout: Duration::from_secs(15),
        retries: 1,
        max_rate_limit_wait: Duration::from_secs(10),
        write_spacing: Duration::ZERO,
        ..Timing::default()
    };
    match GitHubClient::new(config.clone().with_timing(timing)) {
        Ok(c) => Some(c),
        Err(e) => {
            report.fail("github", e.to_string(), "fix GITHUB_API_URL");
            None
        }
    }
}

/// The GitLab token's scope and access to each project, as the service checks them
/// at start.
async fn gitlab_access(gitlab: &super::settings::gitlab::GitLab, report: &mut Report) {
    let projects: Vec<String> = gitlab
        .config
        .projects()
        .iter()
        .map(|p| p.to_string())
        .collect();
    let checked = match scrum_gitlab::GitLabClient::new(gitlab.config.clone()) {
        Ok(client) => client.check_access().await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => report.ok(
            "gitlab",
            format!(
                "the token has the api scope and Developer access to {}",
                projects.join(", ")
            ),
        ),
        Err(e) => report.fail(
            "gitlab",
            format!("GITLAB_TOKEN at {}: {e}", gitlab.config.url()),
            "give the token the api scope and its user the Developer role (or more) in each project of GITLAB_PROJECTS",
        ),
    }
}
