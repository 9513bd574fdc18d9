//! `scrum-orchestrator`: configuration (environment variables with the seed's names,
//! each also a flag), wiring of the store, GitHub, the SSH probe and the HTTP API,
//! and the operator subcommands that talk to a running orchestrator.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::{Args, Parser, Subcommand};
use scrum_core::engine::{EngineConfig, Orchestrator};
use scrum_core::state::{Backoff, Policy};
use scrum_core::{ErrorKind, Labels, TaskId, WorkerProbe};
use scrum_github::config::Timing;
use scrum_github::webhook::{self, WebhookSecret};
use scrum_github::{GitHubClient, GitHubConfig};
use scrum_http::{ApiConfig, ApiState, ApiToken, OrchestratorClient};

use crate::runner::Secret;

/// The orchestrator: polls GitHub for ready issues, hands each to one worker at a time
/// over HTTP, watches the workers, retries what fails and writes outcomes back.
///
/// With no subcommand it runs the service. Every option is also an environment
/// variable (the name in capitals after it), with the seed's names and defaults.
#[derive(Debug, Parser)]
#[command(name = "scrum-orchestrator", version)]
pub struct OrchestratorCli {
    /// An operator action against a running orchestrator; none runs the service.
    #[command(subcommand)]
    pub command: Option<Operator>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,
}

/// Operator subcommands: each calls a running orchestrator's HTTP API.
#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Health, queue counts and workers at a glance.
    Status(Remote),
    /// The tasks in each state.
    Queue(Remote),
    /// The workers and their hosts' health.
    Workers(Remote),
    /// Starts a new run of a failed or cancelled task (`owner/repo#N`).
    Retry {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// The task, `owner/repo#N`.
        task: TaskId,
    },
    /// Cancels a task (`owner/repo#N`).
    Cancel {
        #[command(flatten)]
        #[allow(missing_docs)]
        remote: Remote,
        /// The task, `owner/repo#N`.
        task: TaskId,
        /// Why (shown in the logs).
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
}

/// Where the running orchestrator is.
#[derive(Debug, Args)]
pub struct Remote {
    /// The orchestrator's URL.
    #[arg(
        long,
        env = "ORCHESTRATOR_URL",
        value_name = "ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub url: String,
    /// The API token, when the orchestrator has one.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
}

