//! The doctor's webhook checks.
//!
//! GitHub never shows a hook's secret, so a secret that differs between GitHub and
//! the orchestrator cannot be read off either side. What is checked instead:
//!
//! 1. `GITHUB_WEBHOOK_SECRET` signs a test `issues` delivery that the server's own
//!    check ([`scrum_github::webhook::affected_task`]) accepts;
//! 2. the running orchestrator (`--url`, else the address ORCHESTRATOR_HOST and
//!    ORCHESTRATOR_PORT name, when one answers there) takes a `ping` signed with
//!    that secret: a 401 means it runs with another secret, a 404 with none;
//! 3. each repository's hooks that deliver to `/webhooks/github` (readable with an
//!    admin's token only): a hook without a secret, a secret on GitHub but none
//!    here, or a last delivery refused with 401 (the two secrets differ) fails;
//! 4. with GitLab projects, the running orchestrator takes a test GitLab delivery
//!    carrying `GITLAB_WEBHOOK_SECRET` at `/webhooks/gitlab` (401: another
//!    secret, 404: none).

use std::time::Duration;

use scrum_core::RepoName;
use scrum_github::webhook::{WebhookSecret, affected_task, sign};
use scrum_github::{GitHubClient, RepoAccess};

use crate::doctor::Report;
use crate::orchestrator::settings::api::ListenerArgs;

/// The path the orchestrator takes GitHub's deliveries on.
const ROUTE: &str = "/webhooks/github";

/// The path the orchestrator takes GitLab's deliveries on.
const GITLAB_ROUTE: &str = "/webhooks/gitlab";

/// Where a running orchestrator is looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Given with `--url`: it must answer.
    Given(String),
    /// Where the settings say the service listens: it may not be running.
    Configured(String),
}

/// `--url` when given, else the listener's address (loopback for `0.0.0.0`).
pub fn target(url: Option<&str>, listener: &ListenerArgs) -> Target {
    if let Some(url) = url {
        return Target::Given(url.trim_end_matches('/').to_string());
    }
    let host = match listener.host {
        h if h.is_unspecified() && h.is_ipv4() => "127.0.0.1".to_string(),
        h if h.is_unspecified() => "[::1]".to_string(),
        h if h.is_ipv6() => format!("[{h}]"),
        h => h.to_string(),
    };
    Target::Configured(format!("http://{host}:{}", listener.port))
}

/// Every webhook check of one configuration.
pub async fn check(
    secret: Option<&WebhookSecret>,
    github: Option<(&GitHubClient, &[RepoAccess])>,
    target: &Target,
    report: &mut Report,
) {
    match secret {
        Some(s) => {
            signs(s, report);
            ping(s, target, report).await;
        }
        None => report.skip(
            "webhook",
            "GITHUB_WEBHOOK_SECRET is not set: the webhook route is off and the orchestrator polls only",
        ),
    }
    if let Some((client, readable)) = github {
        for access in readable {
            hooks(client, &access.repo, secret.is_some(), report).await;
        }
    }
}

/// A test delivery signed with the secret goes through the server's own check.
fn signs(secret: &WebhookSecret, report: &mut Report) {
    let body =
        br#"{"action":"labeled","issue":{"number":1},"repository":{"full_name":"doctor/check"}}"#;
    let signature = sign(secret, body);
    match affected_task(secret, Some("issues"), Some(&signature), body) {
        Ok(Some(_)) => report.ok(
            "webhook",
            "GITHUB_WEBHOOK_SECRET signs a test delivery that the server's check accepts",
        ),
        other => report.fail(
            "webhook",
            format!(
                "a test delivery signed with GITHUB_WEBHOOK_SECRET was not accepted: {other:?}"
            ),
            "report this as a bug",
        ),
    }
}

/// Sends the running orchestrator a `ping` signed with the secret.
async fn ping(secret: &WebhookSecret, target: &Target, report: &mut Report) {
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":0}"#.to_vec();
    let signature = sign(secret, &body);
    let delivery = Delivery {
        forge: "GitHub",
        what: "a ping signed with GITHUB_WEBHOOK_SECRET",
        route: ROUTE,
        headers: [
            ("x-github-event", "ping".into()),
            ("x-hub-signature-256", signature),
        ],
        body,
        secret_var: "GITHUB_WEBHOOK_SECRET",
    };
    deliver(delivery, target, report).await;
}

