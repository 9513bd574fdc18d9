//! The [`IssueSource`] of [`GitLabClient`]: the listing of ready issues, an
//! issue's state, labels in one edit, and comments (notes) with hidden markers.
//! Trust, blockers and merge requests live in their own modules and are only
//! routed here.

use async_trait::async_trait;
use http::Method;
use scrum_core::follow_up::PullStatus;
use scrum_core::model::text_digest;
use scrum_core::pull_gate::{PullReview, PullState};
use scrum_core::source::{Commented, IssueState, Provenance};
use scrum_core::{Error, IssueSource, Person, ReadyIssue, RepoName, Result, TaskId};
use serde_json::json;

use crate::client::{GitLabClient, issue_path, project_path};
use crate::time::parse_time;
use crate::transport::encode;
use crate::wire;

/// The hidden marker as it appears in a note's body.
pub(crate) fn marker_tag(marker: &str) -> String {
    format!("<!-- {marker} -->")
}

fn issue_what(action: &str, id: &TaskId) -> String {
    format!("{action} {id}")
}

impl GitLabClient {
    /// The ready issues of one project, every page, each page asked for with its
    /// last ETag.
    async fn list_project(&self, project: &RepoName) -> Result<Vec<ReadyIssue>> {
        let labels = self.labels();
        let wanted: Vec<&str> = labels.ready.iter().map(String::as_str).collect();
        let path = format!(
            "/projects/{}/issues?state=opened&labels={}&order_by=created_at&sort=asc",
            project_path(project)?,
            encode(&wanted.join(","))
        );
        let what = format!("listing the ready issues of {project}");
        let issues: Vec<wire::Issue> = self.inner.transport.get_all(&path, true, &what).await?;
        Ok(issues
            .into_iter()
            .filter(|i| i.is_open() && labels.is_ready(&i.labels))
            .map(|i| ReadyIssue {
                id: TaskId::in_repo(project, i.iid),
                created_at: parse_time(&i.created_at).unwrap_or_default(),
                body: i.description.unwrap_or_default(),
                title: i.title,
                labels: i.labels,
            })
            .collect())
    }

    /// The issue as GitLab has it now.
    pub(crate) async fn issue(&self, id: &TaskId) -> Result<wire::Issue> {
        self.inner
            .transport
            .get_json(&issue_path(id)?, &issue_what("reading", id))
            .await
    }

    /// The notes of an issue, every page, oldest first.
    async fn notes(&self, id: &TaskId) -> Result<Vec<wire::Note>> {
        let path = format!("{}/notes?sort=asc&order_by=created_at", issue_path(id)?);
        self.inner
            .transport
            .get_all(&path, false, &issue_what("reading the notes of", id))
            .await
    }

    /// The first note holding `tag`.
    async fn note_with(&self, id: &TaskId, tag: &str) -> Result<Option<wire::Note>> {
        Ok(self
            .notes(id)
            .await?
            .into_iter()
            .find(|n| n.body.contains(tag)))
    }

    async fn post_note(&self, id: &TaskId, body: String) -> Result<()> {
        let path = format!("{}/notes", issue_path(id)?);
        let _: wire::Note = self
            .inner
            .transport
            .write(
                Method::POST,
                &path,
                json!({ "body": body }),
                &issue_what("commenting on", id),
            )
            .await?;
        Ok(())
    }
}

fn check_marker(marker: &str) -> Result<()> {
    if marker.trim().is_empty() || marker.contains("--") || marker.contains('>') {
        return Err(Error::invalid(format!(
            "comment marker {marker:?} must be non-empty and hold no '--' or '>'"
        )));
    }
    Ok(())
}

/// The labels of `add` the issue lacks, and those it carries of `remove` (as it
/// spells them), both matched whatever their case.
fn label_change(
    current: &[String],
    add: &[String],
    remove: &[String],
) -> (Vec<String>, Vec<String>) {
    let has = |l: &str| current.iter().any(|c| c.eq_ignore_ascii_case(l));
    let removed = |l: &str| remove.iter().any(|r| r.eq_ignore_ascii_case(l));
    let mut adding: Vec<String> = Vec::new();
    for l in add {
        if !has(l) && !removed(l) && !adding.iter().any(|a| a.eq_ignore_ascii_case(l)) {
            adding.push(l.clone());
        }
    }
    let removing = current.iter().filter(|c| removed(c)).cloned().collect();
    (adding, removing)
}

