//! GitLab for the scrum orchestrator: the [`IssueSource`](scrum_core::IssueSource)
//! that lists ready issues of GitLab projects and writes outcomes back, merge
//! requests, webhook checks, and a fake GitLab server for tests.
//!
//! GitLab is the second forge beside GitHub. Its projects are named with their
//! forge and full path, `gitlab:group/sub/project`, and their issues
//! `gitlab:group/sub/project#12` ([`scrum_core::RepoName`], [`scrum_core::TaskId`]).
//! The client speaks GitLab's REST API v4 over reqwest: every page is read
//! (`x-next-page`), listings are asked for with `If-None-Match`, the rate-limit
//! headers are kept ([`GitLabClient::rate_limit`]) and a 429 is `RateLimited` with
//! its `retry_after`, 5xx and timeouts are retried with backoff, and an error is
//! never read as an empty backlog.
//!
//! # Layout
//!
//! - [`config`]: [`GitLabConfig`] and [`Timing`].
//! - `client`: [`GitLabClient`]: the start-up check of the token's scopes and
//!   access ([`GitLabClient::check_access`]), the default branch, the push URL.
//! - `source`: the `IssueSource`: listing, issue state, labels in one edit, notes
//!   with hidden markers.
//! - `trust`: who added the ready label (resource label events), who edited, who
//!   opened, and whether they may approve (Developer access or more).
//! - `links`: blockers, from issue links of type `is_blocked_by`.
//! - `merge_requests`: [`GitLabClient::open_merge_request`] (idempotent) and what
//!   review gating and follow-ups read of a merge request.
//! - `transport`: one request the careful way; `wire`: GitLab's JSON.
//! - [`webhook`]: `X-Gitlab-Token` checks and the task a delivery concerns.
//! - `fake` (feature `fake`): an in-process fake GitLab with state, paging, ETags,
//!   rate limits, faults, webhooks, git over HTTP and a request log.
//!
//! # Example
//!
//! Against the fake GitLab (feature `fake`):
//!
//! ```
//! # #[cfg(feature = "fake")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use scrum_core::IssueSource;
//! use scrum_gitlab::{GitLabClient, GitLabConfig, Timing, fake::{FakeGitLab, NewIssue}};
//!
//! let gitlab = FakeGitLab::start().await;
//! gitlab.add_project("group/sub/widgets");
//! let id = gitlab.add_issue("group/sub/widgets", NewIssue::new("Add a widget").labels(&["ai-ready"]));
//! gitlab.add_issue("group/sub/widgets", NewIssue::new("Not yet"));
//!
//! let projects = vec!["gitlab:group/sub/widgets".parse().unwrap()];
//! let config = GitLabConfig::new(&gitlab.url(), gitlab.token(), projects)
//!     .unwrap()
//!     .with_timing(Timing::fast_for_tests());
//! let client = GitLabClient::new(config).unwrap();
//! client.check_access().await.unwrap();
//! let ready = client.list_ready().await.unwrap();
//! assert_eq!(ready.len(), 1);
//! assert_eq!(ready[0].id.to_string(), "gitlab:group/sub/widgets#1");
//!
//! client.add_labels(&id, &["ai-in-progress".to_string()]).await.unwrap();
//! assert_eq!(gitlab.labels(&id), ["ai-ready", "ai-in-progress"]);
//! # });
//! ```

mod client;
pub mod config;
mod links;
mod merge_requests;
mod source;
mod time;
mod transport;
mod trust;
pub mod webhook;
mod wire;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{DEVELOPER, GitLabClient, access_name};
pub use config::{GITLAB_COM, GitLabConfig, Timing};
pub use webhook::WebhookToken;
