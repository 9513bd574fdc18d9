//! File-level locks: two tasks whose declared paths overlap are never in progress
//! at once.
//!
//! An issue declares the paths it will touch in its body, on a line of its own or as
//! a list under it, in any case:
//!
//! ```text
//! Files: src/auth/**, docs/login.md
//! Paths:
//! - web/login/*
//! - `Cargo.toml`
//! ```
//!
//! or with `area:NAME` labels that the configuration maps to paths
//! ([`LockRules::areas`]). An issue that declares nothing takes no lock and waits
//! for none.
//!
//! Paths become lock *keys* ([`LockRules::keys`], stored on the task as
//! [`crate::Task::locks`]), in one of three forms, so that overlap is a
//! prefix comparison ([`overlaps`]):
//!
//! - `src/auth/`: a directory, ending in `/`. A glob becomes the directory before
//!   its first wildcard (`src/auth/**` and `src/auth/*.rs` both lock `src/auth/`):
//!   a glob may lock more than it matches, never less.
//! - `docs/login.md`: one file (a path with no wildcard and no trailing `/`).
//! - `**`: everything. A glob that starts with a wildcard (`*.md`) locks it, and so
//!   does a path that overlaps a *barrier* ([`LockRules::barriers`]: lockfiles, CI
//!   configuration), which conflicts with every task that declares any path.
//!
//! A claim passes over a pending task whose keys overlap those of an in-progress
//! task whose lease is live ([`lock_holder`]); the lock ends with the task, or with
//! its lease. The shared claim of every store ([`crate::store`]) asks this rule:
//! a store hands it the locks its in-progress tasks hold, and serialises the
//! claims of tasks with lock keys, so two orchestrators sharing a store never run
//! overlapping tasks together.

use serde::{Deserialize, Serialize};

use crate::model::{ReadyIssue, Task, TaskId, TaskState, Timestamp};

/// The key that locks every path.
pub const EVERYTHING: &str = "**";

/// The words that introduce declared paths, lower case, each followed by `:`.
const PHRASES: [&str; 4] = ["files", "file", "paths", "path"];

/// The barrier paths of [`LockRules::default`]: lockfiles and CI configuration,
/// which every change may touch and no two changes should touch at once.
pub const DEFAULT_BARRIERS: [&str; 10] = [
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "Gemfile.lock",
    "go.sum",
    ".github/workflows/**",
    ".gitlab-ci.yml",
    ".circleci/**",
];

/// How issues' declarations become lock keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRules {
    /// `area:NAME` labels and the paths each stands for (`LOCK_AREAS`).
    pub areas: Vec<(String, Vec<String>)>,
    /// Paths that conflict with every other path (`LOCK_BARRIERS`).
    pub barriers: Vec<String>,
}

impl Default for LockRules {
    fn default() -> LockRules {
        LockRules {
            areas: Vec::new(),
            barriers: DEFAULT_BARRIERS.iter().map(|b| b.to_string()).collect(),
        }
    }
}

impl LockRules {
    /// The lock keys of `issue`: its declared paths and its areas' paths, as keys,
    /// sorted and each once; `[EVERYTHING]` when one of them overlaps a barrier.
    ///
    /// ```
    /// use scrum_core::locks::LockRules;
    /// use scrum_core::{ReadyIssue, TaskId, Timestamp};
    /// let issue = ReadyIssue {
    ///     id: TaskId::new("acme/web", 1).unwrap(),
    ///     title: "Login".into(),
    ///     body: "Files: src/auth/**, docs/login.md".into(),
    ///     labels: vec!["area:ui".into()],
    ///     created_at: Timestamp(0),
    /// };
    /// let mut rules = LockRules::default();
    /// rules.areas.push(("ui".into(), vec!["web/*.html".into()]));
    /// assert_eq!(rules.keys(&issue), ["docs/login.md", "src/auth/", "web/"]);
    /// ```
    pub fn keys(&self, issue: &ReadyIssue) -> Vec<String> {
        let mut keys: Vec<String> = declared_paths(&issue.body).iter().map(|p| key(p)).collect();
        for label in &issue.labels {
            let Some(name) = label.strip_prefix("area:") else {
                continue;
            };
            let area = self
                .areas
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            keys.extend(
                area.into_iter()
                    .flat_map(|(_, paths)| paths.iter().map(|p| key(p))),
            );
        }
        keys.sort();
        keys.dedup();
        let barrier_keys: Vec<String> = self.barriers.iter().map(|b| key(b)).collect();
        if overlaps(&keys, &barrier_keys) {
            return vec![EVERYTHING.to_string()];
        }
        keys
    }