/// The service's configuration.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "ORCHESTRATOR_HOST",
        value_name = "ORCHESTRATOR_HOST",
        default_value = "0.0.0.0"
    )]
    pub host: IpAddr,
    /// Port the HTTP API listens on.
    #[arg(
        long,
        env = "ORCHESTRATOR_PORT",
        value_name = "ORCHESTRATOR_PORT",
        default_value_t = 8000
    )]
    pub port: u16,
    /// Bearer token every API call but /health must carry. Without one, work endpoints
    /// answer only loopback and WORKER_IPS.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,
    /// GitHub token that can read and label issues (required).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        value_name = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<Secret>,
    /// The repository to watch, owner/name.
    #[arg(long, env = "GITHUB_REPO", value_name = "GITHUB_REPO")]
    pub github_repo: Option<String>,
    /// Several repositories, comma-separated (instead of GITHUB_REPO).
    #[arg(long, env = "GITHUB_REPOS", value_name = "GITHUB_REPOS")]
    pub github_repos: Option<String>,
    /// Labels an issue must carry (all of them, comma-separated) to be queued.
    #[arg(
        long,
        env = "GITHUB_ISSUE_LABELS",
        value_name = "GITHUB_ISSUE_LABELS",
        default_value = "ai-ready"
    )]
    pub github_issue_labels: String,
    /// Seconds between GitHub polls.
    #[arg(long, env = "GITHUB_POLL_INTERVAL", value_name = "GITHUB_POLL_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub github_poll_interval: u64,
    /// GitHub's API base (point it at a GitHub Enterprise server or a test server).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        value_name = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// Secret of the GitHub webhook (POST /webhooks/github); without it the route is off.
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        value_name = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub github_webhook_secret: Option<Secret>,
    /// Worker hosts, comma-separated IPs: probed over SSH, allowed to call without a token.
    #[arg(
        long,
        env = "WORKER_IPS",
        value_name = "WORKER_IPS",
        default_value = ""
    )]
    pub worker_ips: String,
    /// Private key for SSH checks of the worker hosts (ed25519 or RSA, unencrypted).
    #[arg(long, env = "WORKER_SSH_KEY", value_name = "WORKER_SSH_KEY")]
    pub worker_ssh_key: Option<PathBuf>,
    /// User for SSH checks.
    #[arg(
        long,
        env = "WORKER_SSH_USER",
        value_name = "WORKER_SSH_USER",
        default_value = "root"
    )]
    pub worker_ssh_user: String,
    /// A known_hosts file to check worker host keys against (default: pin on first use).
    #[arg(
        long,
        env = "WORKER_SSH_KNOWN_HOSTS",
        value_name = "WORKER_SSH_KNOWN_HOSTS"
    )]
    pub worker_ssh_known_hosts: Option<PathBuf>,
    /// The worker's systemd unit on each host.
    #[arg(
        long,
        env = "WORKER_SERVICE_UNIT",
        value_name = "WORKER_SERVICE_UNIT",
        default_value = "ai-scrum-worker"
    )]
    pub worker_service_unit: String,
    /// Seconds between SSH checks of the worker hosts.
    #[arg(long, env = "WORKER_HEALTH_CHECK_INTERVAL", value_name = "WORKER_HEALTH_CHECK_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_health_check_interval: u64,
    /// Log level: ERROR, WARN, INFO, DEBUG or TRACE.
    #[arg(
        long,
        env = "LOG_LEVEL",
        value_name = "LOG_LEVEL",
        default_value = "INFO"
    )]
    pub log_level: String,
    /// Where the SQLite store and pinned host keys live
    /// (default $XDG_STATE_HOME/scrum-orchestrator, else ~/.local/state/scrum-orchestrator).
    #[arg(long, env = "STATE_DIR", value_name = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The store: a SQLite path or sqlite:// URL (default: a file in STATE_DIR),
    /// postgres://… or redis://… to share state between orchestrators.
    /// `?synchronous=normal|full` sets how durable a commit is; `?schema=NAME`
    /// (PostgreSQL) or `?prefix=NAME` (Redis) keeps fleets apart on one server.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Attempts per issue before it is marked failed.
    #[arg(long, env = "MAX_ATTEMPTS", value_name = "MAX_ATTEMPTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Seconds a worker's lease lasts without a heartbeat.
    #[arg(long, env = "LEASE_SECS", value_name = "LEASE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..))]
    pub lease_secs: u64,
    /// Seconds the leader's lease lasts without renewal. With several orchestrators
    /// on one store, one leads (polls GitHub, reaps leases, writes labels) and renews
    /// its lease every second; when it dies another takes over within about this long.
    #[arg(long, env = "LEADER_TTL_SECS", value_name = "LEADER_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub leader_ttl_secs: u64,
    /// The longest a task may be held, heartbeats or not (also what clients that never
    /// send heartbeats get).
    #[arg(long, env = "MAX_RUN_SECS", value_name = "MAX_RUN_SECS", default_value_t = 3 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub max_run_secs: u64,
    /// The least time between two writes to GitHub, in milliseconds (GitHub asks for a
    /// second, to stay clear of its secondary rate limits).
    #[arg(
        long,
        env = "GITHUB_WRITE_SPACING_MS",
        value_name = "GITHUB_WRITE_SPACING_MS",
        default_value_t = 1000
    )]
    pub github_write_spacing_ms: u64,
    /// Seconds before a failed attempt is retried (doubling, with jitter, up to 15 min).
    #[arg(
        long,
        env = "RETRY_BACKOFF_SECS",
        value_name = "RETRY_BACKOFF_SECS",
        default_value_t = 30
    )]
    pub retry_backoff_secs: u64,
}

