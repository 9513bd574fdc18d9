//! Merge requests: opening one for a pushed branch (idempotent), and reading one
//! for review gating and follow-ups: its state, approvals and reviewers who
//! requested changes (with their latest note as the request), whether it
//! conflicts, its head pipeline's jobs (a failed job with the tail of its log),
//! and its `/agent` notes with their authors' access.

use http::Method;
use scrum_core::follow_up::{
    AgentComment, Checks, ChecksState, FailedCheck, Mergeable, PullStatus,
};
use scrum_core::pull_gate::{ChangeRequest, PullReview, PullState};
use scrum_core::{ErrorKind, Person, RepoName, Result, Timestamp};
use serde_json::json;

use crate::client::{DEVELOPER, GitLabClient, project_path};
use crate::transport::encode;
use crate::wire::{Approvals, Job, MergeRequest, Note, Reviewer};

/// How much of a failed job's log the agent gets: its last lines, at most this
/// many characters.
pub(crate) const LOG_TAIL_CHARS: usize = 4000;

/// Job states that mean the pipeline still runs.
const RUNNING: [&str; 7] = [
    "created",
    "pending",
    "running",
    "preparing",
    "waiting_for_resource",
    "waiting_for_callback",
    "scheduled",
];

impl GitLabClient {
    /// Opens a merge request from `source` into `target`, or finds the open one
    /// from `source`; answers its web URL. Safe to call again after a failure:
    /// it looks for the merge request before opening one.
    ///
    /// # Errors
    /// `NotFound` for an unknown project or branch (GitLab's message says
    /// which); the transport's errors.
    pub async fn open_merge_request(
        &self,
        project: &RepoName,
        source: &str,
        target: &str,
        title: &str,
        description: &str,
    ) -> Result<String> {
        let base = format!("/projects/{}/merge_requests", project_path(project)?);
        let what = format!("opening a merge request from {source} in {project}");
        let mut tries = 0;
        loop {
            if let Some(open) = self.open_from(&base, source, project).await? {
                return Ok(open.web_url);
            }
            let body = json!({
                "source_branch": source,
                "target_branch": target,
                "title": title,
                "description": description,
            });
            match self
                .inner
                .transport
                .write::<MergeRequest>(Method::POST, &base, body, &what)
                .await
            {
                Ok(mr) => return Ok(mr.web_url),
                // Opened meanwhile (409), or perhaps opened although the answer was
                // lost: look again.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Conflict | ErrorKind::Unavailable | ErrorKind::Timeout
                    ) && tries < 3 =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open_from(
        &self,
        base: &str,
        source: &str,
        project: &RepoName,
    ) -> Result<Option<MergeRequest>> {
        let path = format!("{base}?state=opened&source_branch={}", encode(source));
        let found: Vec<MergeRequest> = self
            .inner
            .transport
            .get_json(
                &path,
                &format!("looking for the merge request from {source} in {project}"),
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The description of merge request `iid` of `project` (empty when it has
    /// none): a follow-up keeps its rounds there.
    pub async fn merge_request_description(&self, project: &RepoName, iid: u64) -> Result<String> {
        let (_, mr) = self.merge_request(project, iid).await?;
        Ok(mr.description.unwrap_or_default())
    }

    /// Replaces the description of merge request `iid` of `project`.
    pub async fn set_merge_request_description(
        &self,
        project: &RepoName,
        iid: u64,
        description: &str,
    ) -> Result<()> {
        let base = format!("/projects/{}/merge_requests/{iid}", project_path(project)?);
        let what = format!("editing merge request !{iid} of {project}");
        let body = json!({ "description": description });
        self.inner
            .transport
            .write::<MergeRequest>(Method::PUT, &base, body, &what)
            .await
            .map(|_| ())
    }

    async fn merge_request(&self, project: &RepoName, iid: u64) -> Result<(String, MergeRequest)> {
        let base = format!("/projects/{}/merge_requests/{iid}", project_path(project)?);
        let what = format!("reading merge request !{iid} of {project}");
        let mr = self.inner.transport.get_json(&base, &what).await?;
        Ok((base, mr))
    }

    /// The review state of merge request `iid`: merged, closed, or open and
    /// approved once someone approved it.
    pub(crate) async fn merge_request_review(
        &self,
        project: &RepoName,
        iid: u64,
    ) -> Result<PullReview> {
        let (base, mr) = self.merge_request(project, iid).await?;
        self.review_of(project, &base, &mr, None).await
    }

    /// The review state: merged or closed; else changes requested while a
    /// reviewer's state says so (the request is their latest note), approved
    /// once someone approved, or open. `notes` are the merge request's, when
    /// read already.
    async fn review_of(
        &self,
        project: &RepoName,
        base: &str,
        mr: &MergeRequest,
        notes: Option<&[Note]>,
    ) -> Result<PullReview> {
        match mr.state.as_str() {
            "merged" => return Ok(review(PullState::Merged)),
            "closed" | "locked" => return Ok(review(PullState::Closed)),
            _ => {}
        }
        let what = |of: &str| format!("reading the {of} of !{} in {project}", mr.iid);
        let t = &self.inner.transport;
        let reviewers: Vec<Reviewer> = t
            .get_json(&format!("{base}/reviewers"), &what("reviewers"))
            .await?;
        let asking: Vec<&Reviewer> = reviewers
            .iter()
            .filter(|r| r.state == "requested_changes")
            .collect();
        if !asking.is_empty() {
            let read;
            let notes = match notes {
                Some(notes) => notes,
                None => {
                    read = self.mr_notes(project, base).await?;
                    &read
                }
            };
            return self.change_request(project, &asking, notes).await;
        }
        let approvals: Approvals = t
            .get_json(&format!("{base}/approvals"), &what("approvals"))
            .await?;
        Ok(review(match approvals.approved_by.is_empty() {
            true => PullState::Open,
            false => PullState::Approved,
        }))
    }

    /// Changes requested by `asking`: the one who wrote last, with that note as
    /// the request (its id makes each new request a new follow-up).
    async fn change_request(
        &self,
        project: &RepoName,
        asking: &[&Reviewer],
        notes: &[Note],
    ) -> Result<PullReview> {
        let last_note = |r: &Reviewer| {
            notes
                .iter()
                .rev()
                .find(|n| !n.system && n.author.id == r.user.id)
        };
        let latest = asking
            .iter()
            .max_by_key(|r| last_note(r).map_or(0, |n| n.id))
            .copied();
        let Some(reviewer) = latest else {
            return Ok(review(PullState::ChangesRequested));
        };
        let said = last_note(reviewer);
        let level = self.access_level(project.path(), reviewer.user.id).await?;
        Ok(PullReview {
            state: PullState::ChangesRequested,
            change_request: Some(ChangeRequest {
                id: format!("changes:{}:{}", reviewer.user.id, said.map_or(0, |n| n.id)),
                reviewer: Person {
                    login: reviewer.user.username.clone(),
                    may_approve: level >= DEVELOPER,
                    at: said
                        .and_then(|n| n.created_at.as_deref())
                        .and_then(Timestamp::parse_rfc3339),
                },
                body: said.map(|n| n.body.clone()).unwrap_or_default(),
            }),
        })
    }

    /// Every note of the merge request at `base`, oldest first.
    async fn mr_notes(&self, project: &RepoName, base: &str) -> Result<Vec<Note>> {
        self.inner
            .transport
            .get_all(
                &format!("{base}/notes?sort=asc&order_by=created_at"),
                false,
                &format!("reading the notes of a merge request in {project}"),
            )
            .await
    }

    /// What follow-ups need of merge request `iid` (see
    /// [`scrum_core::IssueSource::pull_status`]).
    pub(crate) async fn merge_request_status(
        &self,
        project: &RepoName,
        iid: u64,
        checks: &[String],
    ) -> Result<PullStatus> {
        let (base, mr) = self.merge_request(project, iid).await?;
        let notes = self.mr_notes(project, &base).await?;
        let review = self.review_of(project, &base, &mr, Some(&notes)).await?;
        let checks = match &mr.head_pipeline {
            Some(p) => self.pipeline_checks(project, p.id, checks).await?,
            None => Checks::default(),
        };
        Ok(PullStatus {
            review,
            head: mr.sha.clone().unwrap_or_default(),
            mergeable: mergeable(&mr),
            checks,
            comments: self.agent_notes(project, notes).await?,
        })
    }

    /// The jobs of pipeline `id` that count (`names`, or every one), and the log
    /// tail of each failed one.
    async fn pipeline_checks(
        &self,
        project: &RepoName,
        id: u64,
        names: &[String],
    ) -> Result<Checks> {
        let pid = project_path(project)?;
        let path = format!("/projects/{pid}/pipelines/{id}/jobs?include_retried=false");
        let jobs: Vec<Job> = self
            .inner
            .transport
            .get_all(
                &path,
                false,
                &format!("reading the jobs of pipeline {id} in {project}"),
            )
            .await?;
        let counted: Vec<&Job> = jobs
            .iter()
            .filter(|j| names.is_empty() || names.iter().any(|n| n == &j.name))
            .filter(|j| !matches!(j.status.as_str(), "skipped" | "manual"))
            .collect();
        let mut failed = Vec::new();
        for job in counted
            .iter()
            .filter(|j| j.status == "failed" && !j.allow_failure)
        {
            let trace = self
                .inner
                .transport
                .get_text(
                    &format!("/projects/{pid}/jobs/{}/trace", job.id),
                    &format!("reading the log of job {} in {project}", job.name),
                )
                .await
                .unwrap_or_default();
            failed.push(FailedCheck {
                name: job.name.clone(),
                summary: summary(job),
                annotations: Vec::new(),
                log_tail: tail(&trace),
            });
        }
        let state = if !failed.is_empty() {
            ChecksState::Failed
        } else if counted.iter().any(|j| RUNNING.contains(&j.status.as_str())) {
            ChecksState::Pending
        } else if counted.is_empty() {
            ChecksState::None
        } else {
            ChecksState::Passed
        };
        Ok(Checks { state, failed })
    }

    /// The notes on the merge request that start with `/agent`, oldest first,
    /// each with its author's access.
    async fn agent_notes(&self, project: &RepoName, notes: Vec<Note>) -> Result<Vec<AgentComment>> {
        let mut out = Vec::new();
        for note in notes
            .into_iter()
            .filter(|n| !n.system && n.body.trim_start().starts_with("/agent"))
        {
            let level = self.access_level(project.path(), note.author.id).await?;
            let at = note
                .created_at
                .as_deref()
                .and_then(Timestamp::parse_rfc3339);
            out.push(AgentComment {
                id: note.id.to_string(),
                author: Person {
                    login: note.author.username.clone(),
                    may_approve: level >= DEVELOPER,
                    at,
                },
                path: note.position.as_ref().and_then(|p| {
                    let path = p.new_path.as_deref()?;
                    Some(match p.new_line {
                        Some(line) => format!("{path}:{line}"),
                        None => path.to_string(),
                    })
                }),
                body: note.body,
                at: at.unwrap_or(Timestamp(0)),
            });
        }
        Ok(out)
    }
}

fn review(state: PullState) -> PullReview {
    PullReview {
        state,
        change_request: None,
    }
}

/// Whether the merge request can merge, as GitLab computed it.
fn mergeable(mr: &MergeRequest) -> Mergeable {
    match mr.detailed_merge_status.as_deref() {
        _ if mr.has_conflicts => Mergeable::Conflict,
        Some("conflict") | Some("need_rebase") => Mergeable::Conflict,
        None | Some("checking") | Some("unchecked") | Some("preparing") => Mergeable::Unknown,
        Some(_) => Mergeable::Clean,
    }
}

fn summary(job: &Job) -> String {
    let stage = job.stage.as_deref().unwrap_or("a stage");
    match &job.failure_reason {
        Some(reason) => format!("failed in {stage}: {reason}"),
        None => format!("failed in {stage}"),
    }
}

/// The last [`LOG_TAIL_CHARS`] characters of a log, from a line's start.
fn tail(log: &str) -> String {
    let chars = log.chars().count();
    if chars <= LOG_TAIL_CHARS {
        return log.to_string();
    }
    let cut: String = log.chars().skip(chars - LOG_TAIL_CHARS).collect();
    match cut.split_once('\n') {
        Some((_, rest)) => rest.to_string(),
        None => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_last_whole_lines() {
        let log: String = (0..2000).map(|k| format!("line {k}\n")).collect();
        let t = tail(&log);
        assert!(t.len() <= LOG_TAIL_CHARS && t.starts_with("line ") && t.ends_with("line 1999\n"));
        assert_eq!(tail("short"), "short");
    }
}
