//! The JSON shapes of GitHub's REST API that the fake answers with: close enough to
//! GitHub's that octocrab's models deserialize them.

use serde_json::{Value, json};

use super::TOKEN_USER;
use super::state::{FakeComment, FakeEvent, FakeIssue, FakeLabel, Repo};

fn user(base: &str) -> Value {
    user_named(base, "octo-fake")
}

/// A user object for `login`; a login ending in `[bot]` is a GitHub App's (`Bot`).
pub(crate) fn user_named(base: &str, login: &str) -> Value {
    let u = format!("{base}/users/{login}");
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({
        "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=",
        "avatar_url": "https://avatars.example.invalid/u/1", "gravatar_id": "",
        "url": u, "html_url": format!("{base}/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": kind, "site_admin": false
    })
}

/// One issue event, as `/repos/{repo}/issues/{n}/events` lists it.
pub(crate) fn event(base: &str, r: &Repo, e: &FakeEvent) -> Value {
    let mut v = json!({
        "id": e.id, "node_id": format!("IE_{}", e.id),
        "url": format!("{base}/repos/{}/issues/events/{}", r.full_name, e.id),
        "actor": user_named(base, &e.actor), "event": e.event,
        "commit_id": null, "commit_url": null, "created_at": e.created_at.to_rfc3339(),
        "performed_via_github_app": null
    });
    if let Some(name) = &e.label {
        let color = r
            .labels
            .get(&name.to_ascii_lowercase())
            .map_or("ededed", |l| l.color.as_str());
        v["label"] = json!({ "name": name, "color": color });
    }
    if let Some((from, to)) = &e.rename {
        v["rename"] = json!({ "from": from, "to": to });
    }
    v
}

pub(crate) fn label(base: &str, repo: &str, l: &FakeLabel) -> Value {
    json!({
        "id": l.id, "node_id": format!("LA_{}", l.id),
        "url": format!("{base}/repos/{repo}/labels/{}", crate::wire::encode_segment(&l.name)),
        "name": l.name, "description": null, "color": l.color, "default": false
    })
}

pub(crate) fn repository(base: &str, r: &Repo) -> Value {
    let (owner, name) = r.full_name.split_once('/').unwrap_or((&r.full_name, ""));
    let url = format!("{base}/repos/{}", r.full_name);
    let mut o = user(base);
    o["login"] = json!(owner);
    json!({
        "id": r.id, "node_id": format!("R_{}", r.id), "name": name, "full_name": r.full_name,
        "owner": o, "private": false, "html_url": format!("{base}/{}", r.full_name),
        "description": null, "fork": false, "url": url,
        "issues_url": format!("{url}/issues{{/number}}"), "pulls_url": format!("{url}/pulls{{/number}}"),
        "labels_url": format!("{url}/labels{{/name}}"),
        "default_branch": r.default_branch, "open_issues_count": r.issues.values().filter(|i| i.open).count(),
        "has_issues": true, "archived": false, "disabled": false, "visibility": "public",
        "permissions": permissions(r),
        "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z", "pushed_at": "2020-01-01T00:00:00Z"
    })
}

/// The token's `permissions` in `r`: its role there ([`TOKEN_USER`]'s, `write`
/// unless set), without push and triage while the repository is read-only to it.
fn permissions(r: &Repo) -> Value {
    let role = r.roles.get(TOKEN_USER).map_or("read", String::as_str);
    let at_least = |rank: usize| {
        let ranks = ["none", "read", "triage", "write", "maintain", "admin"];
        ranks.iter().position(|x| *x == role).unwrap_or(1) >= rank
    };
    json!({ "admin": at_least(5), "maintain": at_least(4), "push": at_least(3) && !r.read_only,
            "triage": at_least(2) && !r.read_only, "pull": at_least(1) })
}

pub(crate) fn issue(base: &str, r: &Repo, i: &FakeIssue) -> Value {
    let url = format!("{base}/repos/{}/issues/{}", r.full_name, i.number);
    let html = format!("{base}/{}/issues/{}", r.full_name, i.number);
    let labels: Vec<Value> = i
        .labels
        .iter()
        .filter_map(|n| r.labels.get(&n.to_ascii_lowercase()))
        .map(|l| label(base, &r.full_name, l))
        .collect();
    let mut v = json!({
        "id": i.id, "node_id": format!("I_{}", i.id), "url": url,
        "repository_url": format!("{base}/repos/{}", r.full_name),
        "labels_url": format!("{url}/labels{{/name}}"), "comments_url": format!("{url}/comments"),
        "events_url": format!("{url}/events"), "html_url": html, "number": i.number,
        "state": if i.open { "open" } else { "closed" },
        "state_reason": if i.open { Value::Null } else { json!("completed") },
        "title": i.title, "body": i.body, "user": user_named(base, &i.author), "labels": labels,
        "assignee": null, "assignees": [], "milestone": null, "locked": false,
        "active_lock_reason": null, "comments": i.comments.len(),
        "closed_at": if i.open { Value::Null } else { json!(i.updated_at.to_rfc3339()) },
        "created_at": i.created_at.to_rfc3339(), "updated_at": i.updated_at.to_rfc3339(),
        "author_association": "OWNER"
    });
    if i.pull.is_some() {
        let pr = format!("{base}/repos/{}/pulls/{}", r.full_name, i.number);
        let pr_html = format!("{base}/{}/pull/{}", r.full_name, i.number);
        v["pull_request"] = json!({
            "url": pr, "html_url": pr_html,
            "diff_url": format!("{pr_html}.diff"), "patch_url": format!("{pr_html}.patch")
        });
    }
    v
}

pub(crate) fn comment(base: &str, r: &Repo, i: &FakeIssue, c: &FakeComment) -> Value {
    let id = c.id;
    json!({
        "id": id, "node_id": format!("IC_{id}"),
        "url": format!("{base}/repos/{}/issues/comments/{id}", r.full_name),
        "html_url": format!("{base}/{}/issues/{}#issuecomment-{id}", r.full_name, i.number),
        "issue_url": format!("{base}/repos/{}/issues/{}", r.full_name, i.number),
        "body": c.body, "user": user_named(base, &c.author), "author_association": association(r, &c.author),
        "created_at": c.created_at.to_rfc3339(), "updated_at": c.updated_at.to_rfc3339()
    })
}

/// GitHub's `author_association` of `login` in `r`: `OWNER`, `COLLABORATOR` or
/// `NONE` (informative only: permissions are read from the collaborator API).
pub(crate) fn association(r: &Repo, login: &str) -> &'static str {
    match r.roles.get(&login.to_ascii_lowercase()).map(String::as_str) {
        Some("admin") => "OWNER",
        Some("maintain" | "write" | "triage") => "COLLABORATOR",
        _ => "NONE",
    }
}

