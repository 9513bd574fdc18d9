//! The fake's check routes: the check runs and combined status of a commit, a
//! check run's annotations, an Actions job's log (a redirect to where it is
//! stored) and a branch's required checks.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::answer::{Answer, fail, not_found, ok};
use super::checks::{StoredRun, StoredStatus};
use super::heads;
use super::state::State;

/// The check routes: check runs and combined status of a commit, a check run's
/// annotations, an Actions job's log (a redirect), a branch's required checks.
pub(crate) fn route(st: &mut State, seg: &[&str], query: &BTreeMap<String, String>) -> Answer {
    let _ = query;
    let (o, r) = match seg {
        ["repos", o, r, ..] => (*o, *r),
        _ => return not_found(),
    };
    let repo = format!("{o}/{r}");
    if st.repo(&repo).is_none() {
        return not_found();
    }
    match &seg[3..] {
        ["commits", reference, "check-runs"] => check_runs(st, &repo, reference),
        ["commits", reference, "status"] => combined_status(st, &repo, reference),
        ["check-runs", id, "annotations"] => annotations(st, &repo, id),
        ["actions", "jobs", id, "logs"] => job_logs(st, &repo, id),
        ["branches", branch, "protection", "required_status_checks"] => required(st, &repo, branch),
        _ => not_found(),
    }
}

/// A commit id, or the commit a branch points at.
fn commit_of(st: &State, repo: &str, reference: &str) -> String {
    let is_sha = reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha {
        return reference.to_string();
    }
    heads::head_of(st, repo, reference).unwrap_or_default()
}

/// The latest run of each name on `sha`.
fn latest_runs<'a>(st: &'a State, repo: &str, sha: &str) -> Vec<&'a StoredRun> {
    let mut latest: BTreeMap<&str, &StoredRun> = BTreeMap::new();
    for run in st
        .repo(repo)
        .map(|r| r.checks.runs.as_slice())
        .unwrap_or_default()
    {
        if run.sha == sha {
            latest.insert(&run.check.name, run);
        }
    }
    latest.into_values().collect()
}

fn check_runs(st: &State, repo: &str, reference: &str) -> Answer {
    let sha = commit_of(st, repo, reference);
    let runs: Vec<Value> = latest_runs(st, repo, &sha)
        .into_iter()
        .map(|run| run_json(st, repo, run))
        .collect();
    ok(json!({ "total_count": runs.len(), "check_runs": runs }))
}

/// A check run in GitHub's shape.
pub(crate) fn run_json(st: &State, repo: &str, run: &StoredRun) -> Value {
    let base = &st.base_url;
    let full = st.repo(repo).map_or(repo, |r| r.full_name.as_str());
    let c = &run.check;
    let pulls: Vec<Value> = pulls_at(st, repo, &run.sha)
        .into_iter()
        .map(|n| json!({ "number": n, "url": format!("{base}/repos/{full}/pulls/{n}") }))
        .collect();
    let app = if c.actions {
        json!({ "id": 15368, "slug": "github-actions", "name": "GitHub Actions" })
    } else {
        json!({ "id": 9, "slug": "external-ci", "name": "External CI" })
    };
    let completed = (c.status == "completed").then(|| run.at.to_rfc3339());
    json!({
        "id": run.id, "node_id": format!("CR_{}", run.id), "head_sha": run.sha,
        "external_id": "", "name": c.name, "status": c.status, "conclusion": c.conclusion,
        "url": format!("{base}/repos/{full}/check-runs/{}", run.id),
        "html_url": format!("{base}/{full}/runs/{}", run.id),
        "details_url": format!("{base}/{full}/actions/runs/{}/job/{}", run.id, run.id),
        "started_at": run.at.to_rfc3339(), "completed_at": completed,
        "output": {
            "title": if c.title.is_empty() { Value::Null } else { json!(c.title) },
            "summary": if c.summary.is_empty() { Value::Null } else { json!(c.summary) },
            "text": null, "annotations_count": c.annotations.len(),
            "annotations_url": format!("{base}/repos/{full}/check-runs/{}/annotations", run.id)
        },
        "check_suite": { "id": run.id },
        "app": app,
        "pull_requests": pulls
    })
}

