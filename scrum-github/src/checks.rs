//! The checks of a pull request's head commit, for follow-ups
//! ([`scrum_core::IssueSource::pull_status`]): its check runs and commit statuses,
//! which of them count (the names `FOLLOW_UP_CHECKS` gives, else the base branch's
//! required checks, else all), where they stand, and for each failed check run its
//! annotations and the tail of its GitHub Actions job's log.
//!
//! Costs: the check runs, the combined status and the required checks are asked for
//! with the ETag they last came with (an unchanged head costs no rate-limit point);
//! the required checks are read once a minute per branch, and a branch whose
//! protection the token may not read is not asked again within that minute; a
//! failed check run's annotations and log are read once (a completed check run never
//! changes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scrum_core::follow_up::{Checks, ChecksState, FailedCheck, LOG_TAIL_CHARS};
use scrum_core::{RepoName, Result};

use crate::classify::{Subject, What};
use crate::reviews::{ReviewCache, parse};
use crate::sync::lock;
use crate::transport::{Call, Transport};
use crate::wire::{self, Annotation, CheckRun, CombinedStatus, RequiredChecks, encode_segment};

/// How long a branch's required checks are trusted before they are read again.
pub(crate) const REQUIRED_FRESH: Duration = Duration::from_secs(60);

/// How many lines of a failed job's log a follow-up carries (then capped at
/// [`LOG_TAIL_CHARS`]).
pub(crate) const LOG_TAIL_LINES: usize = 60;

/// The most entries each cache keeps; past it the cache starts over.
const MAX: usize = 10_000;

/// Conclusions of a completed check run that count as failed.
const FAILED_CONCLUSIONS: [&str; 4] = ["failure", "timed_out", "cancelled", "action_required"];

/// What the client remembers between reads of checks.
#[derive(Default)]
pub(crate) struct CheckCache {
    /// The required checks of (repository, branch): `None` when the token cannot
    /// read its protection (or it has none), and when that was read.
    required: Mutex<HashMap<(RepoName, String), Required>>,
    /// What failed check runs need, by check run id: read once.
    failed: Mutex<HashMap<u64, FailedCheck>>,
}

/// A branch's required checks as last read (`None`: every check counts), and when.
type Required = (Option<Vec<String>>, Instant);

/// One check of the head commit, check run or commit status, as it counts.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) name: String,
    pub(crate) standing: Standing,
    /// `failure: title`, for a failed one.
    pub(crate) summary: String,
    /// The check run behind it, for its annotations and log.
    pub(crate) run: Option<CheckRun>,
}

/// Where one check stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Running,
    Passed,
    Failed,
}

/// The checks of `sha` in `repo` that count, with the details of the failed ones.
pub(crate) async fn read_checks(
    transport: &Transport,
    answers: &ReviewCache,
    cache: &CheckCache,
    repo: &RepoName,
    sha: &str,
    base: &str,
    named: &[String],
) -> Result<Checks> {
    let what = What {
        action: "read the checks of",
        subject: Subject::Repo(repo.clone()),
    };
    let seen = head_checks(transport, answers, repo, sha, &what).await?;
    let counted: Vec<String> = if named.is_empty() {
        cache
            .required(transport, answers, repo, base)
            .await?
            .unwrap_or_default()
    } else {
        named.to_vec()
    };
    let must_report = named.is_empty() && !counted.is_empty();
    let (state, failed) = standing(&seen, &counted, must_report);
    let mut out = Vec::new();
    for check in failed {
        out.push(cache.details(transport, repo, check).await?);
    }
    Ok(Checks { state, failed: out })
}

/// Every check of `sha`: its check runs (the latest of each name) and its commit
/// statuses (the latest of each context).
async fn head_checks(
    transport: &Transport,
    answers: &ReviewCache,
    repo: &RepoName,
    sha: &str,
    what: &What,
) -> Result<Vec<Seen>> {
    let sha = encode_segment(sha);
    let mut latest: BTreeMap<String, CheckRun> = BTreeMap::new();
    let mut path = Some(format!(
        "/repos/{repo}/commits/{sha}/check-runs?per_page=100"
    ));
    while let Some(p) = path.take() {
        let Some(page) = answers.page_if_found(transport, p, what).await? else {
            refused(repo, "check runs", "Checks: read");
            break;
        };
        let runs: wire::CheckRuns = parse(&page.body, what)?;
        for run in runs.check_runs {
            match latest.get(&run.name) {
                Some(old) if old.id > run.id => {}
                _ => {
                    latest.insert(run.name.clone(), run);
                }
            }
        }
        path = page.next;
    }
    let mut seen: Vec<Seen> = latest.into_values().map(of_run).collect();
    let path = format!("/repos/{repo}/commits/{sha}/status?per_page=100");
    let Some(page) = answers.page_if_found(transport, path, what).await? else {
        refused(repo, "commit statuses", "Commit statuses: read");
        return Ok(seen);
    };
    let combined: CombinedStatus = parse(&page.body, what)?;
    seen.extend(combined.statuses.into_iter().map(|s| {
        let standing = match s.state.as_str() {
            "success" => Standing::Passed,
            "failure" | "error" => Standing::Failed,
            _ => Standing::Running,
        };
        let summary = match s.description.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(d) => format!("{}: {d}", s.state),
            None => s.state.clone(),
        };
        Seen {
            name: s.context,
            standing,
            summary,
            run: None,
        }
    }));
    Ok(seen)
}