pub(crate) fn pull(base: &str, r: &Repo, i: &FakeIssue) -> Value {
    let Some(p) = &i.pull else {
        return Value::Null;
    };
    let owner = r.full_name.split('/').next().unwrap_or_default();
    let side = |branch: &str, sha: &str| {
        let sha = if sha.is_empty() {
            "0000000000000000000000000000000000000000"
        } else {
            sha
        };
        json!({
            "label": format!("{owner}:{branch}"), "ref": branch, "sha": sha,
            "user": user(base), "repo": repository(base, r)
        })
    };
    let mergeable_state = match (p.open, p.mergeable) {
        (false, _) | (true, None) => "unknown",
        (true, Some(true)) => "clean",
        (true, Some(false)) => "dirty",
    };
    json!({
        "id": i.id, "node_id": format!("PR_{}", i.id),
        "url": format!("{base}/repos/{}/pulls/{}", r.full_name, p.number),
        "html_url": format!("{base}/{}/pull/{}", r.full_name, p.number),
        "diff_url": format!("{base}/{}/pull/{}.diff", r.full_name, p.number),
        "patch_url": format!("{base}/{}/pull/{}.patch", r.full_name, p.number),
        "issue_url": format!("{base}/repos/{}/issues/{}", r.full_name, p.number),
        "number": p.number, "state": if p.open { "open" } else { "closed" }, "locked": false,
        "title": p.title, "body": p.body, "user": user(base), "labels": [],
        "created_at": i.created_at.to_rfc3339(), "updated_at": i.updated_at.to_rfc3339(),
        "closed_at": null, "draft": false, "merged": p.merged,
        "merged_at": if p.merged { json!(i.updated_at.to_rfc3339()) } else { Value::Null },
        "head": side(&p.head, &p.head_sha), "base": side(&p.base, &p.base_sha),
        "author_association": "OWNER",
        "mergeable": if p.open { json!(p.mergeable) } else { Value::Null },
        "mergeable_state": mergeable_state,
        "comments": i.comments.len(), "review_comments": p.review_comments.len()
    })
}

/// GitHub's error body: `{"message": ..., "documentation_url": ...}`.
pub(crate) fn error(message: &str) -> Value {
    json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": "" })
}
