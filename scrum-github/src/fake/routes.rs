//! The REST routes the fake answers: a plain function from (method, path, query,
//! body) to an answer, run with the state locked.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::answer::{Answer, answer, fail, invalid, not_found, ok, paged};
use super::dependencies::{issue_json, list_blocked_by};
use super::json;
use super::pulls::{create_pull, list_pulls, patch_pull};
use super::state::{FakeIssue, State};

/// Decodes `%XX` and, in queries, `+`.
pub(crate) fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Routes one request. `path` is already split into decoded segments.
pub(crate) fn route(
    st: &mut State,
    method: &Method,
    path: &[String],
    query: &BTreeMap<String, String>,
    body: &Value,
    now: scrum_core::Timestamp,
) -> Answer {
    let seg: Vec<&str> = path.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["repos", o, r, "pulls"] => super::heads::refresh(st, &format!("{o}/{r}"), None),
        ["repos", o, r, "pulls", n, ..] => {
            let only = n.parse().ok();
            super::heads::refresh(st, &format!("{o}/{r}"), only);
        }
        _ => {}
    }
    match (method.clone(), seg.as_slice()) {
        (Method::GET, ["repos", o, r]) => get_repo(st, &format!("{o}/{r}")),
        (Method::GET, ["repos", o, r, "issues"]) => list_issues(st, &format!("{o}/{r}"), query),
        (Method::GET, ["repos", o, r, "issues", n]) => with_issue(st, o, r, n, |st, repo, i| {
            let r = st.repo(repo).expect("checked");
            ok(issue_json(st, r, i))
        }),
        (Method::GET, ["repos", o, r, "issues", n, "dependencies", "blocked_by"]) => {
            list_blocked_by(st, &format!("{o}/{r}"), n, query)
        }
        (Method::PATCH, ["repos", o, r, "issues", "comments", id]) => {
            super::comments::edit_comment(st, &format!("{o}/{r}"), id, body, now)
        }
        (Method::PATCH, ["repos", o, r, "issues", n]) => patch_issue(st, o, r, n, body, now),
        (Method::POST, ["repos", o, r, "issues", n, "labels"]) => {
            write_labels(st, o, r, n, body, now, Write::Add)
        }
        (Method::PUT, ["repos", o, r, "issues", n, "labels"]) => {
            write_labels(st, o, r, n, body, now, Write::Replace)
        }
        (Method::DELETE, ["repos", o, r, "issues", n, "labels", name]) => {
            remove_label(st, o, r, n, name, now)
        }
        (Method::GET, ["repos", o, r, "issues", n, "comments"]) => {
            list_comments(st, o, r, n, query)
        }
        (Method::POST, ["repos", o, r, "issues", n, "comments"]) => {
            post_comment(st, o, r, n, body, now)
        }
        (Method::GET, ["repos", o, r, "labels", name]) => {
            let (repo, base) = (format!("{o}/{r}"), st.base_url.clone());
            match st.repo(&repo).map(|r| {
                (
                    r.full_name.clone(),
                    r.labels.get(&name.to_ascii_lowercase()),
                )
            }) {
                Some((full, Some(l))) => ok(json::label(&base, &full, l)),
                _ => not_found(),
            }
        }
        (Method::POST, ["repos", o, r, "labels"]) => create_label(st, &format!("{o}/{r}"), body),
        (Method::GET, ["repos", o, r, "issues", n, "events"]) => {
            with_issue(st, o, r, n, |st, repo, i| {
                let r = st.repo(repo).expect("checked");
                paged(
                    &st.base_url,
                    &format!("/repos/{}/issues/{}/events", r.full_name, i.number),
                    query,
                    i.events.iter().collect(),
                    |e| json::event(&st.base_url, r, e),
                )
            })
        }
        (Method::GET, ["repos", o, r, "collaborators", user, "permission"]) => {
            permission(st, &format!("{o}/{r}"), user)
        }
        (Method::GET, ["repos", o, r, "hooks"]) => {
            super::hooks::list_hooks(st, &format!("{o}/{r}"))
        }
        (Method::POST, ["graphql"]) => super::graphql::answer(st, body),
        (Method::GET, ["repos", o, r, "pulls"]) => list_pulls(st, &format!("{o}/{r}"), query),
        (Method::GET, ["repos", o, r, "pulls", n, "comments"]) => {
            super::comments::list_review_comments(st, &format!("{o}/{r}"), n, query)
        }
        (Method::GET, ["repos", _, _, "commits", ..] | ["repos", _, _, "check-runs", ..])
        | (Method::GET, ["repos", _, _, "actions", "jobs", _, "logs"])
        | (
            Method::GET,
            [
                "repos",
                _,
                _,
                "branches",
                _,
                "protection",
                "required_status_checks",
            ],
        ) => super::check_routes::route(st, &seg, query),
        (Method::GET, ["repos", o, r, "pulls", n]) => with_issue(st, o, r, n, |st, repo, i| {
            let r = st.repo(repo).expect("checked");
            match i.pull {
                Some(_) => ok(json::pull(&st.base_url, r, i)),
                None => not_found(),
            }
        }),
        (Method::GET, ["repos", o, r, "pulls", n, "reviews"]) => {
            with_issue(st, o, r, n, |st, _, i| match &i.pull {
                Some(p) => paged(
                    &st.base_url,
                    &format!("/repos/{o}/{r}/pulls/{n}/reviews"),
                    query,
                    p.reviews.iter().enumerate().collect(),
                    |(k, (login, state, text))| {
                        serde_json::json!({
                            "id": i.id * 1000 + k as u64, "user": { "login": login, "type": "User" },
                            "state": state, "body": text, "submitted_at": i.updated_at.to_rfc3339()
                        })
                    },
                ),
                None => not_found(),
            })
        }
        (Method::POST, ["repos", o, r, "pulls"]) => create_pull(st, &format!("{o}/{r}"), body, now),
        (Method::PATCH, ["repos", o, r, "pulls", n]) => {
            patch_pull(st, &format!("{o}/{r}"), n, body, now)
        }
        _ => not_found(),
    }
}