/// The open pull requests of `repo` whose head is `sha`.
pub(crate) fn pulls_at(st: &State, repo: &str, sha: &str) -> Vec<u64> {
    st.repo(repo)
        .map(|r| {
            r.issues
                .values()
                .filter_map(|i| i.pull.as_ref())
                .filter(|p| p.open && p.head_sha == sha)
                .map(|p| p.number)
                .collect()
        })
        .unwrap_or_default()
}

fn combined_status(st: &State, repo: &str, reference: &str) -> Answer {
    let sha = commit_of(st, repo, reference);
    let mut latest: BTreeMap<&str, &StoredStatus> = BTreeMap::new();
    for s in st
        .repo(repo)
        .map(|r| r.checks.statuses.as_slice())
        .unwrap_or_default()
    {
        if s.sha == sha {
            latest.insert(&s.context, s);
        }
    }
    let states: Vec<&str> = latest.values().map(|s| s.state.as_str()).collect();
    let state = if states.iter().any(|s| matches!(*s, "failure" | "error")) {
        "failure"
    } else if states.iter().all(|s| *s == "success") && !states.is_empty() {
        "success"
    } else {
        "pending"
    };
    let statuses: Vec<Value> = latest
        .values()
        .map(|s| {
            json!({
                "id": s.id, "node_id": format!("SC_{}", s.id), "state": s.state,
                "context": s.context, "description": s.description, "target_url": null,
                "created_at": s.at.to_rfc3339(), "updated_at": s.at.to_rfc3339()
            })
        })
        .collect();
    ok(json!({
        "state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses
    }))
}

fn find_run<'a>(st: &'a State, repo: &str, id: &str) -> Option<&'a StoredRun> {
    let id: u64 = id.parse().ok()?;
    st.repo(repo)?.checks.runs.iter().find(|r| r.id == id)
}

fn annotations(st: &State, repo: &str, id: &str) -> Answer {
    let Some(run) = find_run(st, repo, id) else {
        return not_found();
    };
    let list: Vec<Value> = run
        .check
        .annotations
        .iter()
        .map(|(path, line, message)| {
            json!({
                "path": path, "start_line": line, "end_line": line,
                "annotation_level": "failure", "message": message,
                "title": null, "raw_details": null
            })
        })
        .collect();
    ok(Value::Array(list))
}

/// GitHub answers a job's log with a redirect to where it is stored.
fn job_logs(st: &State, repo: &str, id: &str) -> Answer {
    match find_run(st, repo, id) {
        Some(run) if run.check.actions => {
            let mut a = fail(StatusCode::FOUND, "Found");
            a.location = Some(format!("{}/_fake/logs/{}", st.base_url, run.id));
            a
        }
        _ => not_found(),
    }
}

/// The log text of check run `id`, served where the redirect points.
pub(crate) fn log_text(st: &State, id: &str) -> Option<String> {
    let id: u64 = id.parse().ok()?;
    st.repos
        .values()
        .flat_map(|r| r.checks.runs.iter())
        .find(|r| r.id == id && r.check.actions)
        .map(|r| {
            let mut text = r.check.log.join("\n");
            text.push('\n');
            text
        })
}

fn required(st: &State, repo: &str, branch: &str) -> Answer {
    let base = &st.base_url;
    let Some(r) = st.repo(repo) else {
        return not_found();
    };
    match r.checks.required.get(branch) {
        Some(names) => ok(json!({
            "url": format!("{base}/repos/{}/branches/{branch}/protection/required_status_checks", r.full_name),
            "strict": false, "contexts": names,
            "checks": names.iter().map(|n| json!({ "context": n, "app_id": null })).collect::<Vec<_>>()
        })),
        None => fail(StatusCode::NOT_FOUND, "Branch not protected"),
    }
}
