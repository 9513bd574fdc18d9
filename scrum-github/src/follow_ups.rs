//! What follow-ups read of a pull request on GitHub
//! ([`scrum_core::IssueSource::pull_status`]): the pull request (its head commit,
//! base branch and whether it can merge), its review state as review gating reads
//! it, its head commit's checks (`crate::checks`) and its `/agent` comments, each
//! author's permission judged as the trust rules judge it; and the one status
//! comment that follows it, edited in place
//! ([`scrum_core::IssueSource::upsert_comment`]).
//!
//! Costs per tracked pull request and poll, when nothing changed: every read is
//! conditional (a 304 costs no rate-limit point): the pull request, its reviews,
//! its head's check runs and combined status, and its comments only when it has
//! any (the pull request counts them). Required checks are read once a minute per
//! branch, permissions once a minute per person, a failed check's annotations and
//! log once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use scrum_core::follow_up::{AgentComment, Checks, Mergeable, PullStatus};
use scrum_core::pull_gate::PullState;
use scrum_core::{Commented, Error, ErrorKind, Person, RepoName, Result, TaskId, Timestamp};
use serde_json::json;

use crate::classify::{Subject, What};
use crate::client::{GitHubClient, issue_path, issue_what};
use crate::reviews::parse;
use crate::sync::lock;
use crate::transport::Call;
use crate::wire::{self, PullComment, PullDetail};

/// The pull requests whose status was read, by head commit: a `status` webhook
/// names a commit, not a pull request, and is routed through this.
///
/// Cheap to clone: clones share the index. [`GitHubClient::pull_heads`] gives the
/// client's; [`crate::webhook::WebhookSecret::with_pull_heads`] lets the webhook
/// read it.
#[derive(Clone, Debug, Default)]
pub struct PullHeads(Arc<Mutex<HashMap<(String, String), u64>>>);

/// The most head commits remembered; past it the index starts over.
const HEADS_MAX: usize = 10_000;

impl PullHeads {
    /// Remembers that pull request `number` of `repo` has head commit `sha`.
    pub fn remember(&self, repo: &str, sha: &str, number: u64) {
        let mut map = lock(&self.0);
        if map.len() >= HEADS_MAX {
            map.clear();
        }
        map.insert((repo.to_ascii_lowercase(), sha.to_string()), number);
    }

    /// The pull request of `repo` whose head commit is `sha`, if one was read.
    pub fn pull_of(&self, repo: &str, sha: &str) -> Option<u64> {
        lock(&self.0)
            .get(&(repo.to_ascii_lowercase(), sha.to_string()))
            .copied()
    }
}

/// `mergeable` and `mergeable_state` as one of three answers.
pub(crate) fn mergeable(pull: &PullDetail) -> Mergeable {
    match (pull.mergeable, pull.mergeable_state.as_deref()) {
        (_, Some("dirty")) | (Some(false), _) => Mergeable::Conflict,
        (Some(true), _) => Mergeable::Clean,
        _ => Mergeable::Unknown,
    }
}

impl GitHubClient {
    /// See [`scrum_core::IssueSource::pull_status`].
    pub(crate) async fn read_pull_status(
        &self,
        repo: &RepoName,
        number: u64,
        checks: &[String],
    ) -> Result<PullStatus> {
        let t = &self.inner.transport;
        let page = self.inner.reviews.pull_page(t, repo, number).await?;
        let body = page.body;
        let what = What {
            action: "read a pull request of",
            subject: Subject::Repo(repo.clone()),
        };
        let pull: PullDetail = parse(&body, &what)?;
        let (state, latest) = self.inner.reviews.review(t, repo, number, &body).await?;
        let review = self.review_of(repo, state, latest).await?;
        let mut status = PullStatus::of_review(review);
        status.head = pull.head.sha.clone();
        if !matches!(state, PullState::Merged | PullState::Closed) {
            self.inner
                .pull_heads
                .remember(repo.as_str(), &pull.head.sha, number);
            status.mergeable = mergeable(&pull);
            status.checks = self.head_checks(repo, &pull, checks).await?;
            status.comments = self
                .agent_comments(repo, number, &pull, page.unchanged)
                .await?;
        }
        Ok(status)
    }

    /// The review state with the request for changes behind it, if any.
    pub(crate) async fn review_of(
        &self,
        repo: &RepoName,
        state: PullState,
        latest: Option<wire::PullReview>,
    ) -> Result<scrum_core::pull_gate::PullReview> {
        let change_request = match latest {
            Some(review) => Some(self.change_request(repo, review).await?),
            None => None,
        };
        Ok(scrum_core::pull_gate::PullReview {
            state,
            change_request,
        })
    }

    async fn head_checks(
        &self,
        repo: &RepoName,
        pull: &PullDetail,
        named: &[String],
    ) -> Result<Checks> {
        if pull.head.sha.is_empty() {
            return Ok(Checks::default());
        }
        crate::checks::read_checks(
            &self.inner.transport,
            &self.inner.reviews,
            &self.inner.checks,
            repo,
            &pull.head.sha,
            &pull.base.branch,
            named,
        )
        .await
    }

