//! The fake's REST routes: tokens, users, projects, members, issues, notes,
//! label events and links. Merge requests and pipelines are in `mrs.rs`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::json;
use super::state::{Issue, Note, State};

/// What a route answers, before paging, ETags and headers.
pub(crate) enum Answer {
    /// A JSON body with this status.
    Json(u16, Value),
    /// A list, to page.
    List(Vec<Value>),
    /// Plain text (a job's log).
    Text(String),
}

/// A refusal: status and GitLab's message.
pub(crate) type Refusal = (u16, String);

pub(crate) type Routed = Result<Answer, Refusal>;

/// One decoded API request (the path after `/api/v4`).
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) segs: Vec<String>,
    pub(crate) query: HashMap<String, String>,
    pub(crate) body: Value,
}

impl Req {
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        match self.body.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(Value::Null) | None => self.query.get(name).cloned(),
            Some(other) => Some(other.to_string()),
        }
    }
}

pub(crate) fn not_found(what: &str) -> Refusal {
    (404, format!("404 {what} Not Found"))
}

/// The token's user.
pub(crate) fn token_user(st: &mut State) -> u64 {
    st.user(super::TOKEN_USER)
}

/// The project a path segment names: its full path, or its numeric id.
pub(crate) fn project_key(st: &State, seg: &str) -> Result<String, Refusal> {
    if st.projects.contains_key(seg) {
        return Ok(seg.to_string());
    }
    st.projects
        .values()
        .find(|p| p.id.to_string() == seg)
        .map(|p| p.path.clone())
        .ok_or_else(|| not_found("Project"))
}

fn iid(seg: &str) -> Result<u64, Refusal> {
    seg.parse().map_err(|_| not_found("Issue"))
}

fn issue_mut<'a>(st: &'a mut State, key: &str, n: u64) -> Result<&'a mut Issue, Refusal> {
    st.projects
        .get_mut(key)
        .and_then(|p| p.issues.get_mut(&n))
        .ok_or_else(|| not_found("Issue"))
}

pub(crate) fn route(st: &mut State, req: &Req) -> Routed {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match (m, segs.as_slice()) {
        ("GET", ["personal_access_tokens", "self"]) => token_self(st),
        ("GET", ["user"]) => {
            let me = token_user(st);
            Ok(Answer::Json(200, json::user(st, me)))
        }
        ("GET", ["users", id]) => {
            let id: u64 = id.parse().map_err(|_| not_found("User"))?;
            if id == 0 || id as usize > st.users.len() {
                return Err(not_found("User"));
            }
            Ok(Answer::Json(200, json::user(st, id)))
        }
        ("GET", ["projects", p]) => {
            let key = project_key(st, p)?;
            Ok(Answer::Json(200, json::project(st, &st.projects[&key])))
        }
        ("GET", ["projects", p, "members", "all", uid]) => {
            let key = project_key(st, p)?;
            let uid: u64 = uid.parse().map_err(|_| not_found("Member"))?;
            let level = *st.projects[&key]
                .members
                .get(&uid)
                .ok_or_else(|| not_found("Member"))?;
            let mut v = json::user(st, uid);
            v["access_level"] = json!(level);
            Ok(Answer::Json(200, v))
        }
        ("GET", ["projects", p, "labels"]) => {
            let key = project_key(st, p)?;
            Ok(Answer::List(labels(&st.projects[&key])))
        }
        (_, ["projects", p, "merge_requests", ..])
        | (_, ["projects", p, "pipelines", ..])
        | (_, ["projects", p, "jobs", ..]) => {
            let key = project_key(st, p)?;
            super::mr_routes::route(st, &key, &segs[2..], req)
        }
        (_, ["projects", p, "issues", rest @ ..]) => {
            let key = project_key(st, p)?;
            issues(st, &key, rest, req)
        }
        _ => Err(not_found("")),
    }
}

/// The project's labels: every label an issue of it carries or carried.
fn labels(p: &super::state::Project) -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    let events = p.issues.values().flat_map(|i| i.label_events.iter());
    for e in events {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&e.label)) {
            names.push(&e.label);
        }
    }
    names
        .into_iter()
        .map(|n| json!({ "id": json::label_id(n), "name": n, "color": "#428BCA", "description": null }))
        .collect()
}

fn token_self(st: &mut State) -> Routed {
    let me = token_user(st);
    Ok(Answer::Json(
        200,
        json!({
            "id": 1,
            "name": "scrum-orchestrator",
            "revoked": false,
            "created_at": "2026-01-01T00:00:00.000Z",
            "scopes": st.scopes,
            "user_id": me,
            "last_used_at": null,
            "active": true,
            "expires_at": null,
        }),
    ))
}

