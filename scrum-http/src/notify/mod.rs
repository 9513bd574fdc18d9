//! [`WebhookNotifier`]: the engine's [`Notifier`] for Slack (incoming webhook,
//! Block Kit), Discord (webhook, embeds) and any JSON webhook (signed with
//! HMAC-SHA256 in `X-Scrum-Signature: sha256=<hex>`).
//!
//! Each target is paced (Slack: one message a second per webhook, Discord: two),
//! a `429` is waited out for as long as `Retry-After` says (up to five minutes),
//! and a `5xx` or a lost connection is retried a few times with backoff before
//! the engine is told to try later. Webhook URLs are secrets: they appear in no
//! log, error or `Debug` output.

mod messages;

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use scrum_core::engine::{Notification, Notifier};
use scrum_core::state::NotifyEvent;
use scrum_core::{Error, Result, TaskId};
use sha2::Sha256;
use tokio::time::Instant;

/// What kind of target a URL is, and so what it is sent.
#[derive(Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A Slack incoming webhook: Block Kit messages.
    Slack,
    /// A Discord webhook: embeds.
    Discord,
    /// Any HTTP endpoint: this project's JSON, signed with `secret`.
    Webhook {
        /// The HMAC-SHA256 key of `X-Scrum-Signature`.
        secret: String,
    },
}

/// One place notifications go.
#[derive(Clone)]
pub struct NotifyTarget {
    name: &'static str,
    kind: TargetKind,
    url: String,
    spacing: Duration,
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is the credential: never shown.
        f.debug_struct("NotifyTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NotifyTarget {
    /// A Slack incoming webhook (`SLACK_WEBHOOK_URL`), target name `slack`.
    pub fn slack(url: &str) -> Result<NotifyTarget> {
        NotifyTarget::new(
            "slack",
            TargetKind::Slack,
            url,
            Duration::from_secs(1),
            "SLACK_WEBHOOK_URL",
        )
    }

    /// A Discord webhook (`DISCORD_WEBHOOK_URL`), target name `discord`.
    pub fn discord(url: &str) -> Result<NotifyTarget> {
        NotifyTarget::new(
            "discord",
            TargetKind::Discord,
            url,
            Duration::from_millis(500),
            "DISCORD_WEBHOOK_URL",
        )
    }

    /// Any JSON webhook (`NOTIFY_WEBHOOK_URL`) signed with `secret`, target name
    /// `webhook`.
    pub fn webhook(url: &str, secret: &str) -> Result<NotifyTarget> {
        if secret.len() < 16 {
            return Err(Error::invalid(
                "NOTIFY_WEBHOOK_SECRET must be at least 16 characters (it signs every notification)",
            ));
        }
        let kind = TargetKind::Webhook {
            secret: secret.to_string(),
        };
        NotifyTarget::new("webhook", kind, url, Duration::ZERO, "NOTIFY_WEBHOOK_URL")
    }

    fn new(
        name: &'static str,
        kind: TargetKind,
        url: &str,
        spacing: Duration,
        variable: &str,
    ) -> Result<NotifyTarget> {
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
            return Err(Error::invalid(format!(
                "{variable} must be an http:// or https:// URL"
            )));
        }
        Ok(NotifyTarget {
            name,
            kind,
            url: url.to_string(),
            spacing,
        })
    }

    /// The target's name: `slack`, `discord` or `webhook`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

struct Target {
    config: NotifyTarget,
    /// When the last message went out: one at a time per target, paced.
    last_sent: tokio::sync::Mutex<Option<Instant>>,
}

/// Sends notifications to Slack, Discord and JSON webhooks.
pub struct WebhookNotifier {
    targets: Vec<Target>,
    http: reqwest::Client,
    retries: u32,
    backoff: Duration,
    /// The longest `Retry-After` waited out in place; longer, the engine retries later.
    max_retry_after: Duration,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.targets.iter().map(|t| t.config.name).collect();
        f.debug_struct("WebhookNotifier")
            .field("targets", &names)
            .finish_non_exhaustive()
    }
}

/// What one request's answer means.
enum Answer {
    Sent,
    /// Wait this long, then send again (a 429).
    WaitThen(Duration),
    /// A passing fault: back off and retry.
    Transient(Error),
    /// Refused: tell the engine.
    Refused(Error),
}

