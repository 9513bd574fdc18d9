//! The orchestrator's wiring: the store, GitHub, the SSH probe and the engine, run
//! by [`scrum_http::run`] with the API in front.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use scrum_core::engine::{EngineConfig, Orchestrator, TrustMode};
use scrum_core::locks::LockRules;
use scrum_core::state::{Backoff, Policy};
use scrum_core::{ErrorKind, WorkerProbe};
use scrum_github::{GitHubClient, GitHubConfig};
use scrum_http::{ApiConfig, ApiState};

use super::cli::ServeArgs;

/// Everything the service needs, validated ([`ServeArgs::validate`]).
pub struct Service {
    pub(super) args: ServeArgs,
    pub(super) github: GitHubConfig,
    pub(super) api: ApiConfig,
    pub(super) state_dir: PathBuf,
    pub(super) database_url: String,
    pub(super) worker_hosts: Vec<String>,
}

impl Service {
    /// Runs the orchestrator until `shutdown` completes: opens the store, checks the
    /// GitHub token, then serves the API and runs the engine ([`scrum_http::run`]).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let a = &self.args;
        let shown_url = scrum_store::redact_url(&self.database_url);
        let mut policy = self.policy();
        let notifier = self.args.notify.notifier()?;
        if let Some((routes, _)) = &notifier {
            policy.notify = routes.clone();
        }
        let queue = scrum_store::open(&self.database_url, policy)
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL {shown_url}: {e}"))?;
        tracing::info!(store = %shown_url, "store open");
        let github = GitHubClient::new(self.github.clone()).map_err(anyhow::Error::msg)?;
        let read_only = github.check().await.map_err(|e| match e.kind() {
            ErrorKind::Unauthorized => anyhow::anyhow!("GITHUB_TOKEN was refused by GitHub: {e}"),
            _ => anyhow::anyhow!("GitHub at {}: {e}", a.github_api_url),
        })?;
        for (repo, granted) in &read_only {
            let why = format!(
                "GITHUB_TOKEN may read {repo} but not label its issues: it needs the triage or \
                 write permission there (it has: {granted})"
            );
            if !a.allow_read_only_repos {
                anyhow::bail!("{why}; grant it, or set ALLOW_READ_ONLY_REPOS=true to start anyway");
            }
            tracing::warn!(repository = %repo, "{why}; starting anyway (ALLOW_READ_ONLY_REPOS): its writes will be set aside and its tasks held");
        }
        let repos: Vec<String> = github.repos().iter().map(|r| r.to_string()).collect();
        tracing::info!(repos = ?repos, "GitHub token accepted");
        let mut github_status = github.subscribe_status();
        let mut builder =
            Orchestrator::builder(queue, Arc::new(github.clone())).config(EngineConfig {
                poll_interval: Duration::from_secs(a.github_poll_interval),
                probe_interval: Duration::from_secs(a.worker_health_check_interval),
                worker_forget_after: Duration::from_secs(a.worker_forget_secs),
                worker_hosts: self.worker_hosts.clone(),
                labels: self.github.labels.clone(),
                leader_ttl: Duration::from_secs(a.leader_ttl_secs),
                trust: a.trust_mode,
                review: scrum_core::review::ReviewSettings {
                    max_pending: a.max_pending_prs,
                    max_pending_total: a.max_pending_prs_total,
                    block_on_changes_requested: a.block_on_changes_requested,
                    rework_on_changes_requested: a.rework_on_changes_requested,
                },
                budgets: scrum_core::engine::Budgets {
                    repo_monthly_usd: a.repo_monthly_budget_usd,
                },
                scaling: scrum_core::engine::ScalingSettings {
                    max_workers: a.max_workers,
                    min_idle_workers: a.min_idle_workers,
                },
                ..EngineConfig::default()
            });
        match a.trust_mode {
            TrustMode::Off => {
                tracing::warn!(trust_mode = %a.trust_mode, "trust checks are off: every ready issue is queued and workers get its latest text, whoever wrote it")
            }
            mode => {
                tracing::info!(trust_mode = %mode, "only text approved by people with write access reaches an agent")
            }
        }
        if let Some((_, notifier)) = notifier {
            builder = builder.notifier(Arc::new(notifier));
        }
        if let Some(probe) = self.probe()? {
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
        let addr = SocketAddr::new(a.host, a.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (ORCHESTRATOR_HOST/ORCHESTRATOR_PORT)")
        })?;
        tracing::info!(addr = %listener.local_addr()?, "scrum-orchestrator {} listening", env!("CARGO_PKG_VERSION"));
        let state = ApiState::new(orchestrator, self.api);
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
        Policy {
            max_attempts: a.max_attempts,
            lease: Duration::from_secs(a.lease_secs),
            max_run: Duration::from_secs(a.max_run_secs),
            backoff: Backoff {
                initial: Duration::from_secs(a.retry_backoff_secs),
                cap: Duration::from_secs(15 * 60).max(Duration::from_secs(a.retry_backoff_secs)),
            },
            issue_budget_usd: a.issue_budget_usd,
            locks: LockRules {
                areas: a.lock_areas.0.clone(),
                barriers: a
                    .lock_barriers
                    .as_deref()
                    .map_or_else(|| LockRules::default().barriers, LockRules::parse_barriers),
            },
            ..Policy::default()
        }
    }

    /// The SSH probe of the worker hosts, when both hosts and a key are configured.
    fn probe(&self) -> anyhow::Result<Option<Arc<dyn WorkerProbe>>> {
        let a = &self.args;
        match (&a.worker_ssh_key, self.worker_hosts.is_empty()) {
            (Some(key), false) => {
                let mut ssh = scrum_ssh::SshProbeConfig::new(
                    &a.worker_ssh_user,
                    key,
                    self.state_dir.join("known_hosts"),
                );
                ssh.known_hosts = a.worker_ssh_known_hosts.clone();
                ssh.unit = a.worker_service_unit.clone();
                let probe = scrum_ssh::SshProbe::new(ssh)
                    .map_err(|e| anyhow::anyhow!("WORKER_SSH_KEY: {e}"))?;
                Ok(Some(Arc::new(probe)))
            }
            (None, false) => {
                tracing::warn!(
                    "WORKER_IPS is set but WORKER_SSH_KEY is not: worker hosts are not probed"
                );
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