/// `GET /repos/{repo}/collaborators/{user}/permission`: the role set with
/// `FakeGitHub::set_role`; anyone else reads the (public) repository.
fn permission(st: &State, repo: &str, user: &str) -> Answer {
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    let role = r
        .roles
        .get(&user.to_ascii_lowercase())
        .map_or("read", String::as_str);
    // The legacy `permission` field folds maintain into write and triage into read.
    let permission = match role {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "none" => "none",
        _ => "read",
    };
    ok(json!({
        "permission": permission, "role_name": role,
        "user": json::user_named(&st.base_url, user)
    }))
}

fn get_repo(st: &State, repo: &str) -> Answer {
    match st.repo(repo) {
        Some(r) => ok(json::repository(&st.base_url, r)),
        None => not_found(),
    }
}

fn list_issues(st: &State, repo: &str, query: &BTreeMap<String, String>) -> Answer {
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    let state = query.get("state").map_or("open", String::as_str);
    let wanted: Vec<String> = query
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut issues: Vec<&FakeIssue> = r
        .issues
        .values()
        .filter(|i| match state {
            "all" => true,
            "closed" => !i.open,
            _ => i.open,
        })
        .filter(|i| {
            wanted
                .iter()
                .all(|w| i.labels.iter().any(|l| l.eq_ignore_ascii_case(w)))
        })
        .collect();
    let key = |i: &&FakeIssue| match query.get("sort").map(String::as_str) {
        Some("updated") => (i.updated_at, i.number),
        _ => (i.created_at, i.number),
    };
    issues.sort_by_key(key);
    if query.get("direction").map(String::as_str) != Some("asc") {
        issues.reverse();
    }
    paged(
        &st.base_url,
        &format!("/repos/{}/issues", r.full_name),
        query,
        issues,
        |i| issue_json(st, r, i),
    )
}

fn with_issue(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    f: impl FnOnce(&mut State, &str, &FakeIssue) -> Answer,
) -> Answer {
    let repo = format!("{o}/{r}");
    let Ok(number) = n.parse::<u64>() else {
        return not_found();
    };
    let Some(issue) = st.repo(&repo).and_then(|r| r.issues.get(&number)).cloned() else {
        return not_found();
    };
    f(st, &repo, &issue)
}

fn update_issue(st: &mut State, repo: &str, issue: FakeIssue) -> Answer {
    let base = st.base_url.clone();
    let r = st.repo_mut(repo).expect("checked");
    let number = issue.number;
    r.issues.insert(number, issue);
    let r = st.repo(repo).expect("checked");
    ok(json::issue(&base, r, &r.issues[&number]))
}

fn patch_issue(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    body: &Value,
    now: scrum_core::Timestamp,
) -> Answer {
    with_issue(st, o, r, n, |st, repo, i| {
        let mut i = i.clone();
        match body.get("state").and_then(Value::as_str) {
            Some("closed") => i.open = false,
            Some("open") => i.open = true,
            Some(other) => return invalid(&format!("state {other:?} is not open or closed")),
            None => {}
        }
        if let Some(t) = body.get("title").and_then(Value::as_str) {
            if t != i.title {
                let id = st.fresh_id();
                i.events.push(super::state::FakeEvent {
                    event: "renamed".into(),
                    actor: super::TOKEN_USER.into(),
                    label: None,
                    rename: Some((i.title.clone(), t.to_string())),
                    created_at: now,
                    id,
                });
            }
            i.title = t.to_string();
        }
        if let Some(b) = body.get("body").and_then(Value::as_str) {
            if b != i.body {
                i.last_edit = Some((super::TOKEN_USER.into(), now));
            }
            i.body = b.to_string();
        }
        if let Some(pull) = &mut i.pull {
            pull.open = i.open;
        }
        i.updated_at = now;
        update_issue(st, repo, i)
    })
}

