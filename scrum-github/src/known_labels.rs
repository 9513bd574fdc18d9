//! [`KnownLabels`]: the labels known to exist in each repository, so a missing label
//! is created once and a label seen on an issue is never looked up.

use std::collections::HashSet;
use std::sync::Mutex;

use scrum_core::RepoName;

use crate::sync::lock;

/// `(repo, lower-case label)` pairs known to exist (GitHub matches label names
/// whatever their case).
#[derive(Default)]
pub(crate) struct KnownLabels(Mutex<HashSet<(RepoName, String)>>);

impl KnownLabels {
    /// Whether `label` is known to exist in `repo`.
    pub(crate) fn contains(&self, repo: &RepoName, label: &str) -> bool {
        lock(&self.0).contains(&(repo.clone(), label.to_ascii_lowercase()))
    }

    /// Records that `labels` exist in `repo`.
    pub(crate) fn remember<'a>(&self, repo: &RepoName, labels: impl IntoIterator<Item = &'a str>) {
        let mut known = lock(&self.0);
        for l in labels {
            known.insert((repo.clone(), l.to_ascii_lowercase()));
        }
    }
}
