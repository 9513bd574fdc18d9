//! Issue dependencies: which issues must be closed before a task is handed out.
//!
//! An issue names its blockers in its body, in any case, several per line or as a
//! list under the phrase:
//!
//! ```text
//! Depends on #12 and #14.
//! Blocked by acme/api#3, https://github.com/acme/web/issues/9
//! Requires:
//! - #20
//! - acme/docs#4 (the login page)
//! ```
//!
//! [`parse_blockers`] reads them (pure); the tracker may record more itself
//! ([`crate::IssueSource::blocked_by`], GitHub's issue dependencies). A task whose
//! blockers are not all closed is *blocked* ([`Blocked`], [`crate::state::Event::Block`]):
//! it stays Pending and is not handed out. A completed task whose issue is still
//! open still blocks: closed is what counts (its pull request merged). A cycle
//! ([`find_cycle`]) or a blocker that cannot be read is said once on the issue.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{TaskId, Timestamp};

/// Why a pending task is not handed out: blockers still open, or a problem with its
/// dependencies that a person must look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// The blockers that are not closed, in the order the issue names them.
    #[serde(default)]
    pub by: Vec<TaskId>,
    /// A cycle, or a blocker that cannot be read: said once on the issue.
    #[serde(default)]
    pub problem: Option<String>,
    /// When the task was first found blocked.
    pub since: Timestamp,
}

impl Blocked {
    /// Whether `other` says the same (the same blockers and problem), whenever found.
    pub fn same_as(&self, other: &Blocked) -> bool {
        self.by == other.by && self.problem == other.problem
    }

    /// One line for people: `waiting for owner/repo#1, owner/repo#2`, then the problem.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.by.is_empty() {
            let ids: Vec<String> = self.by.iter().map(ToString::to_string).collect();
            parts.push(format!("waiting for {} to be closed", ids.join(", ")));
        }
        if let Some(p) = &self.problem {
            parts.push(p.clone());
        }
        parts.join("; ")
    }
}

/// The phrases that introduce blockers, lower case.
const PHRASES: [&str; 5] = [
    "depends on",
    "depend on",
    "blocked by",
    "requires",
    "require",
];

/// The blockers `body` names, for an issue of `repo` (`#N` means `repo#N`), each
/// once, in order of appearance; the issue itself (`own`) is left out.
///
/// ```
/// use scrum_core::deps::parse_blockers;
/// let own = "acme/web#9".parse().unwrap();
/// let got = parse_blockers("Depends on #1 and acme/api#2.\nBLOCKED BY #3, #1", &own);
/// let names: Vec<String> = got.iter().map(|t| t.to_string()).collect();
/// assert_eq!(names, ["acme/web#1", "acme/api#2", "acme/web#3"]);
/// ```
pub fn parse_blockers(body: &str, own: &TaskId) -> Vec<TaskId> {
    let mut out: Vec<TaskId> = Vec::new();
    let mut push = |id: TaskId| {
        if id != *own && !out.contains(&id) {
            out.push(id);
        }
    };
    let lines: Vec<&str> = body.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lower = line.to_ascii_lowercase();
        let mut list_follows = false;
        for start in phrase_ends(&lower) {
            let rest = line[start..].trim_start();
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            let refs = ref_run(rest, own.repo());
            if refs.is_empty() && rest.trim().is_empty() {
                list_follows = true;
            }
            refs.into_iter().for_each(&mut push);
        }
        i += 1;
        if list_follows {
            while i < lines.len() {
                let Some(item) = list_item(lines[i]) else {
                    break;
                };
                ref_run(item, own.repo()).into_iter().for_each(&mut push);
                i += 1;
            }
        }
    }
    out
}

