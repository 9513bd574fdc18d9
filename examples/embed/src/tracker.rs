//! A toy issue tracker: a JSON file of issues. It is the custom [`IssueSource`] of
//! this example: the orchestrator lists its ready issues and writes labels and
//! comments back into the file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use scrum_core::source::{Commented, IssueSource, IssueState, Labels};
use scrum_core::{Error, ReadyIssue, Result, TaskId, Timestamp};
use serde::{Deserialize, Serialize};

/// Every task id needs two path segments and a number: this tracker files its
/// issues under `local/todo`, so issue 3 is task `local/todo#3`.
pub(crate) const PROJECT: &str = "local/todo";

/// One issue of the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Issue {
    /// Its number, unique in the file.
    pub(crate) number: u64,
    /// Its title.
    pub(crate) title: String,
    /// Its body.
    #[serde(default)]
    pub(crate) body: String,
    /// Its labels.
    #[serde(default)]
    pub(crate) labels: Vec<String>,
    /// Whether it is open.
    pub(crate) open: bool,
    /// Comments, each with the hidden marker the orchestrator gave it.
    #[serde(default)]
    pub(crate) comments: Vec<(String, String)>,
}

/// The issues of one JSON file, written back after every change.
#[derive(Debug)]
pub(crate) struct FileTracker {
    path: PathBuf,
    labels: Labels,
    issues: Mutex<Vec<Issue>>,
}

impl FileTracker {
    /// The tracker of the file at `path`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<FileTracker> {
        let text = std::fs::read_to_string(path)?;
        Ok(FileTracker {
            path: path.to_path_buf(),
            labels: Labels::default(),
            issues: Mutex::new(serde_json::from_str(&text)?),
        })
    }

    /// The tracker of the file at `path`, or of a copy of the sample issues in the
    /// temporary directory when there is no path (the file is written to).
    pub(crate) fn open_or_sample(path: Option<String>) -> anyhow::Result<FileTracker> {
        let path = match path {
            Some(p) => PathBuf::from(p),
            None => {
                let copy = std::env::temp_dir().join("scrum-embed-issues.json");
                std::fs::write(&copy, include_str!("../issues.json"))?;
                copy
            }
        };
        FileTracker::open(&path)
    }

    /// Where the issues are kept.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether every outcome is written: no open issue is ready or in progress, and
    /// every completed or failed one has its comment.
    pub(crate) fn settled(&self) -> bool {
        let l = &self.labels;
        self.issues().iter().all(|i| {
            let has = |name: &str| i.labels.iter().any(|x| x.eq_ignore_ascii_case(name));
            let waiting = i.open && (l.is_ready(&i.labels) || has(&l.in_progress));
            let ended = has(&l.completed) || has(&l.failed);
            !waiting && (!ended || !i.comments.is_empty())
        })
    }

    /// The issues as they are now.
    pub(crate) fn issues(&self) -> Vec<Issue> {
        self.issues.lock().expect("not poisoned").clone()
    }

    /// One line per issue: its labels and how many comments it has.
    pub(crate) fn summary(&self) -> String {
        self.issues()
            .iter()
            .map(|i| {
                let (n, title, labels) = (i.number, &i.title, i.labels.join(", "));
                format!(
                    "#{n} {title:?}: [{labels}], {} comment(s)\n",
                    i.comments.len()
                )
            })
            .collect()
    }

    /// Applies `change` to issue `id` and writes the file.
    fn change<T>(&self, id: &TaskId, change: impl FnOnce(&mut Issue) -> T) -> Result<T> {
        let mut issues = self.issues.lock().expect("not poisoned");
        let issue = issues
            .iter_mut()
            .find(|i| id.repo() == PROJECT && i.number == id.number())
            .ok_or_else(|| Error::not_found(format!("no issue {id}")))?;
        let answer = change(issue);
        let text = serde_json::to_string_pretty(&*issues).expect("issues encode");
        std::fs::write(&self.path, text)
            .map_err(|e| Error::unavailable(format!("{}: {e}", self.path.display())))?;
        Ok(answer)
    }

    fn task_id(number: u64) -> Result<TaskId> {
        TaskId::new(PROJECT, number)
    }
}

#[async_trait]
impl IssueSource for FileTracker {
    async fn list_ready(&self) -> Result<Vec<ReadyIssue>> {
        self.issues()
            .into_iter()
            .filter(|i| i.open && self.labels.is_ready(&i.labels))
            .map(|i| {
                Ok(ReadyIssue {
                    id: FileTracker::task_id(i.number)?,
                    title: i.title,
                    body: i.body,
                    labels: i.labels,
                    // The file keeps no dates: lower numbers are older.
                    created_at: Timestamp(i.number as i64),
                })
            })
            .collect()
    }

    async fn issue_state(&self, id: &TaskId) -> Result<IssueState> {
        self.change(id, |i| IssueState {
            open: i.open,
            labels: i.labels.clone(),
            digest: Some(scrum_core::model::text_digest(&i.title, &i.body)),
        })
    }

    async fn add_labels(&self, id: &TaskId, labels: &[String]) -> Result<()> {
        self.change(id, |i| {
            for l in labels {
                if !i.labels.iter().any(|have| have.eq_ignore_ascii_case(l)) {
                    i.labels.push(l.clone());
                }
            }
        })
    }

    async fn remove_label(&self, id: &TaskId, label: &str) -> Result<()> {
        self.change(id, |i| i.labels.retain(|l| !l.eq_ignore_ascii_case(label)))
    }

    async fn comment(&self, id: &TaskId, marker: &str, body: &str) -> Result<Commented> {
        self.change(id, |i| {
            if i.comments.iter().any(|(m, _)| m == marker) {
                return Commented::AlreadyPresent;
            }
            i.comments.push((marker.to_string(), body.to_string()));
            Commented::Posted
        })
    }
}
