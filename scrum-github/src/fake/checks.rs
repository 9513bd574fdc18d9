//! Checks in the fake: check runs (with their output, annotations and, for GitHub
//! Actions, a job whose log is served through a redirect), commit statuses, a
//! branch's required checks, and a "CI script" that decides a pull request's
//! checks on each new head commit, as continuous integration would. Their routes
//! are in `super::check_routes`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use scrum_core::Timestamp;

use super::server::{lock, now_ms};
use super::state::State;
use super::{FakeGitHub, heads};

/// Which commit a check or status is on: a pull request's head, or a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// The head commit of this pull request, as it is now.
    Pull(u64),
    /// This commit.
    Sha(String),
}

impl From<u64> for At {
    fn from(number: u64) -> At {
        At::Pull(number)
    }
}

impl From<&str> for At {
    fn from(sha: &str) -> At {
        At::Sha(sha.to_string())
    }
}

/// A check run to report ([`FakeGitHub::set_check`]), as GitHub Actions would
/// unless [`FakeCheck::external`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCheck {
    /// Its name (a job's name for Actions).
    pub name: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// For a completed one: `success`, `failure`, `timed_out`, `cancelled`,
    /// `action_required`, `neutral`, `skipped`.
    pub conclusion: Option<String>,
    /// Its output's title.
    pub title: String,
    /// Its output's summary.
    pub summary: String,
    /// Its job's log, one line each.
    pub log: Vec<String>,
    /// Its annotations: (path, line, message).
    pub annotations: Vec<(String, u64, String)>,
    /// Whether GitHub Actions ran it (then its job's log can be read).
    pub actions: bool,
}

impl FakeCheck {
    /// A completed check run named `name` with `conclusion`.
    pub fn completed(name: &str, conclusion: &str) -> FakeCheck {
        FakeCheck {
            name: name.to_string(),
            status: "completed".into(),
            conclusion: Some(conclusion.to_string()),
            title: String::new(),
            summary: String::new(),
            log: Vec::new(),
            annotations: Vec::new(),
            actions: true,
        }
    }

    /// A check run that passed.
    pub fn passed(name: &str) -> FakeCheck {
        FakeCheck::completed(name, "success")
    }

    /// A check run that failed.
    pub fn failed(name: &str) -> FakeCheck {
        FakeCheck::completed(name, "failure")
    }

    /// A check run still running.
    pub fn running(name: &str) -> FakeCheck {
        FakeCheck {
            status: "in_progress".into(),
            conclusion: None,
            ..FakeCheck::passed(name)
        }
    }

    /// With this output title.
    pub fn title(mut self, title: &str) -> FakeCheck {
        self.title = title.to_string();
        self
    }

    /// With this output summary.
    pub fn summary(mut self, summary: &str) -> FakeCheck {
        self.summary = summary.to_string();
        self
    }

    /// With this job log.
    pub fn log<S: AsRef<str>>(mut self, lines: &[S]) -> FakeCheck {
        self.log = lines.iter().map(|l| l.as_ref().to_string()).collect();
        self
    }

    /// With an annotation on `path` at `line`.
    pub fn annotation(mut self, path: &str, line: u64, message: &str) -> FakeCheck {
        self.annotations
            .push((path.to_string(), line, message.to_string()));
        self
    }

    /// Reported by another app than GitHub Actions: no job log to read.
    pub fn external(mut self) -> FakeCheck {
        self.actions = false;
        self
    }
}

/// A head commit continuous integration runs on ([`FakeGitHub::set_ci`]).
#[derive(Clone, Debug)]
pub struct CiRun {
    /// The repository.
    pub repo: String,
    /// The pull request whose head it is.
    pub pull: u64,
    /// Its branch.
    pub branch: String,
    /// The commit.
    pub sha: String,
    /// Which head of the pull request this is: 1 for the one it opened with, then
    /// one more each push.
    pub round: usize,
    pub(crate) git: Option<PathBuf>,
    pub(crate) files: BTreeMap<String, String>,
}

impl CiRun {
    /// The file at `path` in the commit, if it has one.
    pub fn file(&self, path: &str) -> Option<String> {
        match &self.git {
            Some(dir) => heads::git(dir, &["show", &format!("{}:{path}", self.sha)], &[], None),
            None => self.files.get(path).cloned(),
        }
    }
}

type Decide = Arc<dyn Fn(&CiRun) -> FakeCheck + Send + Sync>;

/// One CI script: the check it reports on each new head.
#[derive(Clone)]
pub(crate) struct CiScript {
    decide: Decide,
}

impl std::fmt::Debug for CiScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CiScript")
    }
}

/// A check run as the fake keeps it.
#[derive(Clone, Debug)]
pub(crate) struct StoredRun {
    pub(crate) id: u64,
    pub(crate) sha: String,
    pub(crate) check: FakeCheck,
    pub(crate) at: Timestamp,
}

/// A commit status as the fake keeps it.
#[derive(Clone, Debug)]
pub(crate) struct StoredStatus {
    pub(crate) id: u64,
    pub(crate) sha: String,
    pub(crate) context: String,
    pub(crate) state: String,
    pub(crate) description: String,
    pub(crate) at: Timestamp,
}

/// A repository's checks.
#[derive(Debug, Default)]
pub(crate) struct RepoChecks {
    pub(crate) runs: Vec<StoredRun>,
    pub(crate) statuses: Vec<StoredStatus>,
    /// Required checks by branch.
    pub(crate) required: BTreeMap<String, Vec<String>>,
    ci: Vec<CiScript>,
}

