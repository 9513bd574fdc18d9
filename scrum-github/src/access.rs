//! What a deployment can check on GitHub before its first issue: what the token may
//! do in each repository ([`RepoAccess`]), whether a label exists, and the
//! repository's webhooks ([`Hook`]). Every read here changes nothing on GitHub;
//! [`GitHubClient::create_label`] is the one write, made only when asked.
//!
//! `scrum-orchestrator doctor` is the caller.

use http::StatusCode;
use scrum_core::{RepoName, Result};
use serde::Deserialize;

use crate::classify::{Subject, What};
use crate::client::GitHubClient;
use crate::transport::Call;
use crate::wire::encode_segment;

/// What GitHub grants the token's user in one repository (`permissions` of
/// `GET /repos/{owner}/{repo}`): its role, from `admin` down to `pull`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Grants {
    /// Administers the repository (reads its webhooks).
    #[serde(default)]
    pub admin: bool,
    /// Maintains it.
    #[serde(default)]
    pub maintain: bool,
    /// Writes (pushes branches, opens pull requests).
    #[serde(default)]
    pub push: bool,
    /// Triages (labels and comments on issues).
    #[serde(default)]
    pub triage: bool,
    /// Reads.
    #[serde(default)]
    pub pull: bool,
}

impl Grants {
    /// Reads issues and pull requests: any role.
    pub fn can_read(&self) -> bool {
        self.pull || self.can_write_issues()
    }

    /// Labels and comments on issues: triage, write, maintain or admin.
    pub fn can_write_issues(&self) -> bool {
        self.triage || self.can_push()
    }

    /// Pushes branches and opens pull requests: write, maintain or admin.
    pub fn can_push(&self) -> bool {
        self.push || self.maintain || self.admin
    }

    /// What is granted, e.g. `push, triage, pull`, or `none`.
    pub fn granted(&self) -> String {
        let names = [
            (self.admin, "admin"),
            (self.maintain, "maintain"),
            (self.push, "push"),
            (self.triage, "triage"),
            (self.pull, "pull"),
        ];
        let granted: Vec<&str> = names.iter().filter(|(g, _)| *g).map(|(_, n)| *n).collect();
        if granted.is_empty() {
            "none".to_string()
        } else {
            granted.join(", ")
        }
    }
}

/// What the token may do in one repository, as GitHub answered `GET /repos/{repo}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoAccess {
    /// The repository.
    pub repo: RepoName,
    /// Whether it is private (a classic token then needs the `repo` scope, not
    /// just `public_repo`).
    pub private: bool,
    /// The token's user's role there; `None` when GitHub sent none (an app's token).
    pub grants: Option<Grants>,
    /// A classic token's scopes (`X-OAuth-Scopes`); `None` when GitHub sent no such
    /// header (a fine-grained token or an app's, whose own permissions no read shows).
    pub scopes: Option<Vec<String>>,
}

impl RepoAccess {
    /// Whether a classic token's scopes let it write issues here (`repo`, or
    /// `public_repo` on a public repository); `None` for a token without scopes.
    pub fn scopes_allow_writes(&self) -> Option<bool> {
        let scopes = self.scopes.as_ref()?;
        let has = |s: &str| scopes.iter().any(|x| x == s);
        Some(has("repo") || (!self.private && has("public_repo")))
    }
}

/// One webhook of a repository (`GET /repos/{repo}/hooks`). GitHub never shows a
/// hook's secret, only whether it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// GitHub's id of the hook.
    pub id: u64,
    /// Where deliveries go (`config.url`).
    pub url: String,
    /// Whether deliveries are sent.
    pub active: bool,
    /// Whether a secret signs deliveries.
    pub has_secret: bool,
    /// The events it sends.
    pub events: Vec<String>,
    /// The HTTP status of the last delivery, when there was one.
    pub last_status: Option<u16>,
}

#[derive(Deserialize)]
struct RepoWire {
    #[serde(default)]
    private: bool,
    #[serde(default)]
    permissions: Option<Grants>,
}

#[derive(Deserialize)]
struct HookWire {
    id: u64,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    config: HookConfig,
    #[serde(default)]
    last_response: Option<LastResponse>,
}

#[derive(Default, Deserialize)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
struct LastResponse {
    #[serde(default)]
    code: Option<u16>,
}