/// Everything the service needs, validated.
pub struct Service {
    args: ServeArgs,
    github: GitHubConfig,
    state_dir: PathBuf,
    database_url: String,
    worker_hosts: Vec<String>,
}

impl ServeArgs {
    /// Checks the configuration; each error names the variable to fix.
    pub fn validate(self) -> anyhow::Result<Service> {
        let token = self
            .github_token
            .as_ref()
            .context("GITHUB_TOKEN is not set: the orchestrator needs a token that can read and label issues")?;
        let repos_text = match (&self.github_repo, &self.github_repos) {
            (_, Some(list)) if !list.trim().is_empty() => ("GITHUB_REPOS", list.as_str()),
            (Some(one), _) if !one.trim().is_empty() => ("GITHUB_REPO", one.as_str()),
            _ => bail!(
                "neither GITHUB_REPO nor GITHUB_REPOS is set: name the repository to watch (owner/name)"
            ),
        };
        let repos = scrum_github::config::parse_repos(repos_text.0, repos_text.1)
            .map_err(anyhow::Error::msg)?;
        let labels = Labels {
            ready: scrum_github::config::parse_ready_labels(&self.github_issue_labels),
            ..Labels::default()
        };
        if labels.ready.is_empty() {
            bail!("GITHUB_ISSUE_LABELS is empty: name at least one label, e.g. ai-ready");
        }
        let github = GitHubConfig::new(token.expose(), repos)
            .and_then(|c| c.with_api_url(&self.github_api_url))
            .and_then(|c| c.with_labels(labels))
            .map_err(anyhow::Error::msg)?
            .with_timing(Timing {
                write_spacing: Duration::from_millis(self.github_write_spacing_ms),
                ..Timing::default()
            });
        let worker_hosts: Vec<String> = self
            .worker_ips
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        // Checked now so a bad entry is a start-up error, not a silent allow-list gap.
        ApiConfig::default()
            .with_worker_hosts(&worker_hosts)
            .map_err(anyhow::Error::msg)?;
        if let Some(key) = &self.worker_ssh_key {
            if !key.is_file() {
                bail!("WORKER_SSH_KEY {} is not a readable file", key.display());
            }
        }
        crate::logging::parse_level(&self.log_level)?;
        let state_dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir()
                .context("STATE_DIR is not set and neither XDG_STATE_HOME nor HOME is")?,
        };
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("STATE_DIR {} cannot be created", state_dir.display()))?;
        let database_url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => scrum_store::default_sqlite_path(&state_dir)
                .display()
                .to_string(),
        };
        Ok(Service {
            args: self,
            github,
            state_dir,
            database_url,
            worker_hosts,
        })
    }
}

/// `$XDG_STATE_HOME/scrum-orchestrator`, else `~/.local/state/scrum-orchestrator`.
pub fn default_state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("scrum-orchestrator"))
}