/// The GitLab webhook: the running orchestrator takes a delivery that carries
/// `GITLAB_WEBHOOK_SECRET` as its token (GitLab's "Test" button sends a push
/// event, which concerns no task).
pub async fn gitlab(secret: Option<&str>, target: &Target, report: &mut Report) {
    let Some(secret) = secret else {
        return report.skip(
            "webhook",
            "GITLAB_WEBHOOK_SECRET is not set: the GitLab webhook route is off and the orchestrator polls GitLab only",
        );
    };
    let delivery = Delivery {
        forge: "GitLab",
        what: "a test GitLab delivery carrying GITLAB_WEBHOOK_SECRET",
        route: GITLAB_ROUTE,
        headers: [
            ("x-gitlab-event", "Push Hook".into()),
            ("x-gitlab-token", secret.to_string()),
        ],
        body: br#"{"object_kind":"push","project":{"path_with_namespace":"doctor/check"}}"#
            .to_vec(),
        secret_var: "GITLAB_WEBHOOK_SECRET",
    };
    deliver(delivery, target, report).await;
}

/// A test delivery to the running orchestrator.
struct Delivery {
    forge: &'static str,
    /// What it is, for the report.
    what: &'static str,
    route: &'static str,
    headers: [(&'static str, String); 2],
    body: Vec<u8>,
    /// The setting its authentication comes from.
    secret_var: &'static str,
}

/// Sends `d` to the running orchestrator and says what its answer means.
async fn deliver(d: Delivery, target: &Target, report: &mut Report) {
    let (Target::Given(base) | Target::Configured(base)) = target;
    let url = format!("{base}{}", d.route);
    let (forge, what, var) = (d.forge, d.what, d.secret_var);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return report.fail("webhook", format!("no HTTP client: {e}"), ""),
    };
    let mut request = client.post(&url).header("content-type", "application/json");
    for (name, value) in d.headers {
        request = request.header(name, value);
    }
    let sent = request.body(d.body).send().await;
    let status = match sent {
        Ok(answer) => answer.status().as_u16(),
        Err(e) => {
            return match target {
                Target::Given(_) => report.fail(
                    "webhook",
                    format!("cannot reach the orchestrator at {base}: {e}"),
                    "check --url, and that the orchestrator runs",
                ),
                Target::Configured(_) => report.skip(
                    "webhook",
                    format!(
                        "no orchestrator answers at {base}: give --url to send a running one {what}"
                    ),
                ),
            };
        }
    };
    match status {
        200..=299 => report.ok(
            "webhook",
            format!("the orchestrator at {base} accepts {what}"),
        ),
        401 => report.fail(
            "webhook",
            format!("the orchestrator at {base} refuses {what}: it runs with another secret"),
            format!("set the same {var} for the orchestrator (then restart it), here and in the hook's settings on {forge}"),
        ),
        404 => report.fail(
            "webhook",
            format!("the orchestrator at {base} has no {forge} webhook route: it runs without {var}"),
            format!("restart the orchestrator with {var} set to the hook's secret"),
        ),
        other => report.fail(
            "webhook",
            format!("the orchestrator at {base} answered {what} with HTTP {other}"),
            "check --url: it must be the orchestrator's API, not another service".to_string(),
        ),
    }
}

/// The repository's hooks that deliver to the orchestrator.
async fn hooks(client: &GitHubClient, repo: &RepoName, have_secret: bool, report: &mut Report) {
    let hooks = match client.hooks(repo).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            return report.skip(
                "webhook",
                format!("{repo}: the token may not read its hooks (that takes admin): check on GitHub that the hook's secret is GITHUB_WEBHOOK_SECRET"),
            );
        }
        Err(e) => {
            return report.fail("webhook", format!("{repo}: cannot read its hooks: {e}"), "");
        }
    };
    let ours: Vec<_> = hooks.iter().filter(|h| h.url.contains(ROUTE)).collect();
    if ours.is_empty() {
        let text = format!("{repo} has no hook delivering to {ROUTE}: the orchestrator polls only");
        return report.skip("webhook", text);
    }
    for h in ours {
        let url = &h.url;
        if !h.has_secret {
            report.fail(
                "webhook",
                format!("{repo}: the hook to {url} has no secret, so its deliveries are refused"),
                "set the hook's secret on GitHub to GITHUB_WEBHOOK_SECRET",
            );
        } else if !have_secret {
            report.fail(
                "webhook",
                format!("{repo}: the hook to {url} signs deliveries, but GITHUB_WEBHOOK_SECRET is not set"),
                "set GITHUB_WEBHOOK_SECRET to the hook's secret",
            );
        } else if h.last_status == Some(401) {
            report.fail(
                "webhook",
                format!("{repo}: the orchestrator refused the last delivery of the hook to {url} (401): the hook's secret is not GITHUB_WEBHOOK_SECRET"),
                "set the hook's secret on GitHub to GITHUB_WEBHOOK_SECRET (or redeliver once they match)",
            );
        } else {
            let last = h
                .last_status
                .map_or("none yet".to_string(), |s| format!("HTTP {s}"));
            report.ok(
                "webhook",
                format!("{repo}: the hook to {url} is signed (last delivery: {last})"),
            );
        }
    }
}
