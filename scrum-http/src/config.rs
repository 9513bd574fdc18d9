//! [`ApiConfig`]: who may call the API, and how much they may send.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use scrum_core::{Error, IssueEvents, RepoCredentials};

/// How the HTTP API guards and limits itself. The bind address is the binary's
/// business; everything the router needs is here.
///
/// Secure by default: with a [`token`](ApiConfig::token), every call except
/// `/health` and the signed webhook needs `Authorization: Bearer <token>`. Without
/// one, the work endpoints (`/work/*`) and every read that shows tasks or workers
/// (`/queue`, `/workers`, `/metrics`, `/openapi.json`, `GET /admin/*`) answer only
/// loopback and the [`worker_ips`](ApiConfig::worker_ips); the operator actions
/// (`POST /admin/*`) and worker hosts' logs (`/workers/{id}/logs`) only loopback.
/// `/health` (which carries no issue text) and `POST /webhooks/github` (checked by
/// its signature) are open to all either way.
#[derive(Clone)]
pub struct ApiConfig {
    /// The bearer token every caller but `/health` and the webhook must present.
    /// Never printed.
    pub token: Option<ApiToken>,
    /// Addresses allowed to call the work endpoints and the reads when no token is
    /// configured (`WORKER_IPS`). Loopback is always allowed.
    pub worker_ips: Vec<IpAddr>,
    /// The largest request body accepted, in bytes (default 64 KiB). Larger bodies
    /// get `413 payload_too_large`.
    pub body_limit: usize,
    /// Checks push notifications at `POST /webhooks/github` (for GitHub,
    /// `scrum_github::webhook::WebhookSecret`); without it that route answers 404.
    pub webhook: Option<Arc<dyn IssueEvents>>,
    /// Checks GitLab's deliveries at `POST /webhooks/gitlab`: `X-Gitlab-Event` as
    /// the event and `X-Gitlab-Token` (the hook's secret token) as the signature;
    /// without it that route answers 404.
    pub gitlab_webhook: Option<Arc<dyn IssueEvents>>,
    /// Mints a short-lived token for the repository of each task handed out (for
    /// GitHub, a GitHub App's installation token scoped to it); `/work/next` then
    /// carries it as `github_token`. Without it workers push with their own.
    pub credentials: Option<Arc<dyn RepoCredentials>>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            token: None,
            worker_ips: Vec::new(),
            body_limit: 64 * 1024,
            webhook: None,
            gitlab_webhook: None,
            credentials: None,
        }
    }
}

impl ApiConfig {
    /// Parses `WORKER_IPS` entries (`ip`, `ip:port` or `[v6]:port`) into the allowed
    /// addresses. A host name is refused: the allow-list compares peer addresses.
    pub fn with_worker_hosts<S: AsRef<str>>(mut self, hosts: &[S]) -> Result<ApiConfig, Error> {
        for h in hosts {
            let h = h.as_ref().trim();
            if h.is_empty() {
                continue;
            }
            let ip = h
                .parse::<IpAddr>()
                .or_else(|_| h.parse::<SocketAddr>().map(|s| s.ip()))
                .map_err(|_| {
                    Error::invalid(format!(
                        "WORKER_IPS entry {h:?} is not an IP address (ip, ip:port or [v6]:port)"
                    ))
                })?;
            self.worker_ips.push(ip);
        }
        Ok(self)
    }

    /// One line for the start-up log saying which access rule is in force: who may
    /// call the work endpoints, the reads and the operator endpoints.
    pub fn access_summary(&self) -> String {
        if self.token.is_some() {
            return "API token configured: every call except /health and the webhooks (POST /webhooks/github, signed; POST /webhooks/gitlab, with its secret token) needs `Authorization: Bearer <token>`".to_string();
        }
        let fleet = if self.worker_ips.is_empty() {
            "only loopback (WORKER_IPS is empty)".to_string()
        } else {
            let ips: Vec<String> = self.worker_ips.iter().map(ToString::to_string).collect();
            format!("only loopback and WORKER_IPS ({})", ips.join(", "))
        };
        format!(
            "no API token configured: /work/* and the reads (/queue, /workers, /metrics, /openapi.json, GET /admin/*) answer {fleet}; \
             POST /admin/* and /workers/{{id}}/logs only loopback; /health and the webhooks (POST /webhooks/github, signed; /webhooks/gitlab, with its token) are open. \
             Set an API token, or add addresses to WORKER_IPS, to let remote callers in"
        )
    }

    /// Whether `peer` may call the work endpoints and the reads without a token:
    /// loopback, or one of the [`worker_ips`](ApiConfig::worker_ips).
    pub(crate) fn is_worker_address(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        peer.is_loopback() || self.worker_ips.iter().any(|a| a.to_canonical() == peer)
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("token", &self.token)
            .field("worker_ips", &self.worker_ips)
            .field("body_limit", &self.body_limit)
            .field("webhook", &self.webhook.is_some())
            .field("gitlab_webhook", &self.gitlab_webhook.is_some())
            .finish()
    }
}

/// The API's bearer token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// A token: at least 16 visible ASCII characters with no spaces, so it survives a
    /// header unchanged and is not trivially guessed.
    pub fn new(token: impl Into<String>) -> Result<ApiToken, Error> {
        let token = token.into();
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "the API token must be at least 16 visible ASCII characters without spaces",
            ));
        }
        Ok(ApiToken(token))
    }

    /// The token, for a client to send.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let config = ApiConfig {
            token: Some(ApiToken::new("s3cret-s3cret-s3cret").unwrap()),
            ..ApiConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn tokens_compare_exactly() {
        let t = ApiToken::new("0123456789abcdef").unwrap();
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches("0123456789abcdef0"));
        assert!(!t.matches(""));
        assert!(ApiToken::new("short").is_err());
        assert!(ApiToken::new("has a space in it!!").is_err());
    }

    #[test]
    fn worker_hosts_parse_with_and_without_ports() {
        let c = ApiConfig::default()
            .with_worker_hosts(&["10.0.0.5", "10.0.0.6:2222", "[::1]:22", " "])
            .unwrap();
        assert_eq!(c.worker_ips.len(), 3);
        assert!(c.is_worker_address("10.0.0.6".parse().unwrap()));
        assert!(c.is_worker_address("::ffff:10.0.0.5".parse().unwrap()));
        assert!(c.is_worker_address("127.0.0.1".parse().unwrap()));
        assert!(!c.is_worker_address("10.0.0.7".parse().unwrap()));
        let err = ApiConfig::default()
            .with_worker_hosts(&["worker-1.local"])
            .unwrap_err();
        assert!(err.message().contains("WORKER_IPS"));
    }
}