    /// Reads `LOCK_AREAS`: `NAME=PATH,PATH;NAME=PATH`, e.g.
    /// `auth=src/auth/**,docs/login.md;ui=web/**`.
    pub fn parse_areas(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
        let mut areas = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, paths)) = part.split_once('=') else {
                return Err(format!("`{part}` is not NAME=PATH,PATH"));
            };
            let name = name.trim();
            let paths: Vec<String> = split_paths(paths);
            if name.is_empty() || paths.is_empty() {
                return Err(format!("`{part}` needs a name and at least one path"));
            }
            areas.push((name.to_string(), paths));
        }
        Ok(areas)
    }

    /// Reads `LOCK_BARRIERS`: paths separated by commas (empty: no barriers).
    pub fn parse_barriers(text: &str) -> Vec<String> {
        split_paths(text)
    }
}

fn split_paths(text: &str) -> Vec<String> {
    // A remark in parentheses after the paths is not a path.
    let text = text.split('(').next().unwrap_or_default();
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|p| p.trim_matches(|c| matches!(c, '`' | '"' | '\'')))
        .map(|p| p.trim_start_matches("./"))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The paths `body` declares after `Files:` (or `File:`, `Paths:`, `Path:`, in any
/// case), on the same line or as a list below it, in order of appearance.
pub fn declared_paths(body: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut in_list = false;
    for line in body.lines() {
        let text = line.trim();
        if in_list {
            if let Some(item) = text.strip_prefix("- ").or_else(|| text.strip_prefix("* ")) {
                paths.extend(split_paths(item));
                continue;
            }
            in_list = false;
        }
        let text = text.trim_start_matches(['-', '*', ' ']).trim_start();
        let Some((head, rest)) = text.split_once(':') else {
            continue;
        };
        let head = head
            .trim_matches(|c| matches!(c, '*' | '_' | ' '))
            .to_ascii_lowercase();
        if !PHRASES.contains(&head.as_str()) {
            continue;
        }
        let rest = rest.trim_start_matches(['*', '_']);
        paths.extend(split_paths(rest));
        in_list = rest.trim().is_empty();
    }
    paths
}

/// The lock key of one declared path (see the module docs).
fn key(path: &str) -> String {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    match path.find(['*', '?', '[', '{']) {
        None => path.to_string(),
        Some(at) => match path[..at].rfind('/') {
            Some(slash) => path[..=slash].to_string(),
            None => EVERYTHING.to_string(),
        },
    }
}

/// Whether two lock keys overlap: one is everything, they are equal, or one is a
/// directory the other lies in. The one definition: no store tests overlap in its
/// own language.
pub fn key_overlaps(a: &str, b: &str) -> bool {
    a == EVERYTHING
        || b == EVERYTHING
        || a == b
        || (a.ends_with('/') && b.starts_with(a))
        || (b.ends_with('/') && a.starts_with(b))
}

/// Whether any key of `a` overlaps any key of `b`.
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| b.iter().any(|y| key_overlaps(x, y)))
}

/// The locks the in-progress tasks among `tasks` hold, as [`lock_holder`] takes
/// them: each one's id, its lease's expiry and its keys.
pub fn held_locks(tasks: &[Task]) -> Vec<(&TaskId, Timestamp, &[String])> {
    tasks
        .iter()
        .filter(|t| t.state() == TaskState::InProgress && !t.locks.is_empty())
        .filter_map(|t| Some((&t.id, t.lease()?.expires_at, t.locks.as_slice())))
        .collect()
}