impl GitHubClient {
    /// What the token may do in `repo`.
    ///
    /// # Errors
    /// `Unauthorized` for a refused token, `NotFound` for a repository the token
    /// cannot see; the transport's errors.
    pub async fn repo_access(&self, repo: &RepoName) -> Result<RepoAccess> {
        let what = repo_what("read", repo);
        let reply = self
            .inner
            .transport
            .send(&Call::get(format!("/repos/{repo}"), what.clone()))
            .await?
            .success(&what)?;
        let wire: RepoWire = reply.json(&what)?;
        let scopes = reply.header("x-oauth-scopes").map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        });
        Ok(RepoAccess {
            repo: repo.clone(),
            private: wire.private,
            grants: wire.permissions,
            scopes,
        })
    }

    /// Whether `label` exists in `repo` (GitHub matches names whatever their case).
    ///
    /// # Errors
    /// The transport's errors; `NotFound` never (a missing label is `false`).
    pub async fn has_label(&self, repo: &RepoName, label: &str) -> Result<bool> {
        let what = repo_what("read a label of", repo);
        let path = format!("/repos/{repo}/labels/{}", encode_segment(label));
        let reply = self
            .inner
            .transport
            .send(&Call::get(path, what.clone()))
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        reply.success(&what)?;
        Ok(true)
    }

    /// Creates `label` in `repo` with the colour the client gives it, unless it
    /// exists.
    ///
    /// # Errors
    /// `Forbidden` when the token may not; the transport's errors.
    pub async fn create_label(&self, repo: &RepoName, label: &str) -> Result<()> {
        self.ensure_label(repo, label).await
    }

    /// The repository's webhooks; `None` when the token may not read them (GitHub
    /// shows hooks to admins only, and answers others 404 or 403).
    ///
    /// # Errors
    /// The transport's errors.
    pub async fn hooks(&self, repo: &RepoName) -> Result<Option<Vec<Hook>>> {
        let what = repo_what("read the webhooks of", repo);
        let path = format!("/repos/{repo}/hooks?per_page=100");
        let reply = self
            .inner
            .transport
            .send(&Call::get(path, what.clone()))
            .await?;
        if matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) {
            return Ok(None);
        }
        let wire: Vec<HookWire> = reply.success(&what)?.json(&what)?;
        Ok(Some(
            wire.into_iter()
                .map(|h| Hook {
                    id: h.id,
                    url: h.config.url.unwrap_or_default(),
                    active: h.active,
                    has_secret: h.config.secret.is_some_and(|s| !s.is_empty()),
                    events: h.events,
                    last_status: h.last_response.and_then(|r| r.code),
                })
                .collect(),
        ))
    }
}

fn repo_what(action: &'static str, repo: &RepoName) -> What {
    What {
        action,
        subject: Subject::Repo(repo.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_write_and_push_as_github_defines_them() {
        let triage = Grants {
            triage: true,
            pull: true,
            ..Grants::default()
        };
        assert!(triage.can_read() && triage.can_write_issues() && !triage.can_push());
        let read = Grants {
            pull: true,
            ..Grants::default()
        };
        assert!(read.can_read() && !read.can_write_issues());
        assert_eq!(read.granted(), "pull");
        assert_eq!(Grants::default().granted(), "none");
    }

    #[test]
    fn a_classic_token_needs_repo_or_public_repo_on_a_public_repository() {
        let access = |private, scopes: Option<&[&str]>| RepoAccess {
            repo: "acme/widgets".parse().unwrap(),
            private,
            grants: None,
            scopes: scopes.map(|s| s.iter().map(|x| x.to_string()).collect()),
        };
        assert_eq!(access(false, None).scopes_allow_writes(), None);
        assert_eq!(
            access(false, Some(&["public_repo"])).scopes_allow_writes(),
            Some(true)
        );
        assert_eq!(
            access(true, Some(&["public_repo"])).scopes_allow_writes(),
            Some(false)
        );
        assert_eq!(
            access(true, Some(&["repo", "workflow"])).scopes_allow_writes(),
            Some(true)
        );
        assert_eq!(
            access(false, Some(&["read:org"])).scopes_allow_writes(),
            Some(false)
        );
    }
}
