//! The scrum orchestrator's HTTP API (axum) and the client workers use (reqwest).
//!
//! Workers hold leases and only workers may touch work: with an API token every call
//! but `/health` and the signed webhook needs `Authorization: Bearer …`; without one
//! the work endpoints and the reads (`/queue`, `/workers`, `/metrics`,
//! `/openapi.json`) answer only loopback and `WORKER_IPS`, and the operator actions
//! only loopback (see [`ApiConfig`]). Clients written for the API of the Python
//! orchestrator this project replaces (no lease token, no heartbeats) keep working:
//! their reports are matched by worker and issue, and their tasks are held for the
//! maximum run time.
//!
//! # Layout
//!
//! - [`run`]: the one entry point for an orchestrator process: resumes leases, runs
//!   the engine's duties and serves the API until shutdown.
//! - [`server`]: [`app`] (the router, for `oneshot` tests) and [`serve`] (a real
//!   listener with graceful shutdown), over an [`ApiState`].
//! - [`wire`]: the JSON of every endpoint, shared by server and client.
//! - [`error`]: [`ApiError`], the one place engine errors become HTTP statuses, and
//!   the stable error `code`s.
//! - [`config`]: [`ApiConfig`] (token, allowed addresses, body limit, long-poll cap).
//! - [`client`]: [`OrchestratorClient`], typed methods for every endpoint with
//!   retries; it implements the worker loop's `WorkSource`.
//! - [`openapi`]: the OpenAPI 3.0 document served at `/openapi.json`.
//! - [`ui`]: the operators' dashboard at `/ui` (HTML, live over server-sent
//!   events, actions behind a confirmation and a CSRF token).
//! - [`notify`]: the notifier for Slack, Discord and signed JSON webhooks the
//!   engine sends the outbox's notifications through.
//! - `metrics`: what `/metrics` shows (Prometheus text format, or OpenMetrics on
//!   request): counters and histograms the engine reports into, gauges read per scrape.
//!
//! # Endpoints
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /health` | status, worker and task counts, GitHub and store status, version |
//! | `GET /work/next?worker_id=W[&wait=S][&lease=heartbeat]` | the next task; long-polls up to `wait` seconds |
//! | `POST /work/complete`, `/work/failed`, `/work/heartbeat`, `/work/release` | reports on a held task |
//! | `GET /workers`, `GET /queue?limit=&offset=` | what the orchestrator sees |
//! | `POST /admin/pause`, `/admin/resume`, `/admin/drain`, `/admin/retry`, `/admin/cancel` | operator actions |
//! | `GET /metrics`, `GET /openapi.json` | Prometheus text, the API description |
//! | `GET /` | a browser goes to `/ui`; others get the service's name, version and status |
//! | `GET /ui`, … | the dashboard ([`ui::ROUTES`]) |
//!
//! # Example
//!
//! One task's life over a real socket, with the in-memory backends:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::{sync::Arc, time::Duration};
//! use scrum_core::{engine::Orchestrator, memory::*, state::Policy, Labels, Timestamp};
//! use scrum_http::{ApiConfig, ApiState, OrchestratorClient, serve, wire::*};
//!
//! let source = Arc::new(MemoryIssueSource::new(Labels::default()));
//! source.open_issue("acme/widgets#1".parse().unwrap(), "Add a widget", &["ai-ready"], Timestamp(0));
//! let queue = Arc::new(MemoryQueue::new(Policy::default()));
//! let orchestrator = Orchestrator::builder(queue, source).build();
//! orchestrator.poll_once().await.unwrap();
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let url = format!("http://{}", listener.local_addr().unwrap());
//! let state = ApiState::new(orchestrator, ApiConfig::default());
//! tokio::spawn(serve(listener, state, std::future::pending()));
//!
//! let client = OrchestratorClient::new(&url).unwrap();
//! let work = client.next_work("worker-1", Duration::ZERO, LeaseMode::Heartbeat).await.unwrap().unwrap();
//! assert_eq!(work.repository, "acme/widgets");
//! let done = client.complete(&CompleteRequest {
//!     task: TaskRef {
//!         worker_id: "worker-1".into(),
//!         issue_number: work.issue_number,
//!         repository: Some(work.repository.clone()),
//!         lease_token: Some(work.lease_token.clone()),
//!     },
//!     pr_url: Some("https://github.com/acme/widgets/pull/2".into()),
//!     success: true, error: None, cost_usd: None, tokens: None, revisions: None,
//! }).await.unwrap();
//! assert_eq!(done.state, "completed");
//! # });
//! ```

pub mod client;
pub mod config;
pub mod error;
mod metrics;
pub mod notify;
pub mod openapi;
mod run;
pub mod server;
pub mod ui;
pub mod wire;

pub use client::OrchestratorClient;
pub use config::{ApiConfig, ApiToken};
pub use error::ApiError;
pub use notify::{NotifyTarget, WebhookNotifier};
pub use run::run;
pub use server::{ApiState, app, serve};