#[async_trait]
impl IssueSource for GitLabClient {
    /// Every configured project's open issues carrying the ready labels
    /// (`labels=` narrows GitLab's answer, the ready rule is applied again here),
    /// every page, conditionally. One project failing fails the listing.
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        let mut out = Vec::new();
        for project in self.projects() {
            out.extend(self.list_project(project).await?);
        }
        Ok(out)
    }

    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        let issue = self.issue(id).await?;
        Ok(IssueState {
            open: issue.is_open(),
            digest: Some(text_digest(
                &issue.title,
                issue.description.as_deref().unwrap_or(""),
            )),
            labels: issue.labels,
        })
    }

    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        self.set_labels(id, labels, &[]).await
    }

    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        self.set_labels(id, &[], &[label.to_string()]).await
    }

    /// Reads the issue's labels, then one `PUT` with `add_labels` and
    /// `remove_labels` when anything changes (GitLab creates a missing label).
    async fn set_labels(&self, id: &TaskId, add: &[String], remove: &[String]) -> Result<()> {
        let issue = self.issue(id).await?;
        let (adding, removing) = label_change(&issue.labels, add, remove);
        if adding.is_empty() && removing.is_empty() {
            return Ok(());
        }
        let mut body = serde_json::Map::new();
        if !adding.is_empty() {
            body.insert("add_labels".into(), json!(adding.join(",")));
        }
        if !removing.is_empty() {
            body.insert("remove_labels".into(), json!(removing.join(",")));
        }
        let _: wire::Issue = self
            .inner
            .transport
            .write(
                Method::PUT,
                &issue_path(id)?,
                body.into(),
                &issue_what("labelling", id),
            )
            .await?;
        Ok(())
    }

    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        check_marker(marker)?;
        let tag = marker_tag(marker);
        if self.note_with(id, &tag).await?.is_some() {
            return Ok(Commented::AlreadyPresent);
        }
        self.post_note(id, format!("{body}\n\n{tag}")).await?;
        Ok(Commented::Posted)
    }

    async fn upsert_comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        check_marker(marker)?;
        let tag = marker_tag(marker);
        let text = format!("{body}\n\n{tag}");
        let Some(note) = self.note_with(id, &tag).await? else {
            self.post_note(id, text).await?;
            return Ok(Commented::Posted);
        };
        if note.body == text {
            return Ok(Commented::Updated);
        }
        let path = format!("{}/notes/{}", issue_path(id)?, note.id);
        let _: wire::Note = self
            .inner
            .transport
            .write(
                Method::PUT,
                &path,
                json!({ "body": text }),
                &issue_what("editing a note on", id),
            )
            .await?;
        Ok(Commented::Updated)
    }

    async fn labelled_by(&self, id: &TaskId) -> Result<Person> {
        self.labeller(id).await
    }

    async fn edited_by(&self, id: &TaskId) -> Result<Option<Person>> {
        self.editor(id).await
    }

    async fn opened_by(&self, id: &TaskId) -> Result<Person> {
        self.author(id).await
    }

    async fn provenance(&self, ids: &[TaskId], author: bool) -> Result<Vec<Result<Provenance>>> {
        self.provenance_of(ids, author).await
    }

    async fn blocked_by(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        self.blockers(id).await
    }

    async fn pull_state(&self, repo: &RepoName, number: u64) -> Result<Option<PullState>> {
        Ok(Some(self.merge_request_review(repo, number).await?.state))
    }

    async fn pull_review(&self, repo: &RepoName, number: u64) -> Result<Option<PullReview>> {
        Ok(Some(self.merge_request_review(repo, number).await?))
    }

    async fn pull_status(
        &self,
        repo: &RepoName,
        number: u64,
        checks: &[String],
    ) -> Result<Option<PullStatus>> {
        Ok(Some(self.merge_request_status(repo, number, checks).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_label_change_matches_whatever_the_case() {
        let current = s(&["ai-ready", "Backend"]);
        let (add, remove) = label_change(&current, &s(&["backend", "AI-Done"]), &s(&["AI-READY"]));
        assert_eq!(add, s(&["AI-Done"]));
        assert_eq!(remove, s(&["ai-ready"]));
        let (add, remove) = label_change(&current, &s(&["BACKEND"]), &s(&["gone"]));
        assert!(add.is_empty() && remove.is_empty());
    }
}
