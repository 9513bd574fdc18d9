//! [`GitHubConfig`]: where GitHub is, which token, which repositories, which labels,
//! and how patient to be.

use std::fmt;
use std::time::Duration;

use scrum_core::{Error, Labels, RepoName, Result};

use crate::app::GitHubApp;
use crate::follow_ups::PullHeads;

/// The default API base (`GITHUB_API_URL`).
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Everything [`crate::GitHubClient`] needs. Build it with [`GitHubConfig::new`]; the
/// binaries map environment variables onto it.
///
/// `Debug` leaves the token out.
#[derive(Clone)]
pub struct GitHubConfig {
    /// The API base (`GITHUB_API_URL`), e.g. `https://api.github.com` or a GitHub
    /// Enterprise `https://ghe.example.com/api/v3`.
    pub api_url: String,
    auth: Auth,
    /// The repositories to poll (`GITHUB_REPO` or `GITHUB_REPOS`).
    pub repos: Vec<RepoName>,
    /// The lifecycle labels; an issue is ready when it carries every `labels.ready`
    /// (`GITHUB_ISSUE_LABELS`).
    pub labels: Labels,
    /// Timeouts, retries and waits.
    pub timing: Timing,
    /// The most requests in flight at once (`GITHUB_CONCURRENCY`, default
    /// [`DEFAULT_CONCURRENCY`]); writes go one at a time whatever this says.
    pub concurrency: usize,
    /// The pull requests the client reads, by head commit: shared by every
    /// client built from this configuration (or a clone of it) and by the
    /// webhook given it ([`GitHubConfig::pull_heads`]).
    pull_heads: PullHeads,
}

/// How the client authenticates.
#[derive(Clone)]
pub(crate) enum Auth {
    /// One token for everything (`GITHUB_TOKEN`).
    Token(String),
    /// A GitHub App: installation tokens, one installation per repository owner.
    App(GitHubApp),
}

/// The default of [`GitHubConfig::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 8;

impl fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("api_url", &self.api_url)
            .field(
                "auth",
                &match &self.auth {
                    Auth::Token(_) => "token [REDACTED]".to_string(),
                    Auth::App(app) => format!("GitHub App {}", app.id()),
                },
            )
            .field("repos", &self.repos)
            .field("labels", &self.labels)
            .field("timing", &self.timing)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl GitHubConfig {
    /// A configuration for `repos` with `token`, the default API URL, labels and timing.
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_TOKEN` when the token is empty or not one line, and
    /// naming `GITHUB_REPO`/`GITHUB_REPOS` when no repository is given.
    pub fn new(token: &str, repos: Vec<RepoName>) -> Result<GitHubConfig> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::invalid(
                "GITHUB_TOKEN is empty: set it to a token that can read and label issues and open pull requests",
            ));
        }
        if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "GITHUB_TOKEN contains whitespace or control characters",
            ));
        }
        GitHubConfig::with_auth(Auth::Token(token.to_string()), repos)
    }

    /// A configuration for `repos` that authenticates as the GitHub App `app`
    /// (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY`): each repository is reached
    /// with a token of the app's installation on its owner.
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_REPO`/`GITHUB_REPOS` when no repository is given.
    pub fn for_app(app: GitHubApp, repos: Vec<RepoName>) -> Result<GitHubConfig> {
        GitHubConfig::with_auth(Auth::App(app), repos)
    }

    fn with_auth(auth: Auth, repos: Vec<RepoName>) -> Result<GitHubConfig> {
        if repos.is_empty() {
            return Err(Error::invalid(
                "no repository: set GITHUB_REPO to owner/name or GITHUB_REPOS to a comma-separated list",
            ));
        }
        Ok(GitHubConfig {
            api_url: DEFAULT_API_URL.to_string(),
            auth,
            repos,
            labels: Labels::default(),
            timing: Timing::default(),
            concurrency: DEFAULT_CONCURRENCY,
            pull_heads: PullHeads::default(),
        })
    }

    /// With the API base `url` (`GITHUB_API_URL`).
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_API_URL` when it is not an `http(s)://` URL.
    pub fn with_api_url(mut self, url: &str) -> Result<GitHubConfig> {
        let url = url.trim().trim_end_matches('/');
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
        if !ok {
            return Err(Error::invalid(format!(
                "GITHUB_API_URL {url:?} is not an http:// or https:// URL"
            )));
        }
        self.api_url = url.to_string();
        Ok(self)
    }

    /// With these lifecycle labels.
    ///
    /// # Errors
    /// `Invalid` naming `GITHUB_ISSUE_LABELS` when no ready label is given.
    pub fn with_labels(mut self, labels: Labels) -> Result<GitHubConfig> {
        if labels.ready.iter().all(|l| l.trim().is_empty()) {
            return Err(Error::invalid(
                "GITHUB_ISSUE_LABELS names no label: give at least one, e.g. ai-ready",
            ));
        }
        self.labels = labels;
        Ok(self)
    }

    /// With this timing.
    pub fn with_timing(mut self, timing: Timing) -> GitHubConfig {
        self.timing = timing;
        self
    }

    /// With at most `concurrency` requests in flight (at least one).
    pub fn with_concurrency(mut self, concurrency: usize) -> GitHubConfig {
        self.concurrency = concurrency.max(1);
        self
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The index of tracked pull requests by head commit that clients built from
    /// this configuration fill: give it to
    /// [`crate::webhook::WebhookSecret::with_pull_heads`] before the client
    /// exists, so a `status` delivery finds its pull request.
    pub fn pull_heads(&self) -> PullHeads {
        self.pull_heads.clone()
    }

    /// Whether the client authenticates as a GitHub App.
    pub fn is_app(&self) -> bool {
        matches!(self.auth, Auth::App(_))
    }
}