impl Service {
    /// Runs the orchestrator until `shutdown` completes: opens the store, checks the
    /// GitHub token, serves the API and runs the leader's duties.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let a = &self.args;
        let policy = Policy {
            max_attempts: a.max_attempts,
            lease: Duration::from_secs(a.lease_secs),
            max_run: Duration::from_secs(a.max_run_secs),
            backoff: Backoff {
                initial: Duration::from_secs(a.retry_backoff_secs),
                cap: Duration::from_secs(15 * 60).max(Duration::from_secs(a.retry_backoff_secs)),
            },
            ..Policy::default()
        };
        let shown_url = scrum_store::redact_url(&self.database_url);
        let queue = scrum_store::open(&self.database_url, policy)
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL {shown_url}: {e}"))?;
        tracing::info!(store = %shown_url, "store open");
        let github = GitHubClient::connect(self.github.clone())
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Unauthorized => {
                    anyhow::anyhow!("GITHUB_TOKEN was refused by GitHub: {e}")
                }
                _ => anyhow::anyhow!("GitHub at {}: {e}", a.github_api_url),
            })?;
        let repos: Vec<String> = github.repos().iter().map(|r| r.to_string()).collect();
        tracing::info!(repos = ?repos, "GitHub token accepted");
        let mut github_status = github.subscribe_status();
        let mut builder = Orchestrator::builder(queue, Arc::new(github)).config(EngineConfig {
            poll_interval: Duration::from_secs(a.github_poll_interval),
            probe_interval: Duration::from_secs(a.worker_health_check_interval),
            worker_hosts: self.worker_hosts.clone(),
            labels: self.github.labels.clone(),
            leader_ttl: Duration::from_secs(a.leader_ttl_secs),
            ..EngineConfig::default()
        });
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
                builder = builder.probe(Arc::new(probe) as Arc<dyn WorkerProbe>);
            }
            (None, false) => tracing::warn!(
                "WORKER_IPS is set but WORKER_SSH_KEY is not: worker hosts are not probed"
            ),
            _ => {}
        }
        let orchestrator = builder.build();
        // Workers that kept running while no orchestrator served them get one lease
        // period to report in, before this one serves them and reaps.
        orchestrator
            .resume_leases()
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL {shown_url}: {e}"))?;
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
                }
            });
        }
        let mut api = ApiConfig::default()
            .with_worker_hosts(&self.worker_hosts)
            .map_err(anyhow::Error::msg)?;
        if let Some(t) = &a.api_token {
            api.token = Some(
                ApiToken::new(t.expose())
                    .map_err(|e| anyhow::anyhow!("ORCHESTRATOR_API_TOKEN: {e}"))?,
            );
        }
        let mut router = scrum_http::server::app(ApiState::new(orchestrator.clone(), api));
        if let Some(secret) = &a.github_webhook_secret {
            let secret = WebhookSecret::new(secret.expose())
                .map_err(|e| anyhow::anyhow!("GITHUB_WEBHOOK_SECRET: {e}"))?;
            let hook = Arc::new((secret, orchestrator.clone()));
            router = router.merge(
                axum::Router::new()
                    .route("/webhooks/github", post(github_webhook))
                    .with_state(hook),
            );
        }
        let addr = SocketAddr::new(a.host, a.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (ORCHESTRATOR_HOST/ORCHESTRATOR_PORT)")
        })?;
        tracing::info!(addr = %listener.local_addr()?, "scrum-orchestrator {} listening", env!("CARGO_PKG_VERSION"));

        let stop = tokio_util::sync::CancellationToken::new();
        let server = {
            let stop = stop.clone();
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            })
        };
        let engine = {
            let (o, stop) = (orchestrator.clone(), stop.clone());
            tokio::spawn(async move { o.run(stop.cancelled_owned()).await })
        };
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        stop.cancel();
        engine.await.context("engine task")?;
        server
            .await
            .context("HTTP server task")?
            .context("HTTP server")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The `POST /webhooks/github` route: outside the API's bearer-token guard, since
/// GitHub signs its deliveries instead.
pub fn webhook_router(secret: WebhookSecret, orchestrator: Orchestrator) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/github", post(github_webhook))
        .with_state(Arc::new((secret, orchestrator)))
}

