//! Comments on pull requests in the fake: conversation comments and review
//! comments (on a file's line) written by people, review comments listed as
//! `GET /repos/{repo}/pulls/{n}/comments` lists them, and a comment edited with
//! `PATCH /repos/{repo}/issues/comments/{id}`.

use std::collections::BTreeMap;

use scrum_core::Timestamp;
use serde_json::{Value, json};

use super::answer::{Answer, invalid, not_found, ok, paged};
use super::server::{lock, now_ms};
use super::state::{FakeComment, FakeReviewComment, State};
use super::{FakeGitHub, json};

impl FakeGitHub {
    /// `login` comments `body` on pull request `number` of `repo` (a
    /// conversation comment), and the `issue_comment` webhook is sent. Returns the
    /// comment's id.
    ///
    /// # Panics
    /// When the pull request is unknown.
    pub fn comment_on_pull(&self, repo: &str, number: u64, login: &str, body: &str) -> u64 {
        let id = {
            let mut st = lock(&self.state);
            let now = Timestamp(now_ms());
            let id = st.fresh_id();
            let comment = FakeComment {
                id,
                author: login.to_string(),
                body: body.to_string(),
                created_at: now,
                updated_at: now,
            };
            let issue = st
                .repo_mut(repo)
                .and_then(|r| r.issues.get_mut(&number))
                .expect("a known pull request");
            issue.comments.push(comment.clone());
            issue.updated_at = now;
            super::deliver::issue_comment(&mut st, repo, number, &comment);
            id
        };
        self.flush_deliveries();
        id
    }

    /// `login` comments `body` on `line` of `path` in pull request `number` of
    /// `repo` (a review comment), and the `pull_request_review_comment` webhook is
    /// sent. Returns the comment's id.
    ///
    /// # Panics
    /// When the pull request is unknown.
    pub fn review_comment(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        path: &str,
        line: u64,
        body: &str,
    ) -> u64 {
        let id = {
            let mut st = lock(&self.state);
            let now = Timestamp(now_ms());
            let id = st.fresh_id();
            let comment = FakeReviewComment {
                id,
                author: login.to_string(),
                path: path.to_string(),
                line,
                body: body.to_string(),
                created_at: now,
            };
            let issue = st
                .repo_mut(repo)
                .and_then(|r| r.issues.get_mut(&number))
                .expect("a known pull request");
            issue.updated_at = now;
            issue
                .pull
                .as_mut()
                .expect("a pull request")
                .review_comments
                .push(comment.clone());
            super::deliver::review_comment(&mut st, repo, number, &comment);
            id
        };
        self.flush_deliveries();
        id
    }
}

/// `GET /repos/{repo}/pulls/{n}/comments`.
pub(crate) fn list_review_comments(
    st: &State,
    repo: &str,
    n: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    let Some((i, p)) = n
        .parse::<u64>()
        .ok()
        .and_then(|n| r.issues.get(&n))
        .and_then(|i| Some((i, i.pull.as_ref()?)))
    else {
        return not_found();
    };
    paged(
        &st.base_url,
        &format!("/repos/{}/pulls/{}/comments", r.full_name, i.number),
        query,
        p.review_comments.iter().collect(),
        |c| review_comment_json(&st.base_url, &r.full_name, i.number, c),
    )
}

/// A review comment in GitHub's shape.
pub(crate) fn review_comment_json(
    base: &str,
    full: &str,
    pull: u64,
    c: &FakeReviewComment,
) -> Value {
    json!({
        "id": c.id, "node_id": format!("PRRC_{}", c.id),
        "url": format!("{base}/repos/{full}/pulls/comments/{}", c.id),
        "html_url": format!("{base}/{full}/pull/{pull}#discussion_r{}", c.id),
        "pull_request_url": format!("{base}/repos/{full}/pulls/{pull}"),
        "path": c.path, "line": c.line, "original_line": c.line, "side": "RIGHT",
        "body": c.body, "user": json::user_named(base, &c.author),
        "created_at": c.created_at.to_rfc3339(), "updated_at": c.created_at.to_rfc3339(),
        "author_association": "NONE"
    })
}

/// `PATCH /repos/{repo}/issues/comments/{id}`: a new body for a comment.
pub(crate) fn edit_comment(
    st: &mut State,
    repo: &str,
    id: &str,
    body: &Value,
    now: Timestamp,
) -> Answer {
    let Some(text) = body.get("body").and_then(Value::as_str) else {
        return invalid("body is required");
    };
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let Some(r) = st.repo_mut(repo) else {
        return not_found();
    };
    let Some(issue) = r
        .issues
        .values_mut()
        .find(|i| i.comments.iter().any(|c| c.id == id))
    else {
        return not_found();
    };
    let number = issue.number;
    if let Some(c) = issue.comments.iter_mut().find(|c| c.id == id) {
        c.body = text.to_string();
        c.updated_at = now;
    }
    issue.updated_at = now;
    let base = st.base_url.clone();
    let r = st.repo(repo).expect("checked");
    let i = &r.issues[&number];
    let c = i.comments.iter().find(|c| c.id == id).expect("found above");
    ok(json::comment(&base, r, i, c))
}
