//! The fake's pull-request routes: list (by head and state), open (refusing a
//! second open pull request for the same branch, as GitHub does) and edit.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::Value;

use super::answer::{Answer, answer, invalid, not_found, paged};
use super::json;
use super::state::{FakeIssue, FakePull, State};

/// `head` as GitHub takes it: `branch` or `owner:branch`.
fn head_branch(head: &str) -> &str {
    head.split_once(':').map_or(head, |(_, b)| b)
}

pub(super) fn list_pulls(st: &State, repo: &str, query: &BTreeMap<String, String>) -> Answer {
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    let state = query.get("state").map_or("open", String::as_str);
    let items = r
        .issues
        .values()
        .filter(|i| {
            let Some(p) = &i.pull else { return false };
            let state_ok = match state {
                "all" => true,
                "closed" => !p.open,
                _ => p.open,
            };
            let head_ok = query.get("head").is_none_or(|h| head_branch(h) == p.head);
            let base_ok = query.get("base").is_none_or(|b| *b == p.base);
            state_ok && head_ok && base_ok
        })
        .collect();
    paged(
        &st.base_url,
        &format!("/repos/{}/pulls", r.full_name),
        query,
        items,
        |i| json::pull(&st.base_url, r, i),
    )
}

/// Whether `branch` was pushed to the bare repository `{root}/{full_name}.git`.
fn pushed(root: &std::path::Path, full_name: &str, branch: &str) -> bool {
    let repo = root.join(format!("{full_name}.git"));
    let packed = format!(" refs/heads/{branch}");
    repo.join("refs/heads").join(branch).is_file()
        || std::fs::read_to_string(repo.join("packed-refs"))
            .is_ok_and(|p| p.lines().any(|l| l.ends_with(&packed)))
}

pub(super) fn create_pull(
    st: &mut State,
    repo: &str,
    body: &Value,
    now: scrum_core::Timestamp,
) -> Answer {
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(title), Some(head), Some(base)) = (field("title"), field("head"), field("base"))
    else {
        return invalid("title, head and base are required");
    };
    let id = st.fresh_id();
    let git_root = st.git_root.clone();
    let Some(r) = st.repo_mut(repo) else {
        return not_found();
    };
    let head = head_branch(&head).to_string();
    if git_root.is_some_and(|root| pushed(&root, &r.full_name, &head)) {
        r.branches.insert(head.clone());
    }
    if !r.branches.contains(&head) {
        return invalid(&format!("head {head:?} is not a branch of {}", r.full_name));
    }
    if !r.branches.contains(&base) {
        return invalid(&format!("base {base:?} is not a branch of {}", r.full_name));
    }
    let owner = r
        .full_name
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if r.issues
        .values()
        .filter_map(|i| i.pull.as_ref())
        .any(|p| p.open && p.head == head && p.base == base)
    {
        return invalid(&format!(
            "A pull request already exists for {owner}:{head}."
        ));
    }
    let number = r.next_number();
    let text = field("body").unwrap_or_default();
    let issue = FakeIssue {
        number,
        title: title.clone(),
        body: text.clone(),
        labels: Vec::new(),
        open: true,
        created_at: now,
        updated_at: now,
        comments: Vec::new(),
        pull: Some(FakePull::new(number, head, base, title, text)),
        author: super::TOKEN_USER.to_string(),
        last_edit: None,
        events: Vec::new(),
        id,
    };
    r.issues.insert(number, issue);
    let base_url = st.base_url.clone();
    let r = st.repo(repo).expect("checked");
    answer(
        StatusCode::CREATED,
        json::pull(&base_url, r, &r.issues[&number]),
    )
}

/// `PATCH /repos/{repo}/pulls/{n}`: a new title, body or state, as GitHub takes
/// them (the pull request's issue gets the same title and body).
pub(super) fn patch_pull(
    st: &mut State,
    repo: &str,
    n: &str,
    body: &Value,
    now: scrum_core::Timestamp,
) -> Answer {
    let base_url = st.base_url.clone();
    let Some(r) = st.repo_mut(repo) else {
        return not_found();
    };
    let Some(i) = n.parse::<u64>().ok().and_then(|n| r.issues.get_mut(&n)) else {
        return not_found();
    };
    let Some(p) = &mut i.pull else {
        return not_found();
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    match field("state") {
        Some("open") => p.open = true,
        Some("closed") => p.open = false,
        Some(other) => return invalid(&format!("state {other:?} is not open or closed")),
        None => {}
    }
    if let Some(t) = field("title") {
        p.title = t.to_string();
        i.title = t.to_string();
    }
    if let Some(b) = field("body") {
        p.body = b.to_string();
        i.body = b.to_string();
    }
    i.open = p.open;
    i.updated_at = now;
    let number = i.number;
    let r = st.repo(repo).expect("checked");
    answer(StatusCode::OK, json::pull(&base_url, r, &r.issues[&number]))
}
