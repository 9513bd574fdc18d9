//! The worker's forge seam: for each task, the forge its id names (GitHub's
//! `owner/repo#N`, GitLab's `gitlab:group/sub/project#N`) says where its
//! repository is cloned from and pushed to, with which credential, and opens the
//! change request (a pull request, a merge request) the push is delivered by.
//!
//! The push's credential is the worker's token for that forge (or the one the
//! assignment carries); it reaches git through the environment of the git
//! command alone ([`GitRemote`]), never the agent's.

mod github;
mod gitlab;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use scrum_core::pull_gate::PullState;
use scrum_core::{Error, RepoName, RepoToken, Result, TaskId};

pub use github::GitHubForge;
pub use gitlab::GitLabForge;

use super::git::GitRemote;

/// One forge as the worker uses it.
///
/// # Contract
///
/// - [`Forge::remote`] names no credential in its URL: the token rides beside it.
/// - [`Forge::open_change`] is safe to call again: a change request already open
///   from the branch is answered, not opened twice; its description says it closes
///   the issue (`Closes #N`).
#[async_trait]
pub trait Forge: Send + Sync + 'static {
    /// Where `repo` is cloned from and pushed to, and with what credential:
    /// `token` when the assignment carried one (a GitHub App's, scoped to the
    /// repository), else the worker's own for this forge. `author` signs the
    /// runner's own commits.
    fn remote(
        &self,
        repo: &RepoName,
        token: Option<&RepoToken>,
        author: &(String, String),
    ) -> GitRemote;

    /// Opens the change request from `branch` into `base` for `issue`, or finds
    /// the open one; answers its URL.
    async fn open_change(
        &self,
        issue: &TaskId,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
        token: Option<&RepoToken>,
    ) -> Result<String>;

    /// The state of change request `number` of `repo` (open, approved, changes
    /// requested, merged, closed).
    async fn change_state(
        &self,
        repo: &RepoName,
        number: u64,
        token: Option<&RepoToken>,
    ) -> Result<Option<PullState>>;

    /// The description of the change request at `url` (as
    /// [`Forge::open_change`] answered it); empty when it has none.
    async fn change_body(&self, url: &str, token: Option<&RepoToken>) -> Result<String>;

    /// Replaces the description of the change request at `url`.
    async fn set_change_body(&self, url: &str, body: &str, token: Option<&RepoToken>)
    -> Result<()>;
}

/// The repository and number of the change request at `url`.
fn change_of(url: &str) -> Result<(RepoName, u64)> {
    scrum_core::pull_gate::pull_from_url(url)
        .ok_or_else(|| Error::invalid(format!("{url:?} is not a change request's page")))
}

/// The forges a worker can work on, by name ([`RepoName::forge`]).
#[derive(Clone, Default)]
pub struct Forges {
    by_name: BTreeMap<String, Arc<dyn Forge>>,
}

impl std::fmt::Debug for Forges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forges")
            .field("forges", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Forges {
    /// No forge yet.
    pub fn new() -> Forges {
        Forges::default()
    }

    /// Works on the repositories of `name` (`github`, `gitlab`) through `forge`.
    pub fn with(mut self, name: &str, forge: Arc<dyn Forge>) -> Forges {
        self.by_name.insert(name.to_string(), forge);
        self
    }

    /// The forge of `repo`. A forge this worker has no settings for is a failure
    /// another worker (or this one, once configured) may not have: retryable.
    pub fn of(&self, repo: &RepoName) -> Result<&dyn Forge> {
        self.by_name
            .get(repo.forge())
            .map(|f| f.as_ref())
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "this worker is not set up for {}'s forge {:?}: {}",
                    repo,
                    repo.forge(),
                    match repo.forge() {
                        "gitlab" => "set GITLAB_TOKEN (and GITLAB_URL) on the worker",
                        _ => "configure that forge on the worker",
                    }
                ))
            })
    }
}

/// `body` ending with `Closes #N`, which links (and on merge closes) the issue
/// on both forges.
pub(crate) fn closing(issue: &TaskId, body: &str) -> String {
    let closes = format!("Closes #{}", issue.number());
    match body.trim() {
        b if b.contains(&closes) => body.to_string(),
        "" => closes,
        b => format!("{b}\n\n{closes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::secret::Secret;

    fn id(s: &str) -> TaskId {
        s.parse().unwrap()
    }

    #[test]
    fn a_description_says_once_that_it_closes_the_issue() {
        let issue = id("gitlab:group/sub/project#12");
        assert_eq!(closing(&issue, ""), "Closes #12");
        assert_eq!(closing(&issue, "Done."), "Done.\n\nCloses #12");
        assert_eq!(
            closing(&issue, "Done.\n\nCloses #12"),
            "Done.\n\nCloses #12"
        );
    }

    #[test]
    fn each_task_goes_to_its_forge_and_a_missing_one_is_a_retryable_failure() {
        let author = ("w".to_string(), "w@example.invalid".to_string());
        let only_github = Forges::new().with(
            "github",
            Arc::new(GitHubForge::new("http://api", "http://hub", None)),
        );
        let lab = id("gitlab:group/sub/project#1").repo_name();
        let e = only_github.of(&lab).err().expect("no GitLab settings");
        assert!(e.is_retryable(), "another worker may have them: {e}");
        assert!(e.to_string().contains("GITLAB_TOKEN"), "{e}");

        let both = only_github.with(
            "gitlab",
            Arc::new(GitLabForge::new("http://lab/", Secret::new("glpat-x"))),
        );
        let remote = both.of(&lab).unwrap().remote(&lab, None, &author);
        assert_eq!(remote.base_url, "http://lab");
        assert_eq!(remote.user, "oauth2");
        let hub = id("acme/widgets#1").repo_name();
        let remote = both.of(&hub).unwrap().remote(&hub, None, &author);
        assert_eq!(remote.base_url, "http://hub");
        assert!(remote.token.is_none());
    }
}
