//! GitHub for the scrum orchestrator: the [`IssueSource`](scrum_core::IssueSource)
//! that lists ready issues and writes outcomes back, pull requests, webhook checks,
//! and a fake GitHub server for everyone's tests.
//!
//! GitHub is used the way a careful integration uses it: every page is read, pull
//! requests are left out, each poll asks with `If-None-Match` so an unchanged
//! repository costs no rate-limit point, rate limits are waited out (and shown in
//! [`GitHubStatus`]), 5xx and timeouts are retried with backoff, and an error is never
//! read as an empty backlog.
//!
//! # Layout
//!
//! - [`config`]: [`GitHubConfig`] and [`Timing`]; validation errors name the
//!   environment variable to fix.
//! - `client`: [`GitHubClient`], the `IssueSource` (labels, comments with hidden
//!   markers, issue state) and closing issues.
//! - `listing`: the conditional, paged listing of ready issues, the repositories
//!   together.
//! - `trust`, `provenance`: who vouches for an issue's text; the trust of many
//!   issues in one GraphQL query per 50, each person's permission read once.
//! - `pulls`: [`GitHubClient::open_pull_request`], idempotent.
//! - `reviews`, `follow_ups`, `checks`: what review gating and follow-ups read of
//!   a pull request (its reviews, head commit, mergeability, checks with their
//!   annotations and logs, `/agent` comments), conditionally; the status comment
//!   edited in place.
//! - [`app`]: [`GitHubApp`], a GitHub App's key and the JWTs it signs;
//!   `installation`: requests as the app's installation on each owner, with
//!   tokens renewed before they expire, and tokens for one repository.
//! - `transport`: one request the careful way (rate limits, retries, timeouts; reads
//!   together up to [`GitHubConfig::concurrency`], writes one at a time, spaced;
//!   each token or app installation paced apart);
//!   `classify` maps GitHub's answers to [`scrum_core::ErrorKind`] once.
//! - [`status`]: [`GitHubStatus`], for `/health`.
//! - [`webhook`]: `X-Hub-Signature-256` checks, and the task or pull request each
//!   event concerns (`webhook_checks`: check and status events).
//! - [`access`]: what the token may do in each repository, its labels and
//!   webhooks, read for `scrum-orchestrator doctor`.
//! - `fake` (feature `fake`): an in-process fake GitHub with state, ETags, paging,
//!   rate limits, faults and a request log; checks, CI scripts, mergeability and
//!   signed webhook deliveries for follow-ups.
//!
//! # Example
//!
//! Against the fake GitHub (feature `fake`):
//!
//! ```
//! # #[cfg(feature = "fake")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use scrum_core::{IssueSource, Timestamp};
//! use scrum_github::{GitHubClient, GitHubConfig, Timing, fake::{FakeGitHub, NewIssue}};
//!
//! let github = FakeGitHub::start().await;
//! github.add_repo("acme/widgets");
//! let id = github.add_issue("acme/widgets", NewIssue::new("Add a widget").labels(&["ai-ready"]));
//! github.add_issue("acme/widgets", NewIssue::new("Not yet"));
//!
//! let config = GitHubConfig::new(github.token(), vec!["acme/widgets".parse().unwrap()])
//!     .unwrap()
//!     .with_api_url(&github.url())
//!     .unwrap()
//!     .with_timing(Timing::fast_for_tests());
//! let client = GitHubClient::connect(config).await.unwrap();
//! let ready = client.list_ready().await.unwrap();
//! assert_eq!(ready.len(), 1);
//! assert_eq!(ready[0].id, id);
//!
//! client.add_labels(&id, &["ai-in-progress".to_string()]).await.unwrap();
//! assert_eq!(github.labels(&id), ["ai-ready", "ai-in-progress"]);
//! assert!(client.status().is_connected());
//! # });
//! ```

pub mod access;
pub mod app;
mod checks;
mod classify;
mod client;
pub mod config;
mod dependencies;
mod follow_ups;
mod installation;
mod known_labels;
mod listing;
mod provenance;
mod pulls;
mod reviews;
pub mod status;
mod sync;
mod transport;
mod trust;
pub mod webhook;
mod webhook_checks;
mod wire;

#[cfg(feature = "fake")]
pub mod fake;

pub use access::{Grants, Hook, RepoAccess};
pub use app::GitHubApp;
pub use client::GitHubClient;
pub use config::{GitHubConfig, Timing, parse_ready_labels, parse_repos};
pub use follow_ups::PullHeads;
pub use listing::PollStats;
pub use pulls::PullRequest;
pub use status::{GitHubStatus, Health};