/// The commit `at` names in `repo` (a pull request's current head).
pub(crate) fn resolve(st: &mut State, repo: &str, at: &At) -> Option<String> {
    match at {
        At::Sha(sha) => Some(sha.clone()),
        At::Pull(n) => {
            heads::refresh(st, repo, Some(*n));
            let pull = st.repo(repo)?.issues.get(n)?.pull.as_ref()?;
            Some(pull.head_sha.clone())
        }
    }
}

/// Stores `check` on `sha` and queues its `check_run` webhook; returns its id.
fn store_run(st: &mut State, repo: &str, sha: &str, check: FakeCheck) -> Option<u64> {
    let id = st.fresh_id();
    let run = StoredRun {
        id,
        sha: sha.to_string(),
        check,
        at: Timestamp(now_ms()),
    };
    st.repo_mut(repo)?.checks.runs.push(run.clone());
    super::deliver::check_run(st, repo, &run);
    Some(id)
}

/// Runs every CI script of the repository on `run`'s commit.
pub(crate) fn run_ci(st: &mut State, run: CiRun) {
    let scripts = match st.repo(&run.repo) {
        Some(r) => r.checks.ci.clone(),
        None => return,
    };
    if scripts.is_empty() {
        return;
    }
    for script in scripts {
        let check = (script.decide)(&run);
        store_run(st, &run.repo, &run.sha, check);
    }
    super::deliver::check_suite(st, &run.repo, &run.sha);
}

impl FakeGitHub {
    /// Reports check run `check` on the commit `at` names in `repo` (a pull
    /// request's head: `2u64`; a commit: `"3f2a…"`), and sends its `check_run`
    /// webhook. A later check of the same name on the same commit replaces it, as a
    /// re-run does. Returns its id (for Actions, its job's id too).
    ///
    /// # Panics
    /// When the repository or pull request is unknown.
    pub fn set_check(&self, repo: &str, at: impl Into<At>, check: FakeCheck) -> u64 {
        let id = {
            let mut st = lock(&self.state);
            let sha =
                resolve(&mut st, repo, &at.into()).expect("a known repository and pull request");
            store_run(&mut st, repo, &sha, check).expect("add_repo first")
        };
        self.flush_deliveries();
        id
    }

    /// Sets commit status `context` (`pending`, `success`, `failure` or `error`)
    /// on the commit `at` names in `repo`, and sends its `status` webhook.
    ///
    /// # Panics
    /// When the repository or pull request is unknown.
    pub fn add_status(
        &self,
        repo: &str,
        at: impl Into<At>,
        context: &str,
        state: &str,
        description: &str,
    ) {
        {
            let mut st = lock(&self.state);
            let sha =
                resolve(&mut st, repo, &at.into()).expect("a known repository and pull request");
            let id = st.fresh_id();
            let status = StoredStatus {
                id,
                sha: sha.clone(),
                context: context.to_string(),
                state: state.to_string(),
                description: description.to_string(),
                at: Timestamp(now_ms()),
            };
            st.repo_mut(repo)
                .expect("add_repo first")
                .checks
                .statuses
                .push(status);
            super::deliver::status(&mut st, repo, &sha, context, state);
        }
        self.flush_deliveries();
    }

    /// Makes `names` the required checks of `branch` (its branch protection);
    /// none: the branch is not protected (GitHub answers 404).
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn require_checks(&self, repo: &str, branch: &str, names: &[&str]) {
        let mut st = lock(&self.state);
        let required = &mut st.repo_mut(repo).expect("add_repo first").checks.required;
        if names.is_empty() {
            required.remove(branch);
        } else {
            required.insert(
                branch.to_string(),
                names.iter().map(|n| n.to_string()).collect(),
            );
        }
    }

    /// A CI script: on each new head commit of each open pull request of `repo`
    /// (the one it opens with, then each push), `decide` says which check run it
    /// gets. Runs when the fake next sees the pull request (any read of it), with
    /// the fake locked: `decide` must not call the fake.
    ///
    /// # Panics
    /// When the repository was not added.
    pub fn set_ci(&self, repo: &str, decide: impl Fn(&CiRun) -> FakeCheck + Send + Sync + 'static) {
        lock(&self.state)
            .repo_mut(repo)
            .expect("add_repo first")
            .checks
            .ci
            .push(CiScript {
                decide: Arc::new(decide),
            });
    }

    /// A CI script ([`FakeGitHub::set_ci`]) for check `name`: it fails while the
    /// file at `path` of the head commit contains `needle`, with `log_line` in its
    /// job's log and as an annotation on `path`; else it passes.
    pub fn ci_fails_while(&self, repo: &str, name: &str, path: &str, needle: &str, log_line: &str) {
        let (name, path, needle, line) = (
            name.to_string(),
            path.to_string(),
            needle.to_string(),
            log_line.to_string(),
        );
        self.set_ci(repo, move |run| {
            let bad = run.file(&path).is_some_and(|text| text.contains(&needle));
            if !bad {
                return FakeCheck::passed(&name).log(&["running tests", "test result: ok"]);
            }
            FakeCheck::failed(&name)
                .title("1 test failed")
                .summary(&line)
                .log(&[
                    "running tests".to_string(),
                    line.clone(),
                    "test result: FAILED".to_string(),
                ])
                .annotation(&path, 1, &line)
        });
    }
}