impl WebhookNotifier {
    /// A notifier for `targets`.
    pub fn new(targets: Vec<NotifyTarget>) -> Result<WebhookNotifier> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::invalid("could not build the HTTP client").with_source(e))?;
        Ok(WebhookNotifier {
            targets: targets
                .into_iter()
                .map(|config| Target {
                    config,
                    last_sent: tokio::sync::Mutex::new(None),
                })
                .collect(),
            http,
            retries: 3,
            backoff: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(300),
        })
    }

    /// Backs off from `backoff` (doubling) between retries of a server error
    /// (default 1 s).
    pub fn with_backoff(mut self, backoff: Duration) -> WebhookNotifier {
        self.backoff = backoff;
        self
    }

    /// Sends a test message to every target; each target's outcome.
    pub async fn send_test(&self) -> Vec<(&'static str, Result<()>)> {
        let mut out = Vec::new();
        for t in &self.targets {
            let note = Notification {
                id: 0,
                target: t.config.name.to_string(),
                event: NotifyEvent::Completed,
                task: TaskId::new("scrum-orchestrator/test", 1).expect("a valid id"),
                title: "Test message: notifications reach this channel".to_string(),
                detail: Some("Sent by `scrum-orchestrator notify test`.".to_string()),
                attempts: 1,
                max_attempts: 1,
            };
            out.push((t.config.name, self.send(&note).await));
        }
        out
    }

    async fn send_to(&self, t: &Target, note: &Notification) -> Result<()> {
        let test = note.id == 0;
        let body = match &t.config.kind {
            TargetKind::Slack => messages::slack(note),
            TargetKind::Discord => messages::discord(note),
            TargetKind::Webhook { .. } => messages::webhook(note, test),
        };
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        let mut last = t.last_sent.lock().await;
        let (mut retries, mut waits) = (0, 0);
        loop {
            if let Some(at) = *last {
                tokio::time::sleep_until(at + t.config.spacing).await;
            }
            let answer = self.post(t, note, &body, test).await;
            *last = Some(Instant::now());
            match answer {
                Answer::Sent => return Ok(()),
                Answer::WaitThen(wait) if waits < 5 && wait <= self.max_retry_after => {
                    waits += 1;
                    tracing::info!(target = t.config.name, wait = ?wait, "notification target asked us to wait (429)");
                    tokio::time::sleep(wait).await;
                }
                Answer::WaitThen(wait) => {
                    return Err(Error::new(
                        scrum_core::ErrorKind::RateLimited,
                        format!("the {} webhook rate limits us", t.config.name),
                    )
                    .with_retry_after(wait));
                }
                Answer::Transient(e) if retries < self.retries => {
                    retries += 1;
                    tokio::time::sleep(self.backoff.saturating_mul(1 << (retries - 1))).await;
                    tracing::debug!(target = t.config.name, error = %e, retry = retries, "notification failed; retrying");
                }
                Answer::Transient(e) | Answer::Refused(e) => return Err(e),
            }
        }
    }

    async fn post(&self, t: &Target, note: &Notification, body: &[u8], test: bool) -> Answer {
        let name = t.config.name;
        let mut request = self
            .http
            .post(&t.config.url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("scrum-orchestrator/", env!("CARGO_PKG_VERSION")),
            );
        if let TargetKind::Webhook { secret } = &t.config.kind {
            let event = if test { "test" } else { note.event.as_str() };
            request = request
                .header("x-scrum-event", event)
                .header("x-scrum-delivery", note.id.to_string())
                .header("x-scrum-signature", signature(secret, body));
        }
        let response = match request.body(body.to_vec()).send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Transient(Error::unavailable(format!(
                    "could not reach the {name} webhook: {}",
                    e.without_url()
                )));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Sent;
        }
        if status.as_u16() == 429 {
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map_or(Duration::from_secs(1), Duration::from_secs_f64);
            return Answer::WaitThen(wait);
        }
        let e = format!("the {name} webhook answered {status}");
        if status.is_server_error() {
            Answer::Transient(Error::unavailable(e))
        } else {
            Answer::Refused(Error::invalid(e))
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn targets(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| t.config.name.to_string())
            .collect()
    }

    async fn send(&self, note: &Notification) -> Result<()> {
        let target = self
            .targets
            .iter()
            .find(|t| t.config.name == note.target)
            .ok_or_else(|| Error::invalid(format!("no notification target {}", note.target)))?;
        self.send_to(target, note).await
    }
}
