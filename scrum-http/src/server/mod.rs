//! The axum server: [`app`] builds the router (test it with `oneshot`), [`serve`]
//! runs it on a listener until shutdown.

pub(crate) mod admin;
mod extract;
mod guard;
mod review;
pub(crate) mod views;
mod webhook;
mod work;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use scrum_core::IssueEvents;
use scrum_core::engine::Orchestrator;
use tokio::net::TcpListener;

use crate::config::ApiConfig;
use crate::metrics::Metrics;

pub use guard::Peer;

/// What every handler shares: the engine, the API's configuration and its counters.
/// Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<StateInner>,
}

struct StateInner {
    orchestrator: Orchestrator,
    config: ApiConfig,
    metrics: Arc<Metrics>,
    /// Set when the server shuts down, so endless responses (the dashboard's
    /// event streams) end and graceful shutdown does not wait on them.
    closing: tokio::sync::watch::Sender<bool>,
}

impl ApiState {
    /// The state for a server in front of `orchestrator`.
    pub fn new(orchestrator: Orchestrator, config: ApiConfig) -> ApiState {
        let metrics = Arc::new(Metrics::new());
        orchestrator.observe(metrics.clone());
        ApiState {
            inner: Arc::new(StateInner {
                orchestrator,
                config,
                metrics,
                closing: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    fn webhook(&self) -> Option<&Arc<dyn IssueEvents>> {
        self.inner.config.webhook.as_ref()
    }

    fn gitlab_webhook(&self) -> Option<&Arc<dyn IssueEvents>> {
        self.inner.config.gitlab_webhook.as_ref()
    }

    /// The engine.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.inner.orchestrator
    }

    /// The API's configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// What the metrics at `/metrics` count: hand it to the issue source's client
    /// (the engine's claims and reports reach it already), e.g.
    /// `GitHubClient::observe`, for the request durations.
    pub fn observer(&self) -> Arc<dyn scrum_core::observe::Observer> {
        self.inner.metrics.clone()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Becomes `true` when the server shuts down.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("orchestrator", &self.inner.orchestrator)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Every route the API serves, as (method, path). The OpenAPI document is tested
/// against this list, and this list against the router.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/work/next"),
    ("post", "/work/complete"),
    ("post", "/work/failed"),
    ("post", "/work/heartbeat"),
    ("post", "/work/release"),
    ("post", "/work/clarify"),
    ("get", "/workers"),
    ("get", "/workers/{id}/logs"),
    ("get", "/queue"),
    ("post", "/admin/pause"),
    ("post", "/admin/resume"),
    ("post", "/admin/drain"),
    ("post", "/admin/retry"),
    ("post", "/admin/cancel"),
    ("get", "/admin/effects"),
    ("post", "/admin/effects/retry"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/webhooks/github"),
    ("post", "/webhooks/gitlab"),
    ("get", "/pr-review/status"),
    ("post", "/pr-review/{state}/{number}"),
    ("get", "/scaling"),
];

/// The router: the API, and the dashboard at `/ui` ([`crate::ui`]). Peer addresses come from `ConnectInfo<SocketAddr>`: [`serve`] provides
/// it; `oneshot` tests insert it as a request extension (without it a caller counts
/// as remote).
pub fn app(state: ApiState) -> Router {
    let limit = state.config().body_limit;
    Router::new()
        .route("/health", get(views::health))
        .route("/work/next", get(work::next))
        .route("/work/complete", post(work::complete))
        .route("/work/failed", post(work::failed))
        .route("/work/heartbeat", post(work::heartbeat))
        .route("/work/release", post(work::release))
        .route("/work/clarify", post(work::clarify))
        .route("/workers", get(views::workers))
        .route("/workers/{id}/logs", get(views::worker_logs))
        .route("/queue", get(views::queue))
        .route("/admin/pause", post(admin::pause))
        .route("/admin/resume", post(admin::resume))
        .route("/admin/drain", post(admin::drain))
        .route("/admin/retry", post(admin::retry))
        .route("/admin/cancel", post(admin::cancel))
        .route("/admin/effects", get(admin::effects))
        .route("/admin/effects/retry", post(admin::retry_effects))
        .route("/metrics", get(views::metrics))
        .route("/openapi.json", get(views::openapi))
        .route("/webhooks/github", post(webhook::github))
        .route("/webhooks/gitlab", post(webhook::gitlab))
        .route("/pr-review/status", get(review::status))
        .route("/pr-review/{state}/{number}", post(review::mark))
        .route("/scaling", get(review::scaling))
        .route("/", get(crate::ui::root))
        .merge(crate::ui::routes())
        .fallback(guard::no_route)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets requests in
/// flight finish (a long poll ends within the configured maximum wait). Logs who
/// may call the work endpoints.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "HTTP API listening; {}", state.config().access_summary());
    let closing = state.inner.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
