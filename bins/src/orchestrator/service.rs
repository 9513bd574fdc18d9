//! The orchestrator's wiring: the store, GitHub, the SSH probe and the engine, run
//! by [`scrum_http::run`] with the API in front.

use std::sync::Arc;

use anyhow::Context;
use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::state::Policy;
use scrum_core::{ErrorKind, WorkerProbe};
use scrum_github::{GitHubClient, GitHubConfig};
use scrum_http::{ApiConfig, ApiState};
use scrum_ssh::SshProbeConfig;

use super::notify::Notifications;
use super::settings::ServeArgs;
use super::settings::policy::policy;
use super::settings::store::StoreSettings;

/// Everything the service needs, validated ([`ServeArgs::validate`]).
pub struct Service {
    pub(super) args: ServeArgs,
    pub(super) github: GitHubConfig,
    pub(super) api: ApiConfig,
    pub(super) store: StoreSettings,
    /// The SSH probe's configuration, when worker hosts are probed.
    pub(super) ssh: Option<SshProbeConfig>,
    pub(super) notifier: Notifications,
    pub(super) worker_hosts: Vec<String>,
}

impl Service {
    /// Runs the orchestrator until `shutdown` completes: opens the store, checks the
    /// GitHub token, then serves the API and runs the engine ([`scrum_http::run`]).
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
        let github = GitHubClient::new(self.github.clone()).map_err(anyhow::Error::msg)?;
        let who = match self.github.is_app() {
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
        let mut github_status = github.subscribe_status();
        let mut builder =
            Orchestrator::builder(queue, Arc::new(github.clone())).config(EngineConfig {
                poll_interval: a.github.poll_interval(),
                probe_interval: a.ssh.interval(),
                worker_forget_after: a.workers.forget_after(),
                worker_hosts: self.worker_hosts.clone(),
                labels: scrum_core::Labels {
                    fixing: a.follow_ups.follow_up_label.clone(),
                    ..self.github.labels.clone()
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
        {
            // GitHub's own view (a rate limit being waited out) reaches /health at once.
            let o = orchestrator.clone();
            tokio::spawn(async move {
                while github_status.changed().await.is_ok() {
                    let s = github_status.borrow_and_update().clone();
                    o.report_source_health(
                        s.is_connected(),
                        s.degraded_reason().map(str::to_string),
                    );
                    let reset = s.rate_limit_reset.map(|secs| {
                        scrum_core::Timestamp(i64::try_from(secs).unwrap_or(0).saturating_mul(1000))
                    });
                    o.report_rate_limit(s.rate_limit_remaining, reset);
                }
            });
        }
        let addr = a.listener.addr();
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (ORCHESTRATOR_HOST/ORCHESTRATOR_PORT)")
        })?;
        tracing::info!(addr = %listener.local_addr()?, "scrum-orchestrator {} listening", env!("CARGO_PKG_VERSION"));
        let mut api = self.api;
        if self.github.is_app() {
            // Workers get a short-lived token for their task's repository.
            api.credentials = Some(Arc::new(github.clone()));
        }
        let state = ApiState::new(orchestrator, api);
        // GitHub's request durations reach /metrics.
        github.observe(state.observer());
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
