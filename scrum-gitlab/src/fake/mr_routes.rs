//! The fake's merge requests, their approvals and notes, and the jobs and logs of
//! their head pipelines.

use serde_json::{Value, json};

use super::json;
use super::routes::{Answer, Refusal, Req, Routed, not_found, token_user};
use super::state::{MergeRequest, Note, State};

/// `rest` is the path after `/projects/:id`.
pub(crate) fn route(st: &mut State, key: &str, rest: &[&str], req: &Req) -> Routed {
    match (req.method.as_str(), rest) {
        ("GET", ["merge_requests"]) => list(st, key, req),
        ("POST", ["merge_requests"]) => create(st, key, req),
        ("GET", ["merge_requests", n]) => {
            let p = &st.projects[key];
            let m = p.merge_requests.get(&iid(n)?).ok_or_else(mr_missing)?;
            Ok(Answer::Json(200, json::merge_request(st, p, m)))
        }
        ("PUT", ["merge_requests", n]) => {
            let n = iid(n)?;
            let description = req.param("description");
            let title = req.param("title");
            let p = st.projects.get_mut(key).ok_or_else(mr_missing)?;
            let m = p.merge_requests.get_mut(&n).ok_or_else(mr_missing)?;
            if let Some(d) = description {
                m.description = d;
            }
            if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
                m.title = t;
            }
            let p = &st.projects[key];
            Ok(Answer::Json(
                200,
                json::merge_request(st, p, &p.merge_requests[&n]),
            ))
        }
        ("GET", ["merge_requests", n, "approvals"]) => {
            let p = &st.projects[key];
            let m = p.merge_requests.get(&iid(n)?).ok_or_else(mr_missing)?;
            let by: Vec<Value> = m
                .approved_by
                .iter()
                .map(|u| json!({ "user": json::user(st, *u) }))
                .collect();
            Ok(Answer::Json(
                200,
                json!({
                    "id": m.id,
                    "iid": m.iid,
                    "project_id": p.id,
                    "state": m.state,
                    "approved": !by.is_empty(),
                    "approvals_required": 0,
                    "approvals_left": 0,
                    "approved_by": by,
                }),
            ))
        }
        ("GET", ["merge_requests", n, "reviewers"]) => {
            let p = &st.projects[key];
            let m = p.merge_requests.get(&iid(n)?).ok_or_else(mr_missing)?;
            let out = m
                .reviewers
                .iter()
                .map(|(u, state)| {
                    json!({ "user": json::user(st, *u), "state": state, "created_at": json::time(m.created_at) })
                })
                .collect();
            Ok(Answer::Json(200, Value::Array(out)))
        }
        ("GET", ["merge_requests", n, "notes"]) => {
            let p = &st.projects[key];
            let m = p.merge_requests.get(&iid(n)?).ok_or_else(mr_missing)?;
            let mut notes: Vec<&Note> = m.notes.iter().collect();
            if req.query.get("sort").map(String::as_str) != Some("asc") {
                notes.reverse();
            }
            let noteable = ("MergeRequest", m.id, m.iid);
            Ok(Answer::List(
                notes.iter().map(|n| json::note(st, n, noteable)).collect(),
            ))
        }
        ("POST", ["merge_requests", n, "notes"]) => {
            let body = req
                .param("body")
                .ok_or_else(|| (400, "400 Bad request - body is missing".to_string()))?;
            let me = token_user(st);
            let n = iid(n)?;
            let note =
                super::merge_requests::note_on_mr(st, key, n, me, &body).ok_or_else(mr_missing)?;
            let m = &st.projects[key].merge_requests[&n];
            Ok(Answer::Json(
                201,
                json::note(st, &note, ("MergeRequest", m.id, m.iid)),
            ))
        }
        ("GET", ["pipelines", pid, "jobs"]) => {
            let p = &st.projects[key];
            let pl = p
                .merge_requests
                .values()
                .filter_map(|m| m.pipeline.as_ref())
                .find(|pl| pl.id.to_string() == *pid)
                .ok_or_else(|| not_found("Pipeline"))?;
            Ok(Answer::List(
                pl.jobs
                    .iter()
                    .map(|(id, j)| json::job(pl, *id, j))
                    .collect(),
            ))
        }
        ("GET", ["jobs", jid, "trace"]) => {
            let p = &st.projects[key];
            let trace = p
                .merge_requests
                .values()
                .filter_map(|m| m.pipeline.as_ref())
                .flat_map(|pl| pl.jobs.iter())
                .find(|(id, _)| id.to_string() == *jid)
                .map(|(_, j)| j.trace.clone())
                .ok_or_else(|| not_found("Job"))?;
            Ok(Answer::Text(trace))
        }
        _ => Err(not_found("")),
    }
}

fn iid(seg: &str) -> Result<u64, Refusal> {
    seg.parse().map_err(|_| mr_missing())
}

fn mr_missing() -> Refusal {
    not_found("Merge Request")
}

fn list(st: &State, key: &str, req: &Req) -> Routed {
    let p = &st.projects[key];
    let state = req.query.get("state").map_or("all", String::as_str);
    let source = req.query.get("source_branch");
    let out = p
        .merge_requests
        .values()
        .rev()
        .filter(|m| state == "all" || m.state == state)
        .filter(|m| source.is_none_or(|s| &m.source == s))
        .map(|m| json::merge_request(st, p, m))
        .collect();
    Ok(Answer::List(out))
}

fn create(st: &mut State, key: &str, req: &Req) -> Routed {
    let need = |name: &str| {
        req.param(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| (400, format!("400 Bad request - {name} is missing")))
    };
    let (source, target, title) = (
        need("source_branch")?,
        need("target_branch")?,
        need("title")?,
    );
    if source == target {
        return Err((
            422,
            "422 Unprocessable Entity - source_branch and target_branch are the same".into(),
        ));
    }
    let open = st.projects[key]
        .merge_requests
        .values()
        .find(|m| m.state == "opened" && m.source == source && m.target == target)
        .map(|m| m.iid);
    if let Some(n) = open {
        return Err((
            409,
            format!("Another open merge request already exists for this source branch: !{n}"),
        ));
    }
    let me = token_user(st);
    let description = req.param("description").unwrap_or_default();
    let draft = Draft {
        source: &source,
        target: &target,
        title: &title,
        description: &description,
        author: me,
    };
    let n = super::merge_requests::new_merge_request(st, key, &draft);
    let p = &st.projects[key];
    Ok(Answer::Json(
        201,
        json::merge_request(st, p, &p.merge_requests[&n]),
    ))
}

/// What a new merge request is opened with.
pub(crate) struct Draft<'a> {
    pub(crate) source: &'a str,
    pub(crate) target: &'a str,
    pub(crate) title: &'a str,
    pub(crate) description: &'a str,
    pub(crate) author: u64,
}

/// A new merge request's fields.
pub(crate) fn fresh(id: u64, iid: u64, at: scrum_core::Timestamp, d: &Draft<'_>) -> MergeRequest {
    MergeRequest {
        id,
        iid,
        title: d.title.to_string(),
        description: d.description.to_string(),
        source: d.source.to_string(),
        target: d.target.to_string(),
        state: "opened".into(),
        author: d.author,
        created_at: at,
        sha: format!("{:040x}", u128::from(id) * 0x9e37_79b9_7f4a_7c15),
        has_conflicts: false,
        detailed_merge_status: "mergeable".into(),
        approved_by: Vec::new(),
        reviewers: Vec::new(),
        pipeline: None,
        notes: Vec::new(),
    }
}