/// The first of `held` (an in-progress task's id, its lease's expiry and its keys)
/// whose lease is live at `now` and whose keys overlap `keys`: the task a claim of
/// a task with `keys` waits for.
pub fn lock_holder<'a, I, T>(keys: &[String], held: I, now: Timestamp) -> Option<T>
where
    I: IntoIterator<Item = (T, Timestamp, &'a [String])>,
{
    if keys.is_empty() {
        return None;
    }
    held.into_iter()
        .find(|(_, expires_at, locks)| *expires_at > now && overlaps(keys, locks))
        .map(|(id, _, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(body: &str, labels: &[&str]) -> ReadyIssue {
        ReadyIssue {
            id: TaskId::new("acme/web", 1).unwrap(),
            title: "t".into(),
            body: body.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            created_at: Timestamp(0),
        }
    }

    fn keys(body: &str) -> Vec<String> {
        LockRules::default().keys(&issue(body, &[]))
    }

    #[test]
    fn paths_are_read_from_a_line_or_a_list_in_any_case() {
        let body = "Intro\nFILES: src/a.rs, `src/b/**`\n\npaths:\n- docs/x.md\n* ./web/y.html\nNot a path: z";
        assert_eq!(
            declared_paths(body),
            ["src/a.rs", "src/b/**", "docs/x.md", "web/y.html"]
        );
        assert_eq!(declared_paths("**Files:** a.rs b.rs"), ["a.rs", "b.rs"]);
        assert!(declared_paths("Profiles: none\nfile name: x").is_empty());
        assert_eq!(declared_paths("- Files: a.rs (the login)"), ["a.rs"]);
    }

    #[test]
    fn globs_lock_the_directory_before_their_first_wildcard() {
        assert_eq!(keys("Files: src/auth/**"), ["src/auth/"]);
        assert_eq!(keys("Files: src/auth/*.rs"), ["src/auth/"]);
        assert_eq!(keys("Files: src/auth*"), ["src/"]);
        assert_eq!(keys("Files: *.md"), [EVERYTHING]);
        assert_eq!(keys("Files: docs/"), ["docs/"]);
        assert!(keys("no declaration").is_empty());
    }

    #[test]
    fn overlap_is_by_file_or_directory() {
        let o = |a: &str, b: &str| overlaps(&keys(a), &keys(b));
        assert!(o("Files: src/auth/**", "Files: src/auth/login.rs"));
        assert!(o("Files: src/auth/login.rs", "Files: src/**"));
        assert!(o("Files: a.rs", "Files: a.rs"));
        assert!(!o("Files: a.rs", "Files: a.rs.orig"));
        assert!(!o("Files: src/auth/**", "Files: src/authz/x.rs"));
        assert!(!o("Files: src/auth/**", "no paths"), "no paths, no lock");
        assert!(o("Files: *.md", "Files: src/x.rs"));
    }

    #[test]
    fn a_barrier_conflicts_with_every_declared_path() {
        assert_eq!(keys("Files: Cargo.lock, src/a.rs"), [EVERYTHING]);
        assert_eq!(keys("Files: .github/workflows/ci.yml"), [EVERYTHING]);
        assert_eq!(keys("Files: .github/CODEOWNERS"), [".github/CODEOWNERS"]);
        let none = LockRules {
            barriers: Vec::new(),
            ..LockRules::default()
        };
        assert_eq!(none.keys(&issue("Files: Cargo.lock", &[])), ["Cargo.lock"]);
    }

    #[test]
    fn area_labels_stand_for_configured_paths() {
        let rules = LockRules {
            areas: LockRules::parse_areas("auth=src/auth/**, docs/login.md ; ui=web/**").unwrap(),
            ..LockRules::default()
        };
        let got = rules.keys(&issue("", &["area:Auth", "area:unknown", "bug"]));
        assert_eq!(got, ["docs/login.md", "src/auth/"]);
        assert!(LockRules::parse_areas("auth").is_err());
        assert!(LockRules::parse_areas("auth=").is_err());
        assert_eq!(LockRules::parse_areas(" ").unwrap(), vec![]);
    }

    #[test]
    fn only_a_live_lease_holds_a_lock() {
        let mine = keys("Files: src/a.rs");
        let theirs = keys("Files: src/**");
        let held = [("b", Timestamp(10), theirs.as_slice())];
        assert_eq!(lock_holder(&mine, held, Timestamp(5)), Some("b"));
        assert_eq!(lock_holder(&mine, held, Timestamp(10)), None, "lapsed");
        assert_eq!(lock_holder(&[], held, Timestamp(5)), None);
    }
}
