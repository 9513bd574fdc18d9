//! Who vouches for an issue's text on GitLab: who last added a ready label (the
//! issue's resource label events), who last edited it (the issue's
//! `last_edited_by`, else `updated_by_id`), who opened it, and whether each may
//! approve work for an agent: Developer access (30) or more to the project.

use scrum_core::source::Provenance;
use scrum_core::{Error, ErrorKind, Person, RepoName, Result, TaskId, Timestamp};
use serde::Deserialize;

use crate::client::{DEVELOPER, GitLabClient, issue_path};
use crate::wire::{Issue, LabelEvent, User};

/// How many issues' provenance is read at once.
const PROVENANCE_AT_ONCE: usize = 8;

/// `GET /users/:id`, for the name of an editor GitLab gives by id only.
#[derive(Deserialize)]
struct UserById {
    username: String,
}

impl GitLabClient {
    /// `user` as a [`Person`] of `project`, with whether they may approve.
    async fn person(
        &self,
        project: &RepoName,
        user: &User,
        at: Option<Timestamp>,
    ) -> Result<Person> {
        let level = self.access_level(project.path(), user.id).await?;
        Ok(Person {
            login: user.username.clone(),
            may_approve: level >= DEVELOPER,
            at,
        })
    }

    /// See [`scrum_core::IssueSource::labelled_by`]: the last `add` of a ready
    /// label among the issue's label events.
    pub(crate) async fn labeller(&self, id: &TaskId) -> Result<Person> {
        let path = format!("{}/resource_label_events?sort=asc", issue_path(id)?);
        let events: Vec<LabelEvent> = self
            .inner
            .transport
            .get_all(&path, true, &format!("reading the label events of {id}"))
            .await?;
        let ready = &self.labels().ready;
        let last = events.iter().rev().find(|e| {
            e.action == "add"
                && e.label
                    .as_ref()
                    .is_some_and(|l| ready.iter().any(|r| r.eq_ignore_ascii_case(&l.name)))
        });
        match last.and_then(|e| e.user.as_ref().map(|u| (u, e))) {
            Some((user, e)) => {
                self.person(
                    &id.repo_name(),
                    user,
                    Timestamp::parse_rfc3339(&e.created_at),
                )
                .await
            }
            // A label whose application GitLab does not show is nobody's approval.
            None => Ok(Person {
                login: "unknown".into(),
                may_approve: false,
                at: None,
            }),
        }
    }

    /// See [`scrum_core::IssueSource::edited_by`].
    pub(crate) async fn editor(&self, id: &TaskId) -> Result<Option<Person>> {
        let issue = self.issue(id).await?;
        self.editor_of(id, issue).await
    }

    /// The last editor of `issue` (read already).
    async fn editor_of(&self, id: &TaskId, issue: Issue) -> Result<Option<Person>> {
        let at = issue
            .last_edited_at
            .as_deref()
            .or(issue.updated_at.as_deref())
            .and_then(Timestamp::parse_rfc3339);
        let user = match (issue.last_edited_by, issue.updated_by_id) {
            (Some(user), _) => user,
            (None, Some(user_id)) => {
                let found: UserById = self
                    .inner
                    .transport
                    .get_json(&format!("/users/{user_id}"), "reading an editor's name")
                    .await?;
                User {
                    id: user_id,
                    username: found.username,
                }
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(self.person(&id.repo_name(), &user, at).await?))
    }

    /// See [`scrum_core::IssueSource::opened_by`].
    pub(crate) async fn author(&self, id: &TaskId) -> Result<Person> {
        let issue = self.issue(id).await?;
        self.author_of(id, &issue).await
    }

    async fn author_of(&self, id: &TaskId, issue: &Issue) -> Result<Person> {
        let at = Timestamp::parse_rfc3339(&issue.created_at);
        self.person(&id.repo_name(), &issue.author, at).await
    }

    /// See [`scrum_core::IssueSource::provenance`]: per issue, the issue read once
    /// (its state, editor and author) and its label events; each member's access
    /// read once a minute.
    pub(crate) async fn provenance_of(
        &self,
        ids: &[TaskId],
        author: bool,
    ) -> Result<Vec<Result<Provenance>>> {
        let mut out: Vec<Option<Result<Provenance>>> = ids.iter().map(|_| None).collect();
        // GitLab has no batch read of label events: a few issues at a time, so a
        // backlog costs its requests in a fraction of their one-by-one latency.
        for (chunk, start) in ids
            .chunks(PROVENANCE_AT_ONCE)
            .zip((0..).step_by(PROVENANCE_AT_ONCE))
        {
            let mut reads = tokio::task::JoinSet::new();
            for (i, id) in chunk.iter().enumerate() {
                let (client, id) = (self.clone(), id.clone());
                reads.spawn(async move { (start + i, client.provenance_one(&id, author).await) });
            }
            while let Some(read) = reads.join_next().await {
                let (i, one) = read.map_err(|e| {
                    Error::new(ErrorKind::Internal, "a provenance read stopped").with_source(e)
                })?;
                match one {
                    // GitLab as a whole failing fails the call; one issue, its answer.
                    Err(e) if whole_failure(&e) => return Err(e),
                    one => out[i] = Some(one),
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    async fn provenance_one(&self, id: &TaskId, author: bool) -> Result<Provenance> {
        let issue = self.issue(id).await?;
        let still_ready = issue.is_open() && self.labels().is_ready(&issue.labels);
        let opened_by = match author {
            true => Some(self.author_of(id, &issue).await?),
            false => None,
        };
        Ok(Provenance {
            labelled_by: self.labeller(id).await?,
            edited_by: self.editor_of(id, issue).await?,
            opened_by,
            still_ready,
        })
    }
}

/// Whether an error is GitLab's as a whole (a rate limit, a refused token, an
/// outage) rather than one issue's.
fn whole_failure(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::RateLimited
            | ErrorKind::Unauthorized
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
    )
}
