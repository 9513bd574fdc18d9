//! The fake's answers in the JSON shapes of GitLab's REST API v4.

use scrum_core::Timestamp;
use serde_json::{Value, json};

use super::state::{Issue, LabelEvent, MergeRequest, Note, Project, State};

pub(crate) fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

pub(crate) fn user(st: &State, id: u64) -> Value {
    let username = st.username(id);
    json!({
        "id": id,
        "username": username,
        "name": username,
        "state": "active",
        "avatar_url": null,
        "web_url": format!("{}/{username}", st.base_url),
    })
}

pub(crate) fn project(st: &State, p: &Project) -> Value {
    let name = p.path.rsplit('/').next().unwrap_or(&p.path);
    json!({
        "id": p.id,
        "name": name,
        "path": name,
        "path_with_namespace": p.path,
        "default_branch": p.default_branch,
        "web_url": format!("{}/{}", st.base_url, p.path),
        "http_url_to_repo": format!("{}/{}.git", st.base_url, p.path),
        "visibility": "private",
    })
}

pub(crate) fn issue(st: &State, p: &Project, i: &Issue) -> Value {
    let mut v = json!({
        "id": i.id,
        "iid": i.iid,
        "project_id": p.id,
        "title": i.title,
        "description": i.description,
        "state": if i.open { "opened" } else { "closed" },
        "created_at": time(i.created_at),
        "updated_at": time(i.updated_at),
        "closed_at": null,
        "labels": i.labels,
        "author": user(st, i.author),
        "assignees": [],
        "type": "ISSUE",
        "issue_type": "issue",
        "confidential": false,
        "user_notes_count": i.notes.iter().filter(|n| !n.system).count(),
        "merge_requests_count": 0,
        "web_url": format!("{}/{}/-/issues/{}", st.base_url, p.path, i.iid),
        "references": {
            "short": format!("#{}", i.iid),
            "relative": format!("#{}", i.iid),
            "full": format!("{}#{}", p.path, i.iid),
        },
    });
    if let Some((by, at)) = i.edited {
        v["updated_by_id"] = json!(by);
        v["last_edited_at"] = json!(time(at));
    }
    v
}

pub(crate) fn note(st: &State, n: &Note, noteable: (&str, u64, u64)) -> Value {
    let (kind, id, iid) = noteable;
    json!({
        "id": n.id,
        "type": null,
        "body": n.body,
        "author": user(st, n.author),
        "created_at": time(n.created_at),
        "updated_at": time(n.updated_at),
        "system": n.system,
        "noteable_id": id,
        "noteable_type": kind,
        "noteable_iid": iid,
        "resolvable": false,
        "confidential": false,
        "internal": false,
    })
}

pub(crate) fn label_event(st: &State, i: &Issue, e: &LabelEvent) -> Value {
    json!({
        "id": e.id,
        "user": user(st, e.user),
        "created_at": time(e.at),
        "resource_type": "Issue",
        "resource_id": i.id,
        "label": {
            "id": label_id(&e.label),
            "name": e.label,
            "color": "#428BCA",
            "description": null,
        },
        "action": if e.add { "add" } else { "remove" },
    })
}

/// A stable id for a label name.
pub(crate) fn label_id(name: &str) -> u64 {
    name.to_ascii_lowercase()
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000
}

pub(crate) fn merge_request(st: &State, p: &Project, m: &MergeRequest) -> Value {
    json!({
        "id": m.id,
        "iid": m.iid,
        "project_id": p.id,
        "title": m.title,
        "description": m.description,
        "state": m.state,
        "created_at": time(m.created_at),
        "source_branch": m.source,
        "target_branch": m.target,
        "source_project_id": p.id,
        "target_project_id": p.id,
        "author": user(st, m.author),
        "sha": m.sha,
        "draft": false,
        "has_conflicts": m.has_conflicts,
        "detailed_merge_status": m.detailed_merge_status,
        "merge_status": if m.has_conflicts { "cannot_be_merged" } else { "can_be_merged" },
        "head_pipeline": m.pipeline.as_ref().map(|pl| json!({
            "id": pl.id,
            "iid": pl.id,
            "project_id": p.id,
            "sha": m.sha,
            "ref": m.source,
            "status": pipeline_status(pl),
            "web_url": format!("{}/{}/-/pipelines/{}", st.base_url, p.path, pl.id),
        })),
        "web_url": mr_url(st, p, m.iid),
        "references": {
            "short": format!("!{}", m.iid),
            "full": format!("{}!{}", p.path, m.iid),
        },
    })
}

pub(crate) fn mr_url(st: &State, p: &Project, iid: u64) -> String {
    format!("{}/{}/-/merge_requests/{iid}", st.base_url, p.path)
}

/// A pipeline's status from its jobs: failed, running, or success.
pub(crate) fn pipeline_status(pl: &super::state::Pipeline) -> &'static str {
    let statuses: Vec<&str> = pl.jobs.iter().map(|(_, j)| j.status.as_str()).collect();
    if statuses.contains(&"failed") {
        "failed"
    } else if statuses
        .iter()
        .any(|s| matches!(*s, "running" | "pending" | "created"))
    {
        "running"
    } else {
        "success"
    }
}

pub(crate) fn job(pl: &super::state::Pipeline, id: u64, j: &super::state::FakeJob) -> Value {
    json!({
        "id": id,
        "name": j.name,
        "stage": "test",
        "status": j.status,
        "allow_failure": false,
        "failure_reason": if j.status == "failed" { json!("script_failure") } else { Value::Null },
        "pipeline": { "id": pl.id, "status": pipeline_status(pl) },
    })
}