fn issues(st: &mut State, key: &str, rest: &[&str], req: &Req) -> Routed {
    match (req.method.as_str(), rest) {
        ("GET", []) => list_issues(st, key, req),
        ("POST", []) => create_issue(st, key, req),
        ("GET", [n]) => {
            let p = &st.projects[key];
            let i = p.issues.get(&iid(n)?).ok_or_else(|| not_found("Issue"))?;
            Ok(Answer::Json(200, json::issue(st, p, i)))
        }
        ("PUT", [n]) => edit_issue(st, key, iid(n)?, req),
        ("GET", [n, "notes"]) => {
            let p = &st.projects[key];
            let i = p.issues.get(&iid(n)?).ok_or_else(|| not_found("Issue"))?;
            let mut notes: Vec<&Note> = i.notes.iter().collect();
            if req.query.get("sort").map(String::as_str) != Some("asc") {
                notes.reverse();
            }
            let noteable = ("Issue", i.id, i.iid);
            Ok(Answer::List(
                notes.iter().map(|n| json::note(st, n, noteable)).collect(),
            ))
        }
        ("POST", [n, "notes"]) => {
            let body = req.param("body").filter(|b| !b.trim().is_empty());
            let body =
                body.ok_or_else(|| (400, "400 Bad request - body is missing".to_string()))?;
            let me = token_user(st);
            let (id, at) = (st.id(), st.now());
            let note = Note {
                id,
                body,
                author: me,
                created_at: at,
                updated_at: at,
                system: false,
            };
            let i = issue_mut(st, key, iid(n)?)?;
            i.notes.push(note.clone());
            let noteable = ("Issue", i.id, i.iid);
            let issue_iid = i.iid;
            super::hooks::note_on_issue(st, key, issue_iid, &note);
            Ok(Answer::Json(201, json::note(st, &note, noteable)))
        }
        ("PUT", [n, "notes", note_id]) => {
            let body = req
                .param("body")
                .ok_or_else(|| (400, "400 Bad request - body is missing".to_string()))?;
            let at = st.now();
            let i = issue_mut(st, key, iid(n)?)?;
            let noteable = ("Issue", i.id, i.iid);
            let note = i
                .notes
                .iter_mut()
                .find(|x| x.id.to_string() == *note_id)
                .ok_or_else(|| not_found("Note"))?;
            note.body = body;
            note.updated_at = at;
            let note = note.clone();
            Ok(Answer::Json(200, json::note(st, &note, noteable)))
        }
        ("GET", [n, "resource_label_events"]) => {
            let p = &st.projects[key];
            let i = p.issues.get(&iid(n)?).ok_or_else(|| not_found("Issue"))?;
            Ok(Answer::List(
                i.label_events
                    .iter()
                    .map(|e| json::label_event(st, i, e))
                    .collect(),
            ))
        }
        ("GET", [n, "links"]) => {
            let p = &st.projects[key];
            let i = p.issues.get(&iid(n)?).ok_or_else(|| not_found("Issue"))?;
            let mut out = Vec::new();
            for (k, (path, other)) in i.blocked_by.iter().enumerate() {
                let Some(op) = st.projects.get(path) else {
                    continue;
                };
                let Some(oi) = op.issues.get(other) else {
                    continue;
                };
                let mut v = json::issue(st, op, oi);
                v["issue_link_id"] = json!(k + 1);
                v["link_type"] = json!("is_blocked_by");
                out.push(v);
            }
            Ok(Answer::Json(200, Value::Array(out)))
        }
        _ => Err(not_found("")),
    }
}

fn list_issues(st: &State, key: &str, req: &Req) -> Routed {
    let p = &st.projects[key];
    let state = req.query.get("state").map_or("all", String::as_str);
    let wanted: Vec<&str> = req
        .query
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut issues: Vec<&Issue> = p
        .issues
        .values()
        .filter(|i| match state {
            "opened" => i.open,
            "closed" => !i.open,
            _ => true,
        })
        .filter(|i| {
            wanted
                .iter()
                .all(|w| i.labels.iter().any(|l| l.eq_ignore_ascii_case(w)))
        })
        .collect();
    // GitLab's default order: newest first.
    issues.sort_by_key(|i| (i.created_at, i.iid));
    if req.query.get("sort").map(String::as_str) != Some("asc") {
        issues.reverse();
    }
    Ok(Answer::List(
        issues.into_iter().map(|i| json::issue(st, p, i)).collect(),
    ))
}

fn create_issue(st: &mut State, key: &str, req: &Req) -> Routed {
    let title = req
        .param("title")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| (400, "400 Bad request - title is missing".to_string()))?;
    let me = token_user(st);
    let labels = split_labels(req.param("labels").as_deref().unwrap_or(""));
    let iid = super::new_issue(
        st,
        key,
        &title,
        &req.param("description").unwrap_or_default(),
        labels,
        me,
        None,
    );
    let p = &st.projects[key];
    Ok(Answer::Json(201, json::issue(st, p, &p.issues[&iid])))
}

pub(crate) fn split_labels(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn edit_issue(st: &mut State, key: &str, n: u64, req: &Req) -> Routed {
    let me = token_user(st);
    let at = st.now();
    let mut next_ids = st.next_id;
    let mut ids = || {
        next_ids += 1;
        next_ids
    };
    let i = issue_mut(st, key, n)?;
    let mut labels = match req.param("labels") {
        Some(all) => split_labels(&all),
        None => i.labels.clone(),
    };
    if let Some(add) = req.param("add_labels") {
        for l in split_labels(&add) {
            if !labels.iter().any(|x| x.eq_ignore_ascii_case(&l)) {
                labels.push(l);
            }
        }
    }
    if let Some(remove) = req.param("remove_labels") {
        let gone = split_labels(&remove);
        labels.retain(|l| !gone.iter().any(|g| g.eq_ignore_ascii_case(l)));
    }
    let relabelled = labels != i.labels;
    if relabelled {
        i.relabel(labels, me, at, &mut ids);
    }
    if let Some(title) = req.param("title") {
        i.title = title;
        i.edited = Some((me, at));
    }
    if let Some(d) = req.param("description") {
        i.description = d;
        i.edited = Some((me, at));
    }
    match req.param("state_event").as_deref() {
        Some("close") => i.open = false,
        Some("reopen") => i.open = true,
        _ => {}
    }
    i.updated_at = at;
    st.next_id = next_ids;
    super::hooks::issue(st, key, n, "update");
    let p = &st.projects[key];
    Ok(Answer::Json(200, json::issue(st, p, &p.issues[&n])))
}
