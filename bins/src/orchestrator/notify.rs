//! The notification settings (`SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`,
//! `NOTIFY_WEBHOOK_URL` with `NOTIFY_WEBHOOK_SECRET`, `NOTIFY_EVENTS`) and
//! `scrum-orchestrator notify test`.

use anyhow::bail;
use clap::Args;
use scrum_core::state::NotifyEvent;
use scrum_http::{NotifyTarget, WebhookNotifier};

use crate::runner::Secret;

/// Where notifications go, and which.
#[derive(Debug, Args)]
#[command(next_help_heading = "Notifications")]
pub struct NotifyArgs {
    /// A Slack incoming webhook: Block Kit messages, one a second at most. Unset:
    /// nothing goes to Slack.
    #[arg(
        long,
        env = "SLACK_WEBHOOK_URL",
        value_name = "SLACK_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub slack_webhook_url: Option<Secret>,
    /// A Discord webhook: embeds. Unset: nothing goes to Discord.
    #[arg(
        long,
        env = "DISCORD_WEBHOOK_URL",
        value_name = "DISCORD_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub discord_webhook_url: Option<Secret>,
    /// Any HTTP endpoint: JSON signed with NOTIFY_WEBHOOK_SECRET
    /// (`X-Scrum-Signature: sha256=<hex HMAC-SHA256 of the body>`). Unset: none.
    #[arg(
        long,
        env = "NOTIFY_WEBHOOK_URL",
        value_name = "NOTIFY_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub notify_webhook_url: Option<Secret>,
    /// The key NOTIFY_WEBHOOK_URL's notifications are signed with (16 characters or
    /// more; required with NOTIFY_WEBHOOK_URL).
    #[arg(
        long,
        env = "NOTIFY_WEBHOOK_SECRET",
        value_name = "NOTIFY_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub notify_webhook_secret: Option<Secret>,
    /// Which events are sent, comma-separated: completed, failed (for good; a
    /// spent ISSUE_BUDGET_USD is one), needs_clarification (an issue parked with
    /// questions), worker_lost, follow_ups_exhausted (a pull request's
    /// FOLLOW_UP_ROUNDS used up, left for people).
    #[arg(
        long,
        env = "NOTIFY_EVENTS",
        value_name = "NOTIFY_EVENTS",
        default_value = "completed,failed,needs_clarification,worker_lost,follow_ups_exhausted"
    )]
    pub notify_events: String,
}

impl NotifyArgs {
    /// The configured targets (none when no URL is set).
    pub fn targets(&self) -> anyhow::Result<Vec<NotifyTarget>> {
        let mut targets = Vec::new();
        let set = |s: &Option<Secret>| {
            s.as_ref()
                .filter(|s| !s.expose().trim().is_empty())
                .cloned()
        };
        if let Some(url) = set(&self.slack_webhook_url) {
            targets.push(NotifyTarget::slack(url.expose()).map_err(anyhow::Error::msg)?);
        }
        if let Some(url) = set(&self.discord_webhook_url) {
            targets.push(NotifyTarget::discord(url.expose()).map_err(anyhow::Error::msg)?);
        }
        match (
            set(&self.notify_webhook_url),
            set(&self.notify_webhook_secret),
        ) {
            (Some(url), Some(secret)) => targets.push(
                NotifyTarget::webhook(url.expose(), secret.expose()).map_err(anyhow::Error::msg)?,
            ),
            (Some(_), None) => {
                bail!(
                    "NOTIFY_WEBHOOK_URL is set but NOTIFY_WEBHOOK_SECRET is not: set the key its notifications are signed with"
                )
            }
            _ => {}
        }
        Ok(targets)
    }

    /// The events to send; an unknown one is an error naming the valid ones.
    pub fn events(&self) -> anyhow::Result<Vec<NotifyEvent>> {
        let mut events = Vec::new();
        for name in self
            .notify_events
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let name = name.to_ascii_lowercase().replace('-', "_");
            let event: NotifyEvent = name.parse().map_err(|_| {
                let valid: Vec<&str> = NotifyEvent::ALL.iter().map(|e| e.as_str()).collect();
                anyhow::anyhow!(
                    "NOTIFY_EVENTS: unknown event {name:?}; the events are: {}",
                    valid.join(", ")
                )
            })?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Checks the targets' URLs and the events; each error names the variable.
    pub fn validate(&self) -> anyhow::Result<Notifications> {
        Ok(Notifications {
            targets: self.targets()?,
            events: self.events()?,
        })
    }
}

/// The notification settings, checked.
pub struct Notifications {
    targets: Vec<NotifyTarget>,
    events: Vec<NotifyEvent>,
}

impl Notifications {
    /// The events the queue records notifications for, and the notifier that
    /// sends each to every target; `None` when no target is configured.
    pub fn notifier(self) -> anyhow::Result<Option<(Vec<NotifyEvent>, WebhookNotifier)>> {
        let Notifications { targets, events } = self;
        if targets.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
        let sent: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        tracing::info!(targets = ?names, events = ?sent, "notifications on");
        let notifier = WebhookNotifier::new(targets).map_err(anyhow::Error::msg)?;
        Ok(Some((events, notifier)))
    }
}

/// `notify test`: a test message to every configured target; fails if one fails.
pub async fn send_test(args: &NotifyArgs) -> anyhow::Result<()> {
    let targets = args.targets()?;
    if targets.is_empty() {
        bail!(
            "no notification target is configured: set SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL or NOTIFY_WEBHOOK_URL"
        );
    }
    let notifier = WebhookNotifier::new(targets).map_err(anyhow::Error::msg)?;
    let mut failed = Vec::new();
    for (name, result) in notifier.send_test().await {
        match result {
            Ok(()) => println!("{name}: sent"),
            Err(e) => {
                println!("{name}: not sent: {e}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("the test message did not reach: {}", failed.join(", "));
    }
    Ok(())
}