/// How a label write changes an issue's labels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// `POST …/labels`: adds to them.
    Add,
    /// `PUT …/labels`: replaces them.
    Replace,
}

fn write_labels(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    body: &Value,
    now: scrum_core::Timestamp,
    write: Write,
) -> Answer {
    let names: Option<Vec<String>> = body.get("labels").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let Some(names) = names else {
        return invalid("labels must be an array of names");
    };
    with_issue(st, o, r, n, |st, repo, i| {
        let mut i = i.clone();
        // GitHub records a `labeled` event only for a label the issue did not have.
        let before = i.labels.clone();
        if write == Write::Replace {
            i.labels.clear();
        }
        for name in &names {
            // GitHub creates a label it does not know, with its default grey.
            let Some(canonical) = st.ensure_label(repo, name, "ededed") else {
                return not_found();
            };
            let had = before.iter().any(|l| l.eq_ignore_ascii_case(name));
            if !had {
                let id = st.fresh_id();
                i.events.push(super::state::FakeEvent {
                    event: "labeled".into(),
                    actor: super::TOKEN_USER.into(),
                    label: Some(canonical.clone()),
                    rename: None,
                    created_at: now,
                    id,
                });
            }
            if !i.labels.iter().any(|l| l.eq_ignore_ascii_case(name)) {
                i.labels.push(canonical);
            }
        }
        i.updated_at = now;
        let full = st
            .repo(repo)
            .map(|r| r.full_name.clone())
            .unwrap_or_default();
        let base = st.base_url.clone();
        let answer = update_issue(st, repo, i.clone());
        if answer.status != StatusCode::OK {
            return answer;
        }
        let r = st.repo(repo).expect("checked");
        let labels = i
            .labels
            .iter()
            .filter_map(|l| r.labels.get(&l.to_ascii_lowercase()))
            .map(|l| json::label(&base, &full, l))
            .collect();
        ok(Value::Array(labels))
    })
}

fn remove_label(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    name: &str,
    now: scrum_core::Timestamp,
) -> Answer {
    with_issue(st, o, r, n, |st, repo, i| {
        let mut i = i.clone();
        let before = i.labels.len();
        i.labels.retain(|l| !l.eq_ignore_ascii_case(name));
        if i.labels.len() == before {
            return fail(StatusCode::NOT_FOUND, "Label does not exist");
        }
        let id = st.fresh_id();
        i.events.push(super::state::FakeEvent {
            event: "unlabeled".into(),
            actor: super::TOKEN_USER.into(),
            label: Some(name.to_string()),
            rename: None,
            created_at: now,
            id,
        });
        i.updated_at = now;
        let labels = i.labels.clone();
        update_issue(st, repo, i);
        let base = st.base_url.clone();
        let r = st.repo(repo).expect("checked");
        ok(Value::Array(
            labels
                .iter()
                .filter_map(|l| r.labels.get(&l.to_ascii_lowercase()))
                .map(|l| json::label(&base, &r.full_name, l))
                .collect(),
        ))
    })
}

fn list_comments(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    with_issue(st, o, r, n, |st, repo, i| {
        let r = st.repo(repo).expect("checked");
        paged(
            &st.base_url,
            &format!("/repos/{}/issues/{}/comments", r.full_name, i.number),
            query,
            i.comments.iter().collect(),
            |c| json::comment(&st.base_url, r, i, c),
        )
    })
}

fn post_comment(
    st: &mut State,
    o: &str,
    r: &str,
    n: &str,
    body: &Value,
    now: scrum_core::Timestamp,
) -> Answer {
    let Some(text) = body.get("body").and_then(Value::as_str).map(str::to_string) else {
        return invalid("body is required");
    };
    with_issue(st, o, r, n, |st, repo, i| {
        let mut i = i.clone();
        let comment = super::state::FakeComment {
            id: st.fresh_id(),
            author: super::TOKEN_USER.to_string(),
            body: text,
            created_at: now,
            updated_at: now,
        };
        i.comments.push(comment.clone());
        i.updated_at = now;
        update_issue(st, repo, i.clone());
        if let Some(r) = st.repo_mut(repo) {
            r.comment_ids += 1;
        }
        let r = st.repo(repo).expect("checked");
        answer(
            StatusCode::CREATED,
            json::comment(&st.base_url, r, &i, &comment),
        )
    })
}

fn create_label(st: &mut State, repo: &str, body: &Value) -> Answer {
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return invalid("name is required");
    };
    let color = body
        .get("color")
        .and_then(Value::as_str)
        .unwrap_or("ededed");
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    if r.labels.contains_key(&name.to_ascii_lowercase()) {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "message": "Validation Failed",
                    "errors": [{ "resource": "Label", "code": "already_exists", "field": "name" }] }),
        );
    }
    let name = st.ensure_label(repo, name, color).expect("checked");
    let base = st.base_url.clone();
    let r = st.repo(repo).expect("checked");
    answer(
        StatusCode::CREATED,
        json::label(&base, &r.full_name, &r.labels[&name.to_ascii_lowercase()]),
    )
}