/// Says that the token may not read `what` of `repo` (a 403 or 404): those checks
/// are left out, and follow-ups on checks see only the others.
fn refused(repo: &RepoName, what: &str, permission: &str) {
    tracing::warn!(
        repository = %repo,
        "GitHub refused to show the {what} of a pull request's head commit: the token needs {permission}; follow-ups leave them out"
    );
}

fn of_run(run: CheckRun) -> Seen {
    let conclusion = run.conclusion.clone().unwrap_or_default();
    let standing = if run.status != "completed" {
        Standing::Running
    } else if FAILED_CONCLUSIONS.contains(&conclusion.as_str()) {
        Standing::Failed
    } else {
        Standing::Passed
    };
    let output = run.output.clone().unwrap_or_default();
    let detail = output
        .title
        .filter(|t| !t.trim().is_empty())
        .or(output.summary.filter(|s| !s.trim().is_empty()));
    let summary = match detail {
        Some(d) => format!("{conclusion}: {}", d.trim()),
        None => conclusion,
    };
    Seen {
        name: run.name.clone(),
        standing,
        summary,
        run: Some(run),
    }
}

/// Where the checks that count stand, and the failed ones. `counted` empty: every
/// check counts. With `must_report` (the base branch requires them), a counted
/// check that has not reported yet is waited for, as GitHub waits for it before
/// it lets the pull request merge.
pub(crate) fn standing<'a>(
    seen: &'a [Seen],
    counted: &[String],
    must_report: bool,
) -> (ChecksState, Vec<&'a Seen>) {
    let counts = |name: &str| counted.is_empty() || counted.iter().any(|c| c == name);
    let mine: Vec<&Seen> = seen.iter().filter(|s| counts(&s.name)).collect();
    let failed: Vec<&Seen> = mine
        .iter()
        .copied()
        .filter(|s| s.standing == Standing::Failed)
        .collect();
    let missing = must_report && counted.iter().any(|c| !seen.iter().any(|s| &s.name == c));
    let state = if !failed.is_empty() {
        ChecksState::Failed
    } else if missing || mine.iter().any(|s| s.standing == Standing::Running) {
        ChecksState::Pending
    } else if mine.is_empty() {
        ChecksState::None
    } else {
        ChecksState::Passed
    };
    (state, failed)
}