/// `POST /webhooks/github`: a verified `issues` event makes the poll run now.
async fn github_webhook(
    State(hook): State<Arc<(WebhookSecret, Orchestrator)>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match webhook::affected_task(
        &hook.0,
        header("x-github-event"),
        header("x-hub-signature-256"),
        &body,
    ) {
        Ok(Some(task)) => {
            tracing::info!(task = %task, "webhook: issue changed; polling now");
            hook.1.request_poll();
            (StatusCode::ACCEPTED, format!("polling for {task}"))
        }
        Ok(None) => (StatusCode::OK, "ignored".into()),
        Err(e) if e.kind() == ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, e.to_string()),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Runs an operator subcommand and prints its answer as JSON.
pub async fn operate(op: Operator) -> anyhow::Result<()> {
    let remote = match &op {
        Operator::Status(r) | Operator::Queue(r) | Operator::Workers(r) => r,
        Operator::Retry { remote, .. } | Operator::Cancel { remote, .. } => remote,
    };
    let mut client = OrchestratorClient::new(&remote.url).map_err(anyhow::Error::msg)?;
    if let Some(t) = &remote.token {
        client = client.with_token(ApiToken::new(t.expose()).map_err(anyhow::Error::msg)?);
    }
    let reach = |e: scrum_core::Error| anyhow::anyhow!("orchestrator at {}: {e}", remote.url);
    let out = match &op {
        Operator::Status(_) => serde_json::to_value(client.health().await.map_err(reach)?)?,
        Operator::Queue(_) => {
            serde_json::to_value(client.queue(&Default::default()).await.map_err(reach)?)?
        }
        Operator::Workers(_) => serde_json::to_value(client.workers().await.map_err(reach)?)?,
        Operator::Retry { task, .. } => {
            serde_json::to_value(client.retry(task).await.map_err(reach)?)?
        }
        Operator::Cancel { task, reason, .. } => {
            serde_json::to_value(client.cancel(task, reason).await.map_err(reach)?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use scrum_core::engine::Orchestrator;
    use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
    use scrum_core::state::Policy;
    use scrum_core::{Labels, Timestamp, WorkQueue};
    use scrum_github::webhook::{WebhookSecret, sign};
    use tower::ServiceExt;

    use super::webhook_router;

    const LABELED: &str =
        r#"{"action":"labeled","issue":{"number":7},"repository":{"full_name":"acme/widgets"}}"#;

    fn post(event: &str, signature: Option<String>, body: &str) -> Request<Body> {
        let mut req = Request::post("/webhooks/github").header("x-github-event", event);
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn a_signed_issue_event_triggers_a_poll_and_a_forged_one_is_refused() {
        let source = Arc::new(MemoryIssueSource::new(Labels::default()));
        let queue = Arc::new(MemoryQueue::new(Policy::default()));
        let orchestrator = Orchestrator::builder(queue.clone(), source.clone()).build();
        let secret = WebhookSecret::new("s3cret").unwrap();
        let router = webhook_router(WebhookSecret::new("s3cret").unwrap(), orchestrator.clone());

        let forged = router
            .clone()
            .oneshot(post("issues", Some("sha256=00".into()), LABELED))
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        let unsigned = router
            .clone()
            .oneshot(post("issues", None, LABELED))
            .await
            .unwrap();
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        let garbage = "{not json";
        let bad = router
            .clone()
            .oneshot(post(
                "issues",
                Some(sign(&secret, garbage.as_bytes())),
                garbage,
            ))
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let ping = router
            .clone()
            .oneshot(post("ping", Some(sign(&secret, b"{}")), "{}"))
            .await
            .unwrap();
        assert_eq!(ping.status(), StatusCode::OK);

        // A signed event wakes the poll loop, which queues the newly labelled issue.
        source.open_issue(
            "acme/widgets#7".parse().unwrap(),
            "New",
            &["ai-ready"],
            Timestamp(0),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let engine = {
            let (o, stop) = (orchestrator.clone(), stop.clone());
            tokio::spawn(async move { o.run(stop.cancelled_owned()).await })
        };
        // The first round polls at start; wait for it, so the event is what triggers the next.
        while orchestrator.status().last_poll.is_none() {
            tokio::task::yield_now().await;
        }
        source.open_issue(
            "acme/widgets#8".parse().unwrap(),
            "Newer",
            &["ai-ready"],
            Timestamp(1),
        );
        let ok = router
            .oneshot(post(
                "issues",
                Some(sign(&secret, LABELED.as_bytes())),
                LABELED,
            ))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::ACCEPTED);
        let started = std::time::Instant::now();
        while queue
            .get(&"acme/widgets#8".parse().unwrap())
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "the webhook did not trigger a poll"
            );
            tokio::task::yield_now().await;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "queued in well under a second"
        );
        stop.cancel();
        engine.await.unwrap();
    }
}