/// Parses `GITHUB_REPOS` (comma-separated) or `GITHUB_REPO` into repository names.
///
/// # Errors
/// `Invalid` naming `variable` and the bad entry.
///
/// ```
/// let repos = scrum_github::parse_repos("GITHUB_REPOS", "acme/a, acme/b").unwrap();
/// assert_eq!(repos.len(), 2);
/// assert!(scrum_github::parse_repos("GITHUB_REPOS", "acme").unwrap_err().to_string().contains("GITHUB_REPOS"));
/// ```
pub fn parse_repos(variable: &str, value: &str) -> Result<Vec<RepoName>> {
    let mut repos = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let repo: RepoName = part
            .parse()
            .map_err(|e: Error| Error::invalid(format!("{variable}: {}", e.message())))?;
        if !repos.contains(&repo) {
            repos.push(repo);
        }
    }
    if repos.is_empty() {
        return Err(Error::invalid(format!(
            "{variable} names no repository: give owner/name"
        )));
    }
    Ok(repos)
}

/// Parses `GITHUB_ISSUE_LABELS`: comma-separated, an issue must carry all of them.
///
/// ```
/// assert_eq!(scrum_github::parse_ready_labels("ai-ready, backend"), vec!["ai-ready", "backend"]);
/// ```
pub fn parse_ready_labels(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// How long to wait for GitHub and how often to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// One request, answer included, must finish within this.
    pub request_timeout: Duration,
    /// How many times a 5xx, a timeout, a transport error or a malformed answer is
    /// retried before the call fails.
    pub retries: u32,
    /// The first backoff; it doubles each retry (with jitter) up to `backoff_max`.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// The longest the client waits for a rate limit to reset before failing the call
    /// with `RateLimited` (the caller then tries again later).
    pub max_rate_limit_wait: Duration,
    /// How long to wait on a secondary rate limit that gives no `retry-after`
    /// (GitHub asks for at least a minute).
    pub secondary_default_wait: Duration,
    /// The least time between two writes (POST, PATCH, PUT, DELETE). GitHub asks for
    /// a second, to stay clear of its secondary rate limits. Writes are sent one at
    /// a time in any case; reads go out together up to [`GitHubConfig::concurrency`].
    pub write_spacing: Duration,
    /// A GitHub App's installation token is renewed once less than this is left
    /// of it (GitHub's last an hour), so no request goes out with one about to
    /// expire.
    pub token_refresh_margin: Duration,
}

impl Timing {
    /// Timing for tests and demos against the fake GitHub: a 2 s timeout, 3 retries
    /// with millisecond backoff, rate limits waited up to 10 s, a 1 s default
    /// secondary wait, no spacing between writes, and installation tokens renewed
    /// when less than a second is left.
    pub fn fast_for_tests() -> Timing {
        Timing {
            request_timeout: Duration::from_secs(2),
            retries: 3,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(10),
            max_rate_limit_wait: Duration::from_secs(10),
            secondary_default_wait: Duration::from_secs(1),
            write_spacing: Duration::ZERO,
            token_refresh_margin: Duration::from_secs(1),
        }
    }
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            request_timeout: Duration::from_secs(30),
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(16),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            secondary_default_wait: Duration::from_secs(60),
            write_spacing: Duration::from_secs(1),
            token_refresh_margin: Duration::from_secs(5 * 60),
        }
    }
}
