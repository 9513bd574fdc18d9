//! [`GitLabConfig`]: where GitLab is, the token, the projects and the labels, and
//! [`Timing`]: how patient the client is.

use std::fmt;
use std::time::Duration;

use scrum_core::{Error, Labels, RepoName, Result};

/// The public GitLab, the default of [`GitLabConfig::new`] when `url` is empty.
pub const GITLAB_COM: &str = "https://gitlab.com";

/// The forge prefix of a GitLab project's name (`gitlab:group/sub/project`).
pub const FORGE: &str = "gitlab";

/// How long a request may take and how failures are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// One request's deadline, answer included.
    pub request_timeout: Duration,
    /// How many times a failed read (5xx, timeout, connection refused) is tried
    /// again before the error is returned.
    pub retries: u32,
    /// The first pause between tries; it doubles each time.
    pub backoff_base: Duration,
    /// The longest pause between tries.
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            request_timeout: Duration::from_secs(30),
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl Timing {
    /// Retries and backoff shrunk to milliseconds, for tests against the fake.
    pub fn fast_for_tests() -> Timing {
        Timing {
            request_timeout: Duration::from_secs(5),
            retries: 2,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
        }
    }
}

/// What the client needs: GitLab's address, a token, the projects to read and the
/// label names. `Debug` leaves the token out.
#[derive(Clone)]
pub struct GitLabConfig {
    /// GitLab's base URL without `/api/v4`, e.g. `https://gitlab.com`.
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) projects: Vec<RepoName>,
    pub(crate) labels: Labels,
    pub(crate) timing: Timing,
}

impl fmt::Debug for GitLabConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabConfig")
            .field("url", &self.url)
            .field("token", &"[REDACTED]")
            .field("projects", &self.projects)
            .field("labels", &self.labels)
            .field("timing", &self.timing)
            .finish()
    }
}

impl GitLabConfig {
    /// GitLab at `url` (empty: [`GITLAB_COM`]) with a personal, project or group
    /// access token, reading `projects` (each `gitlab:group/…/project`).
    ///
    /// # Errors
    /// `Invalid` when the URL is not `http(s)://…`, the token is empty, no project
    /// is given or one is not a GitLab project.
    pub fn new(url: &str, token: &str, projects: Vec<RepoName>) -> Result<GitLabConfig> {
        let url = match url.trim() {
            "" => GITLAB_COM,
            u => u,
        }
        .trim_end_matches('/')
        .trim_end_matches("/api/v4")
        .to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::invalid(format!(
                "GitLab URL {url:?} must start with http:// or https://"
            )));
        }
        if token.trim().is_empty() {
            return Err(Error::invalid(
                "the GitLab token is empty: give a token with the api scope",
            ));
        }
        if projects.is_empty() {
            return Err(Error::invalid(
                "no GitLab project given: name at least one, as gitlab:group/project",
            ));
        }
        if let Some(other) = projects.iter().find(|p| p.forge() != FORGE) {
            return Err(Error::invalid(format!(
                "{other} is not a GitLab project: write GitLab projects as gitlab:group/project"
            )));
        }
        Ok(GitLabConfig {
            url,
            token: token.trim().to_string(),
            projects,
            labels: Labels::default(),
            timing: Timing::default(),
        })
    }

    /// With these label names instead of the defaults.
    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }

    /// With this timing instead of [`Timing::default`].
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// GitLab's base URL, without `/api/v4`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The projects read.
    pub fn projects(&self) -> &[RepoName] {
        &self.projects
    }

    /// The label names.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projects(names: &[&str]) -> Vec<RepoName> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_empty_url_is_gitlab_com_and_api_v4_is_dropped() {
        let c = GitLabConfig::new("", "t", projects(&["gitlab:g/p"])).unwrap();
        assert_eq!(c.url(), GITLAB_COM);
        let c = GitLabConfig::new(
            "https://git.example/api/v4/",
            "t",
            projects(&["gitlab:g/p"]),
        )
        .unwrap();
        assert_eq!(c.url(), "https://git.example");
    }

    #[test]
    fn a_github_repository_is_refused_by_name() {
        let err = GitLabConfig::new("", "t", projects(&["acme/widgets"])).unwrap_err();
        assert!(err.message().contains("acme/widgets"), "{err}");
    }

    #[test]
    fn debug_hides_the_token() {
        let c = GitLabConfig::new("", "glpat-secret", projects(&["gitlab:g/p"])).unwrap();
        assert!(!format!("{c:?}").contains("glpat-secret"));
    }
}