    /// The pull request's comments that start with `/agent`, conversation and
    /// review comments together, oldest first. While the pull request itself is
    /// `unchanged` (it counts its comments), the lists last read stand.
    async fn agent_comments(
        &self,
        repo: &RepoName,
        number: u64,
        pull: &PullDetail,
        unchanged: bool,
    ) -> Result<Vec<AgentComment>> {
        let key = (repo.clone(), number);
        let known = lock(&self.inner.agent_comments).get(&key).cloned();
        let all = match known.filter(|_| unchanged) {
            Some(all) => all,
            None => {
                let all = self.read_agent_comments(repo, number, pull).await?;
                let mut map = lock(&self.inner.agent_comments);
                if map.len() >= HEADS_MAX {
                    map.clear();
                }
                map.insert(key, all.clone());
                all
            }
        };
        let mut out = Vec::with_capacity(all.len());
        for c in all {
            out.push(self.agent_comment(repo, c).await?);
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Reads both comment lists (each only when the pull request counts any) and
    /// keeps the `/agent` comments.
    async fn read_agent_comments(
        &self,
        repo: &RepoName,
        number: u64,
        pull: &PullDetail,
    ) -> Result<Vec<PullComment>> {
        let what = What {
            action: "read the comments of",
            subject: Subject::Repo(repo.clone()),
        };
        let t = &self.inner.transport;
        let reviews = &self.inner.reviews;
        let mut all: Vec<PullComment> = Vec::new();
        if pull.comments != Some(0) {
            let path = format!("/repos/{repo}/issues/{number}/comments?per_page=100");
            all.extend(reviews.all_pages::<PullComment>(t, path, &what).await?);
        }
        if pull.review_comments != Some(0) {
            let path = format!("/repos/{repo}/pulls/{number}/comments?per_page=100");
            all.extend(reviews.all_pages::<PullComment>(t, path, &what).await?);
        }
        all.retain(|c| is_agent(c.body.as_deref().unwrap_or_default()));
        Ok(all)
    }

    async fn agent_comment(&self, repo: &RepoName, c: PullComment) -> Result<AgentComment> {
        let (login, may_approve) = match &c.user {
            Some(actor) => (actor.login.clone(), self.may_approve(repo, actor).await?),
            None => ("ghost".to_string(), false),
        };
        let at = wire::parse_time(&c.created_at).unwrap_or(Timestamp(0));
        let path = c.path.as_ref().map(|p| match c.line.or(c.original_line) {
            Some(line) => format!("{p}:{line}"),
            None => p.clone(),
        });
        Ok(AgentComment {
            id: c.id.to_string(),
            author: Person {
                login,
                may_approve,
                at: Some(at),
            },
            body: c.body.unwrap_or_default(),
            at,
            path,
        })
    }

    /// See [`scrum_core::IssueSource::upsert_comment`]: the comment holding `tag` is
    /// edited (unless it already says `body`), else one is posted.
    pub(crate) async fn upsert(&self, id: &TaskId, tag: &str, body: &str) -> Result<Commented> {
        let text = format!("{body}\n\n{tag}");
        let t = &self.inner.transport;
        let mut retry = 0;
        loop {
            if let Some(found) = self.comment_with(id, tag).await? {
                if found.body.as_deref() != Some(text.as_str()) {
                    self.edit_comment(id, found.id, &text).await?;
                }
                return Ok(Commented::Updated);
            }
            let what = issue_what("comment on", id);
            let path = format!("{}/comments", issue_path(id));
            let call = Call::with_body(Method::POST, path, json!({ "body": text }), what.clone());
            match t.send(&call).await.and_then(|r| r.success(&what)) {
                Ok(_) => return Ok(Commented::Posted),
                // The comment may have been written although the answer was lost:
                // look again before posting again.
                Err(e)
                    if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
                        && retry < t.retries() =>
                {
                    retry += 1;
                    tracing::warn!(error = %e, issue = %id, "posting a comment failed; checking before retrying");
                    t.pause(retry).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `PATCH /repos/{repo}/issues/comments/{id}`.
    async fn edit_comment(&self, id: &TaskId, comment: u64, text: &str) -> Result<()> {
        let what = issue_what("edit a comment on", id);
        let path = format!("/repos/{}/issues/comments/{comment}", id.repo());
        let call = Call::with_body(Method::PATCH, path, json!({ "body": text }), what.clone());
        let reply = self.inner.transport.send(&call).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!(
                "the comment to edit on {id} was deleted meanwhile"
            )));
        }
        reply.success(&what)?;
        Ok(())
    }
}

/// Whether a comment asks the agent: its text starts with `/agent` (then a space,
/// a line break or nothing).
pub(crate) fn is_agent(body: &str) -> bool {
    let body = body.trim_start();
    body.strip_prefix("/agent")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(mergeable: Option<bool>, state: Option<&str>) -> PullDetail {
        serde_json::from_value(json!({
            "head": {"ref": "f", "sha": "abc"}, "base": {"ref": "main", "sha": "def"},
            "mergeable": mergeable, "mergeable_state": state
        }))
        .unwrap()
    }

    #[test]
    fn mergeability_reads_as_github_reports_it() {
        assert_eq!(
            mergeable(&pull(Some(false), Some("dirty"))),
            Mergeable::Conflict
        );
        assert_eq!(mergeable(&pull(Some(false), None)), Mergeable::Conflict);
        assert_eq!(mergeable(&pull(None, Some("dirty"))), Mergeable::Conflict);
        assert_eq!(
            mergeable(&pull(Some(true), Some("blocked"))),
            Mergeable::Clean
        );
        assert_eq!(mergeable(&pull(None, Some("unknown"))), Mergeable::Unknown);
    }

    #[test]
    fn only_comments_starting_with_agent_ask_the_agent() {
        assert!(is_agent("/agent rename foo"));
        assert!(is_agent("  /agent\nplease"));
        assert!(is_agent("/agent"));
        assert!(!is_agent("/agents are great"));
        assert!(!is_agent("please /agent fix"));
    }
}