impl CheckCache {
    /// The required checks of `branch`, read at most once per [`REQUIRED_FRESH`];
    /// `None` when the token may not read its protection or it has none (then every
    /// check counts).
    async fn required(
        &self,
        transport: &Transport,
        answers: &ReviewCache,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<Vec<String>>> {
        let key = (repo.clone(), branch.to_string());
        if let Some((names, at)) = lock(&self.required).get(&key) {
            if at.elapsed() < REQUIRED_FRESH {
                return Ok(names.clone());
            }
        }
        let what = What {
            action: "read the required checks of",
            subject: Subject::Repo(repo.clone()),
        };
        let path = format!(
            "/repos/{repo}/branches/{}/protection/required_status_checks",
            encode_segment(branch)
        );
        let names = match answers.page_if_found(transport, path, &what).await? {
            Some(page) => {
                let r: RequiredChecks = parse(&page.body, &what)?;
                let mut names: Vec<String> = r.contexts;
                for c in r.checks {
                    if !names.contains(&c.context) {
                        names.push(c.context);
                    }
                }
                Some(names).filter(|n| !n.is_empty())
            }
            None => None,
        };
        let mut map = lock(&self.required);
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(key, (names.clone(), Instant::now()));
        Ok(names)
    }

    /// A failed check with its annotations and its Actions job's log tail, read
    /// once per check run.
    async fn details(
        &self,
        transport: &Transport,
        repo: &RepoName,
        check: &Seen,
    ) -> Result<FailedCheck> {
        let mut failed = FailedCheck {
            name: check.name.clone(),
            summary: check.summary.clone(),
            annotations: Vec::new(),
            log_tail: String::new(),
        };
        let Some(run) = &check.run else {
            return Ok(failed);
        };
        if let Some(known) = lock(&self.failed).get(&run.id) {
            return Ok(known.clone());
        }
        let what = What {
            action: "read a failed check of",
            subject: Subject::Repo(repo.clone()),
        };
        if run.output.as_ref().is_some_and(|o| o.annotations_count > 0) {
            failed.annotations = annotations(transport, repo, run.id, &what).await?;
        }
        let actions = run
            .app
            .as_ref()
            .and_then(|a| a.slug.as_deref())
            .is_some_and(|s| s == "github-actions");
        if actions {
            failed.log_tail = log_tail(transport, repo, run.id, &what).await?;
        }
        let mut map = lock(&self.failed);
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(run.id, failed.clone());
        Ok(failed)
    }
}

/// A check run's annotations, `path:line: message` each; none when the token may
/// not read them.
async fn annotations(
    transport: &Transport,
    repo: &RepoName,
    id: u64,
    what: &What,
) -> Result<Vec<String>> {
    let path = format!("/repos/{repo}/check-runs/{id}/annotations?per_page=50");
    let reply = transport.send(&Call::get(path, what.clone())).await?;
    if !reply.status.is_success() && reply.status.is_client_error() {
        return Ok(Vec::new());
    }
    let list: Vec<Annotation> = reply.success(what)?.json(what)?;
    Ok(list
        .into_iter()
        .map(|a| {
            let message = a.message.unwrap_or_default();
            match a.start_line {
                Some(line) => format!("{}:{line}: {}", a.path, message.trim()),
                None => format!("{}: {}", a.path, message.trim()),
            }
        })
        .collect())
}

/// The last [`LOG_TAIL_LINES`] lines of an Actions job's log, capped at
/// [`LOG_TAIL_CHARS`]. GitHub answers with a redirect to the log, which the
/// client follows (without the token, to another host). Empty when the log cannot
/// be read (no `actions: read`, or it expired).
async fn log_tail(transport: &Transport, repo: &RepoName, job: u64, what: &What) -> Result<String> {
    let path = format!("/repos/{repo}/actions/jobs/{job}/logs");
    let mut call = Call::get(path, what.clone());
    call.text = true;
    let reply = transport.send(&call).await?;
    if !reply.status.is_success() {
        if reply.status.is_client_error() || reply.status.is_redirection() {
            return Ok(String::new());
        }
        reply.success(what)?;
        return Ok(String::new());
    }
    Ok(tail(&reply.body, LOG_TAIL_LINES, LOG_TAIL_CHARS))
}

/// The last `lines` lines of `log`, then its last `chars` characters.
pub(crate) fn tail(log: &str, lines: usize, chars: usize) -> String {
    let all: Vec<&str> = log.trim_end().lines().collect();
    let start = all.len().saturating_sub(lines);
    let text = all[start..].join("\n");
    let count = text.chars().count();
    if count <= chars {
        return text;
    }
    text.chars().skip(count - chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, standing: Standing) -> Seen {
        Seen {
            name: name.into(),
            standing,
            summary: String::new(),
            run: None,
        }
    }

    #[test]
    fn the_checks_that_count_decide_the_state() {
        use Standing::*;
        let all = [
            seen("build", Passed),
            seen("lint", Failed),
            seen("e2e", Running),
        ];
        assert_eq!(standing(&[], &[], false).0, ChecksState::None);
        assert_eq!(standing(&all, &[], false).0, ChecksState::Failed);
        let build = ["build".to_string()];
        assert_eq!(standing(&all, &build, false).0, ChecksState::Passed);
        let e2e = ["e2e".to_string(), "build".to_string()];
        assert_eq!(standing(&all, &e2e, true).0, ChecksState::Pending);
        // A required check that has not reported is waited for.
        let deploy = ["deploy".to_string()];
        assert_eq!(standing(&all, &deploy, true).0, ChecksState::Pending);
        assert_eq!(standing(&all, &deploy, false).0, ChecksState::None);
    }

    #[test]
    fn a_log_tail_keeps_the_last_lines_then_the_last_characters() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let t = tail(&log, 60, 10_000);
        assert!(t.starts_with("line 41\n") && t.ends_with("line 100"), "{t}");
        assert_eq!(tail(&log, 60, 8), "line 100");
        assert_eq!(tail("", 60, 10), "");
    }
}
