//! The settings of the HTTP API: where it listens and who may call it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use clap::Args;
use scrum_github::webhook::WebhookSecret;
use scrum_http::{ApiConfig, ApiToken};

use crate::runner::Secret;

/// Where the HTTP API listens.
#[derive(Debug, Args)]
#[command(next_help_heading = "HTTP listener")]
pub struct ListenerArgs {
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
}

impl ListenerArgs {
    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// Who may call the API.
#[derive(Debug, Args)]
#[command(next_help_heading = "API")]
pub struct ApiArgs {
    /// Bearer token every API call but /health and the signed webhook must carry.
    /// Without one, /work/* and the reads (/queue, /workers, /metrics, /openapi.json)
    /// answer only loopback and WORKER_IPS, and /admin/* actions only loopback.
    #[arg(
        long,
        env = "ORCHESTRATOR_API_TOKEN",
        value_name = "ORCHESTRATOR_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,
}

impl ApiArgs {
    /// The API's configuration: the token, the worker hosts allowed without one
    /// (parsed now: a bad entry is a start-up error, not an allow-list gap) and the
    /// webhook's secret. Each error names the variable to fix.
    pub fn validate(
        &self,
        worker_hosts: &[String],
        webhook: Option<Arc<WebhookSecret>>,
    ) -> anyhow::Result<ApiConfig> {
        let mut api = ApiConfig::default()
            .with_worker_hosts(worker_hosts)
            .map_err(anyhow::Error::msg)?;
        if let Some(t) = &self.api_token {
            api.token = Some(
                ApiToken::new(t.expose())
                    .map_err(|e| anyhow::anyhow!("ORCHESTRATOR_API_TOKEN: {e}"))?,
            );
        }
        api.webhook = webhook.map(|w| w as _);
        Ok(api)
    }
}