/// Where each blocker phrase of `lower` ends, for phrases that start a word.
fn phrase_ends(lower: &str) -> Vec<usize> {
    let bytes = lower.as_bytes();
    let mut ends = Vec::new();
    let mut covered = 0;
    for pos in 0..bytes.len() {
        if pos < covered || !lower.is_char_boundary(pos) {
            continue;
        }
        if pos > 0 && bytes[pos - 1].is_ascii_alphanumeric() {
            continue;
        }
        if let Some(p) = PHRASES.iter().find(|p| lower[pos..].starts_with(**p)) {
            let end = pos + p.len();
            // "requires" and "require" both match at one place: take the longer.
            if bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric()) {
                ends.push(end);
                covered = end;
            }
        }
    }
    ends
}

/// The text of a list item (`- x`, `* x`, `+ x`, `1. x`, `- [ ] x`), if `line` is one.
fn list_item(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = if let Some(r) = t.strip_prefix(['-', '*', '+']) {
        r
    } else {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0).then_some(())?;
        t[digits..].strip_prefix(['.', ')'])?
    };
    let rest = rest.trim_start();
    let rest = ["[ ]", "[x]", "[X]"]
        .iter()
        .find_map(|b| rest.strip_prefix(b))
        .unwrap_or(rest);
    Some(rest.trim_start())
}

/// The references at the start of `text`, separated by commas, `and`, `&` or
/// spaces; stops at the first word that is none of those.
fn ref_run(text: &str, repo: &str) -> Vec<TaskId> {
    let mut out = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == ',') {
        let word = word.trim_end_matches(['.', ';', ')', ':']);
        let word = word.trim_start_matches('(');
        if word.is_empty() || word == "&" || word.eq_ignore_ascii_case("and") {
            continue;
        }
        match parse_ref(word, repo) {
            Some(id) => out.push(id),
            None => break,
        }
    }
    out
}

/// One reference: `#N`, `owner/repo#N`, or a GitHub issue or pull request URL.
fn parse_ref(word: &str, repo: &str) -> Option<TaskId> {
    if let Some(n) = word.strip_prefix('#') {
        return TaskId::new(repo, n.parse().ok()?).ok();
    }
    if let Some((r, n)) = word.split_once('#') {
        return TaskId::new(r, n.parse().ok()?).ok();
    }
    let path = word
        .strip_prefix("https://")
        .or_else(|| word.strip_prefix("http://"))?;
    let mut seg = path.split('/').skip(1);
    let (owner, name, kind, n) = (seg.next()?, seg.next()?, seg.next()?, seg.next()?);
    if kind != "issues" && kind != "pull" {
        return None;
    }
    TaskId::new(&format!("{owner}/{name}"), n.parse().ok()?).ok()
}

/// A cycle through `start` in the graph whose edges `edges` gives (a task to the
/// blockers it names): the path from `start` back to it, `start` first and last.
/// The search follows edges in their order, so the same graph gives the same path.
///
/// ```
/// use std::collections::BTreeMap;
/// use scrum_core::{deps::find_cycle, TaskId};
/// let id = |s: &str| s.parse::<TaskId>().unwrap();
/// let edges = BTreeMap::from([(id("a/b#1"), vec![id("a/b#2")]), (id("a/b#2"), vec![id("a/b#1")])]);
/// let cycle = find_cycle(&id("a/b#1"), &edges).unwrap();
/// assert_eq!(cycle, [id("a/b#1"), id("a/b#2"), id("a/b#1")]);
/// ```
pub fn find_cycle(start: &TaskId, edges: &BTreeMap<TaskId, Vec<TaskId>>) -> Option<Vec<TaskId>> {
    fn walk(
        at: &TaskId,
        start: &TaskId,
        edges: &BTreeMap<TaskId, Vec<TaskId>>,
        path: &mut Vec<TaskId>,
        seen: &mut HashSet<TaskId>,
    ) -> bool {
        for next in edges.get(at).map(Vec::as_slice).unwrap_or_default() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.clone()];
    let mut seen = HashSet::from([start.clone()]);
    walk(start, start, edges, &mut path, &mut seen).then_some(path)
}

