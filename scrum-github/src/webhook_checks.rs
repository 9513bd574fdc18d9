//! Webhook deliveries about checks (`check_run`, `check_suite`, `status`): the
//! pull request they concern, named in the payload or found by head commit.

use scrum_core::{Error, Result, TaskId};
use serde::Deserialize;

use crate::follow_ups::PullHeads;
use crate::webhook::{IssueRef, RepoRef};

/// The pull request a check event concerns: the first the payload names, else
/// the tracked one whose head is the event's commit; `None` when neither is known.
pub(crate) fn check_event(
    event: &str,
    body: &[u8],
    heads: Option<&PullHeads>,
) -> Result<Option<TaskId>> {
    let malformed =
        |e: serde_json::Error| Error::invalid(format!("webhook {event} payload is malformed: {e}"));
    let (repo, pulls, sha) = match event {
        "check_run" => {
            let p: CheckRunPayload = serde_json::from_slice(body).map_err(malformed)?;
            (
                p.repository,
                p.check_run.pull_requests,
                p.check_run.head_sha,
            )
        }
        "check_suite" => {
            let p: CheckSuitePayload = serde_json::from_slice(body).map_err(malformed)?;
            (
                p.repository,
                p.check_suite.pull_requests,
                p.check_suite.head_sha,
            )
        }
        _ => {
            let p: StatusPayload = serde_json::from_slice(body).map_err(malformed)?;
            (p.repository, Vec::new(), p.sha)
        }
    };
    let number = pulls
        .first()
        .map(|p| p.number)
        .or_else(|| heads?.pull_of(&repo.full_name, &sha));
    match number {
        Some(n) => TaskId::new(&repo.full_name, n)
            .map(Some)
            .map_err(|e| Error::invalid(format!("webhook {event} payload: {}", e.message()))),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
struct CheckRunPayload {
    check_run: CheckSubject,
    repository: RepoRef,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    check_suite: CheckSubject,
    repository: RepoRef,
}

#[derive(Deserialize)]
struct CheckSubject {
    #[serde(default)]
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<IssueRef>,
}

#[derive(Deserialize)]
struct StatusPayload {
    sha: String,
    repository: RepoRef,
}
