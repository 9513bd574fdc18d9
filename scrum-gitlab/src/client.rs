//! [`GitLabClient`]: the projects, the token and what is remembered between
//! calls; the start-up check of the token's scopes and access; the default
//! branch and the push URL.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrum_core::{Error, ErrorKind, Labels, RepoName, Result, TaskId, Timestamp};

use crate::config::{FORGE, GitLabConfig};
use crate::transport::{Transport, project_id};
use crate::wire;

/// GitLab's Developer role: may label, comment and push, and here may approve
/// work for an agent.
pub const DEVELOPER: u32 = 30;

/// How long a member's access level is trusted before it is read again.
const ACCESS_FRESH: Duration = Duration::from_secs(60);

/// The most entries the access cache keeps; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

/// The name of an access level (`30` is `Developer`).
pub fn access_name(level: u32) -> &'static str {
    match level {
        0 => "no access",
        5 => "Minimal access",
        10 => "Guest",
        15 => "Planner",
        20 => "Reporter",
        30 => "Developer",
        40 => "Maintainer",
        50 => "Owner",
        _ => "an unknown role",
    }
}

/// GitLab over its REST API v4: the [`scrum_core::IssueSource`] of the configured
/// projects, merge requests, and the checks `scrum-orchestrator` runs at start.
/// Cheap to clone (one shared client).
#[derive(Clone)]
pub struct GitLabClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: GitLabConfig,
    pub(crate) transport: Transport,
    /// Access levels by (project path, user id), with when they were read.
    access: Mutex<HashMap<(String, u64), (u32, Instant)>>,
}

impl fmt::Debug for GitLabClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GitLabClient {
    /// A client for `config`. Sends nothing yet: see [`GitLabClient::check_access`].
    ///
    /// # Errors
    /// `Invalid` when the HTTP client cannot be built.
    pub fn new(config: GitLabConfig) -> Result<GitLabClient> {
        let transport = Transport::new(&config)?;
        Ok(GitLabClient {
            inner: Arc::new(Inner {
                config,
                transport,
                access: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The label names.
    pub fn labels(&self) -> &Labels {
        &self.inner.config.labels
    }

    /// The projects read.
    pub fn projects(&self) -> &[RepoName] {
        &self.inner.config.projects
    }

    /// At start: the token's scopes (`api` is needed; a `read_api` token is
    /// refused naming the missing scope) and each project readable with at least
    /// Developer access (to label and comment).
    ///
    /// # Errors
    /// `Forbidden` naming the missing scope or the project and role lacking;
    /// `NotFound` naming a project the token cannot see; `Unauthorized` for a
    /// token GitLab refuses; `Unavailable` when GitLab does not answer.
    pub async fn check_access(&self) -> Result<()> {
        let token: wire::TokenSelf = self
            .inner
            .transport
            .get_json("/personal_access_tokens/self", "reading the token's scopes")
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::Unauthorized,
                    "GitLab does not say this token's scopes (GET /personal_access_tokens/self answered 404): use a personal, project or group access token with the api scope",
                ),
                _ => e,
            })?;
        if !token.active {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "the GitLab token is revoked or expired: create a new one with the api scope",
            ));
        }
        if !token.scopes.iter().any(|s| s == "api") {
            let has = match token.scopes.is_empty() {
                true => "no scope".to_string(),
                false => format!("the scopes {}", token.scopes.join(", ")),
            };
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "the GitLab token has {has} but lacks the api scope, which labelling, commenting and opening merge requests need (read_api only reads): give it the api scope"
                ),
            ));
        }
        for project in self.projects() {
            self.check_project(project, token.user_id).await?;
        }
        Ok(())
    }

    async fn check_project(&self, project: &RepoName, user_id: u64) -> Result<()> {
        let what = format!("reading the project {project}");
        let path = format!("/projects/{}", project_id(project.path()));
        let _: wire::Project = self
            .inner
            .transport
            .get_json(&path, &what)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::not_found(format!(
                    "the GitLab project {project} does not exist or the token cannot read it"
                )),
                _ => e,
            })?;
        let level = self.access_level(project.path(), user_id).await?;
        if level < DEVELOPER {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "the GitLab token's user has {} access ({level}) to {project}: it needs Developer (30) or more to label and comment",
                    access_name(level)
                ),
            ));
        }
        Ok(())
    }

    /// The project's default branch.
    ///
    /// # Errors
    /// `NotFound` for a project the token cannot see; the transport's errors.
    pub async fn default_branch(&self, project: &RepoName) -> Result<String> {
        let path = format!("/projects/{}", project_path(project)?);
        let p: wire::Project = self
            .inner
            .transport
            .get_json(&path, &format!("reading the project {project}"))
            .await?;
        p.default_branch.ok_or_else(|| {
            Error::not_found(format!(
                "the GitLab project {project} has no default branch (is it empty?)"
            ))
        })
    }

    /// The URL to push to: the project's HTTP remote with the token as the
    /// password of the user `oauth2`. It holds the secret: never log it.
    pub fn push_url(&self, project: &RepoName) -> String {
        let url = &self.inner.config.url;
        let (scheme, host) = url.split_once("://").unwrap_or(("https", url));
        format!(
            "{scheme}://oauth2:{}@{host}/{}.git",
            self.inner.config.token,
            project.path()
        )
    }

    /// What GitLab last said of the rate limit: the requests remaining and when
    /// the window resets; `None` before an answer carried the headers.
    pub fn rate_limit(&self) -> Option<(u64, Timestamp)> {
        self.inner.transport.rate_limit()
    }

    /// The access level of user `user_id` in project `path` (0 for someone who is
    /// no member), remembered for a minute.
    pub(crate) async fn access_level(&self, path: &str, user_id: u64) -> Result<u32> {
        let key = (path.to_string(), user_id);
        if let Some((level, at)) = self.lock_access().get(&key) {
            if at.elapsed() < ACCESS_FRESH {
                return Ok(*level);
            }
        }
        let url = format!("/projects/{}/members/all/{user_id}", project_id(path));
        let what = format!("reading a member's access to gitlab:{path}");
        let level = match self
            .inner
            .transport
            .get_json::<wire::Member>(&url, &what)
            .await
        {
            Ok(m) => m.access_level,
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let mut cache = self.lock_access();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (level, Instant::now()));
        Ok(level)
    }

    fn lock_access(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), (u32, Instant)>> {
        self.inner.access.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The encoded `:id` of a GitLab project, refusing another forge's name.
pub(crate) fn project_path(project: &RepoName) -> Result<String> {
    if project.forge() != FORGE {
        return Err(Error::not_found(format!(
            "{project} is not a GitLab project (GitLab's are named gitlab:group/project)"
        )));
    }
    Ok(project_id(project.path()))
}

/// `/projects/:id/issues/:iid` of a task, refusing another forge's id.
pub(crate) fn issue_path(id: &TaskId) -> Result<String> {
    Ok(format!(
        "/projects/{}/issues/{}",
        project_path(&id.repo_name())?,
        id.number()
    ))
}