/// The problem text of a cycle: `dependency cycle: a#1 → a#2 → a#1`.
pub fn cycle_problem(cycle: &[TaskId]) -> String {
    let ids: Vec<String> = cycle.iter().map(ToString::to_string).collect();
    format!("dependency cycle: {}", ids.join(" → "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TaskId {
        s.parse().unwrap()
    }

    fn names(body: &str) -> Vec<String> {
        parse_blockers(body, &id("acme/web#100"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_phrase_in_any_case_names_blockers() {
        assert_eq!(names("Depends on #1"), ["acme/web#1"]);
        assert_eq!(names("depend on #2"), ["acme/web#2"]);
        assert_eq!(names("BLOCKED BY #3."), ["acme/web#3"]);
        assert_eq!(names("Requires acme/api#4"), ["acme/api#4"]);
        assert_eq!(names("This require: #5"), ["acme/web#5"]);
    }

    #[test]
    fn several_per_line_and_several_lines() {
        assert_eq!(
            names("Depends on #1, #2 and acme/api#3 & #4; then more text #9\nBlocked by #5"),
            [
                "acme/web#1",
                "acme/web#2",
                "acme/api#3",
                "acme/web#4",
                "acme/web#5"
            ]
        );
        assert_eq!(
            names("Blocked by #1. Requires #2"),
            ["acme/web#1", "acme/web#2"]
        );
    }

    #[test]
    fn a_list_under_the_phrase() {
        let body = "Some text.\n\nDepends on:\n- #1\n* acme/api#2 (the API)\n1. [ ] #3\n- [x] https://github.com/acme/docs/issues/4\n\nOther #7";
        assert_eq!(
            names(body),
            ["acme/web#1", "acme/api#2", "acme/web#3", "acme/docs#4"]
        );
    }

    #[test]
    fn urls_and_pull_requests_count() {
        assert_eq!(
            names("Requires https://github.com/acme/api/pull/8"),
            ["acme/api#8"]
        );
    }

    #[test]
    fn mentions_without_a_phrase_and_lookalike_words_do_not() {
        assert!(names("Fixes #1; see #2. Independent on #3").is_empty());
        assert!(names("undepends on #3, requirement #4, unblocked by #5").is_empty());
        assert!(names("Depends on the login page (#6)").is_empty());
        assert!(names("Depends on #0 and #x").is_empty());
    }

    #[test]
    fn duplicates_and_the_issue_itself_are_left_out() {
        assert_eq!(
            names("Depends on #1, #1, #100 and acme/web#1"),
            ["acme/web#1"]
        );
    }

    #[test]
    fn cycles_are_found_through_any_length() {
        let edges = BTreeMap::from([
            (id("a/b#1"), vec![id("a/b#4"), id("a/b#2")]),
            (id("a/b#2"), vec![id("c/d#3")]),
            (id("c/d#3"), vec![id("a/b#1")]),
            (id("a/b#4"), vec![]),
        ]);
        assert_eq!(
            find_cycle(&id("a/b#1"), &edges).unwrap(),
            [id("a/b#1"), id("a/b#2"), id("c/d#3"), id("a/b#1")]
        );
        assert_eq!(
            cycle_problem(&find_cycle(&id("c/d#3"), &edges).unwrap()),
            "dependency cycle: c/d#3 → a/b#1 → a/b#2 → c/d#3"
        );
        assert_eq!(find_cycle(&id("a/b#4"), &edges), None);
    }

    #[test]
    fn a_cycle_elsewhere_is_not_this_tasks() {
        let edges = BTreeMap::from([
            (id("a/b#1"), vec![id("a/b#2")]),
            (id("a/b#2"), vec![id("a/b#3")]),
            (id("a/b#3"), vec![id("a/b#2")]),
        ]);
        assert_eq!(find_cycle(&id("a/b#1"), &edges), None);
        assert!(find_cycle(&id("a/b#2"), &edges).is_some());
    }

    #[test]
    fn blocked_describes_itself() {
        let b = Blocked {
            by: vec![id("a/b#1"), id("c/d#2")],
            problem: Some("could not read c/d#9 (not_found)".into()),
            since: Timestamp(0),
        };
        assert_eq!(
            b.describe(),
            "waiting for a/b#1, c/d#2 to be closed; could not read c/d#9 (not_found)"
        );
    }
}
