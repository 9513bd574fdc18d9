//! GitHub's issue dependencies in the fake: each issue's
//! `issue_dependencies_summary`, and `GET /repos/{repo}/issues/{n}/dependencies/blocked_by`.

use std::collections::BTreeMap;

use scrum_core::TaskId;
use serde_json::{Value, json};

use super::answer::{Answer, not_found, paged};
use super::json;
use super::state::{FakeIssue, Repo, State};

/// The blockers recorded for `owner/name` issue `number` (`FakeGitHub::add_blocked_by`).
fn recorded<'a>(st: &'a State, repo: &str, number: u64) -> &'a [TaskId] {
    st.blocked_by
        .get(&(repo.to_ascii_lowercase(), number))
        .map_or(&[], Vec::as_slice)
}

/// The issue a recorded blocker names, with its repository, when the fake has it.
fn blocker<'a>(st: &'a State, id: &TaskId) -> Option<(&'a Repo, &'a FakeIssue)> {
    let r = st.repo(id.repo())?;
    Some((r, r.issues.get(&id.number())?))
}

/// The issue's JSON with its `issue_dependencies_summary`, as GitHub answers it.
pub(crate) fn issue_json(st: &State, r: &Repo, i: &FakeIssue) -> Value {
    let mut v = json::issue(&st.base_url, r, i);
    let all = recorded(st, &r.full_name, i.number);
    let open = all
        .iter()
        .filter(|b| blocker(st, b).is_some_and(|(_, i)| i.open))
        .count();
    let blocking = st
        .blocked_by
        .values()
        .filter(|list| {
            list.iter()
                .any(|b| b.repo().eq_ignore_ascii_case(&r.full_name) && b.number() == i.number)
        })
        .count();
    v["issue_dependencies_summary"] = json!({
        "blocked_by": open, "total_blocked_by": all.len(),
        "blocking": blocking, "total_blocking": blocking
    });
    v
}

/// `GET /repos/{repo}/issues/{n}/dependencies/blocked_by`: the blocking issues, paged.
pub(crate) fn list_blocked_by(
    st: &State,
    repo: &str,
    n: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    let Ok(number) = n.parse::<u64>() else {
        return not_found();
    };
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    if !r.issues.contains_key(&number) {
        return not_found();
    }
    let found: Vec<(&Repo, &FakeIssue)> = recorded(st, repo, number)
        .iter()
        .filter_map(|b| blocker(st, b))
        .collect();
    paged(
        &st.base_url,
        &format!(
            "/repos/{}/issues/{number}/dependencies/blocked_by",
            r.full_name
        ),
        query,
        found,
        |(r, i)| issue_json(st, r, i),
    )
}
