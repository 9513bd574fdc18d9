//! The orchestrator's wiring: the store, the forges (GitHub, GitLab: [`super::forges`]),
//! the SSH probe and the engine, run by [`scrum_http::run`] with the API in front.

use std::sync::Arc;

use anyhow::Context;
use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::state::Policy;
use scrum_core::{ErrorKind, WorkerProbe};
use scrum_github::GitHubConfig;
use scrum_http::{ApiConfig, ApiState};
use scrum_ssh::SshProbeConfig;

use super::forges;
use super::notify::Notifications;
use super::settings::ServeArgs;
use super::settings::gitlab::GitLab;
use super::settings::policy::policy;
use super::settings::store::StoreSettings;

/// Everything the service needs, validated ([`ServeArgs::validate`]).
pub struct Service {
    pub(super) args: ServeArgs,
    /// GitHub's configuration, unless GitLab is the one forge.
    pub(super) github: Option<GitHubConfig>,
    /// GitLab's, when projects are named.
    pub(super) gitlab: Option<GitLab>,
    /// The lifecycle labels, on every forge.
    pub(super) labels: scrum_core::Labels,
    pub(super) api: ApiConfig,
    pub(super) store: StoreSettings,
    /// The SSH probe's configuration, when worker hosts are probed.
    pub(super) ssh: Option<SshProbeConfig>,
    pub(super) notifier: Notifications,
    pub(super) worker_hosts: Vec<String>,
}

impl Service {
    /// Runs the orchestrator until `shutdown` completes: opens the store, checks the
    /// forges' tokens, then serves the API and runs the engine ([`scrum_http::run`]).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let probe = self.probe()?;
        let a = &self.args;
        let shown_url = scrum_store::redact_url(&self.store.database_url);
        let mut policy = self.policy();
        let notifier = self.notifier.notifier()?;
        if let Some((events, _)) = &notifier {
            policy.notify = events.clone();
        }
        let queue = scrum_store::open(&self.store.database_url, policy)
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL {shown_url}: {e}"))?;
        tracing::info!(store = %shown_url, "store open");
        let github = match &self.github {
            Some(config) => Some(forges::start_github(config, a).await?),
            None => None,
        };
        let gitlab = match &self.gitlab {
            Some(g) => Some(forges::start_gitlab(g, a).await?),
            None => None,
        };
        let source = forges::source(github.as_ref(), gitlab.as_ref());
        let mut builder = Orchestrator::builder(queue, source.source).config(EngineConfig {
            poll_interval: a.github.poll_interval(),
            probe_interval: a.ssh.interval(),
            worker_forget_after: a.workers.forget_after(),
            worker_hosts: self.worker_hosts.clone(),
            labels: scrum_core::Labels {
                fixing: a.follow_ups.follow_up_label.clone(),
                ..self.labels.clone()
            },
            leader_ttl: a.leases.leader_ttl(),
            trust: a.trust.trust_mode,
            review: a.review.settings(),
            follow_ups: a.follow_ups.settings(&a.review),
            budgets: a.budgets.engine_budgets(),
            scaling: a.workers.scaling(),
            ..EngineConfig::default()
        });
        a.trust.log();
        if let Some((_, notifier)) = notifier {
            builder = builder.notifier(Arc::new(notifier));
        }
        if let Some(probe) = probe {
            builder = builder.probe(probe);
        }
        let orchestrator = builder.build();
        forges::report_health(
            &orchestrator,
            github.as_ref(),
            gitlab.as_ref(),
            source.forges.as_deref(),
        );
        let addr = a.listener.addr();
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (ORCHESTRATOR_HOST/ORCHESTRATOR_PORT)")
        })?;
        tracing::info!(addr = %listener.local_addr()?, "scrum-orchestrator {} listening", env!("CARGO_PKG_VERSION"));
        let mut api = self.api;
        let app = self.github.as_ref().is_some_and(GitHubConfig::is_app);
        if let Some(github) = github.as_ref().filter(|_| app) {
            // Workers get a short-lived token for their task's GitHub repository.
            api.credentials = Some(Arc::new(forges::GitHubCredentials(github.clone())));
        }
        api.gitlab_webhook = self
            .gitlab
            .as_ref()
            .and_then(|g| g.webhook.clone())
            .map(|w| w as Arc<dyn scrum_core::IssueEvents>);
        let state = ApiState::new(orchestrator, api);
        if let Some(github) = &github {
            // GitHub's request durations reach /metrics.
            github.observe(state.observer());
        }
        scrum_http::run(listener, state, shutdown)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Unavailable | ErrorKind::Corrupt | ErrorKind::Timeout => {
                    anyhow::anyhow!("DATABASE_URL {shown_url}: {e}")
                }
                _ => anyhow::Error::new(e),
            })?;
        tracing::info!("stopped");
        Ok(())
    }

    fn policy(&self) -> Policy {
        let a = &self.args;
        policy(&a.leases, &a.budgets, &a.locks, &a.follow_ups)
    }

    /// The SSH probe of the worker hosts, when both hosts and a key are configured.
    fn probe(&self) -> anyhow::Result<Option<Arc<dyn WorkerProbe>>> {
        let Some(ssh) = &self.ssh else {
            return Ok(None);
        };
        let probe = scrum_ssh::SshProbe::new(ssh.clone())
            .map_err(|e| anyhow::anyhow!("WORKER_SSH_KEY: {e}"))?;
        Ok(Some(Arc::new(probe)))
    }
}
