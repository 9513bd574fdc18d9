//! Branches' commits in the fake, and what follows from them: each open pull
//! request's head and base commit, whether it merges, and continuous integration
//! on each new head.
//!
//! Where the fake hosts git ([`super::FakeGitHub::serve_git_from`]) a branch's
//! commit is the bare repository's, a commit to it is a real one
//! ([`super::FakeGitHub::commit_to_branch`]), and mergeability is computed by
//! merging head into base with `git merge-tree --write-tree`. Elsewhere each
//! branch has a made-up commit id and files kept in memory, and mergeability is
//! what a test sets ([`super::FakeGitHub::set_mergeable`]; clean by default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::FakeGitHub;
use super::checks::{At, CiRun, resolve};
use super::server::lock;
use super::state::State;

/// A branch where the fake hosts no git: its made-up commit and its files.
#[derive(Clone, Debug, Default)]
pub(crate) struct Branch {
    pub(crate) sha: String,
    pub(crate) files: BTreeMap<String, String>,
}

/// The bare repository of `repo`, when the fake hosts it.
pub(crate) fn git_dir(st: &State, repo: &str) -> Option<PathBuf> {
    let full = &st.repo(repo)?.full_name;
    let dir = st.git_root.as_ref()?.join(format!("{full}.git"));
    dir.is_dir().then_some(dir)
}

/// Runs git in the bare repository `dir`; its trimmed output on success.
pub(crate) fn git(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&str>,
) -> Option<String> {
    use std::io::Write;
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The made-up first commit of a branch the fake hosts no git for.
fn first_sha(repo: &str, branch: &str) -> String {
    let digest = Sha256::digest(format!("{repo}\0{branch}\00").as_bytes());
    digest[..20].iter().map(|b| format!("{b:02x}")).collect()
}

/// The commit `branch` of `repo` points at now.
pub(crate) fn head_of(st: &State, repo: &str, branch: &str) -> Option<String> {
    if let Some(dir) = git_dir(st, repo) {
        let r = format!("refs/heads/{branch}");
        if let Some(sha) = git(&dir, &["rev-parse", "--verify", "-q", &r], &[], None) {
            return Some(sha);
        }
    }
    let r = st.repo(repo)?;
    Some(match r.commits.get(branch) {
        Some(b) => b.sha.clone(),
        None => first_sha(&r.full_name.to_ascii_lowercase(), branch),
    })
}

/// Writes `content` to `path` on `branch` as one new commit, and returns it: a
/// real commit where the fake hosts git, else a made-up one.
pub(crate) fn commit(
    st: &mut State,
    repo: &str,
    branch: &str,
    path: &str,
    content: &str,
    message: &str,
) -> Option<String> {
    if let Some(dir) = git_dir(st, repo) {
        return git_commit(&dir, branch, path, content, message);
    }
    let id = st.fresh_id();
    let r = st.repo_mut(repo)?;
    r.branches.insert(branch.to_string());
    let b = r.commits.entry(branch.to_string()).or_default();
    b.files.insert(path.to_string(), content.to_string());
    let digest = Sha256::digest(format!("{}\0{branch}\0{id}", r.full_name).as_bytes());
    b.sha = digest[..20].iter().map(|x| format!("{x:02x}")).collect();
    Some(b.sha.clone())
}

/// A commit on `branch` of the bare repository `dir` that writes `path`, made with
/// git's plumbing (no work tree), and the branch moved to it.
fn git_commit(
    dir: &Path,
    branch: &str,
    path: &str,
    content: &str,
    message: &str,
) -> Option<String> {
    let index = dir.join(format!("fake-index-{}", std::process::id()));
    let index_env = index.to_string_lossy().to_string();
    let env = [
        ("GIT_INDEX_FILE", index_env.as_str()),
        ("GIT_AUTHOR_NAME", "octo-fake"),
        ("GIT_AUTHOR_EMAIL", "octo-fake@example.invalid"),
        ("GIT_COMMITTER_NAME", "octo-fake"),
        ("GIT_COMMITTER_EMAIL", "octo-fake@example.invalid"),
    ];
    let reference = format!("refs/heads/{branch}");
    let parent = git(dir, &["rev-parse", "--verify", "-q", &reference], &[], None);
    let _ = std::fs::remove_file(&index);
    let made = (|| {
        let blob = git(dir, &["hash-object", "-w", "--stdin"], &[], Some(content))?;
        if let Some(p) = &parent {
            git(dir, &["read-tree", p], &env, None)?;
        }
        let info = format!("100644,{blob},{path}");
        git(
            dir,
            &["update-index", "--add", "--cacheinfo", &info],
            &env,
            None,
        )?;
        let tree = git(dir, &["write-tree"], &env, None)?;
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        if let Some(p) = &parent {
            args.extend(["-p", p.as_str()]);
        }
        let sha = git(dir, &args, &env, None)?;
        git(dir, &["update-ref", &reference, &sha], &[], None)?;
        Some(sha)
    })();
    let _ = std::fs::remove_file(&index);
    made
}

/// Whether `head` merges into `base` in the bare repository `dir` without conflict.
fn merges(dir: &Path, base: &str, head: &str) -> Option<bool> {
    // A branch the repository does not have (a pull request a test made up) has a
    // made-up commit, which merge-tree would report as a conflict: unknown instead.
    let known = |sha: &str| {
        Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(["cat-file", "-e", &format!("{sha}^{{commit}}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !known(base) || !known(head) {
        return None;
    }
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["merge-tree", "--write-tree", "--no-messages", base, head])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    match out.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

/// Brings each open pull request of `repo` (or only pull request `only`) up to date with its branches: its head
/// and base commits, whether it merges (where git is hosted and either moved),
/// and continuous integration on a head it has not run on; queues the webhooks
/// that follow (`pull_request` synchronize, `check_run`, `check_suite`).
pub(crate) fn refresh(st: &mut State, repo: &str, only: Option<u64>) {
    let Some(r) = st.repo(repo) else {
        return;
    };
    let pulls: Vec<(u64, String, String)> = r
        .issues
        .values()
        .filter_map(|i| i.pull.as_ref())
        .filter(|p| p.open && only.is_none_or(|n| n == p.number))
        .map(|p| (p.number, p.head.clone(), p.base.clone()))
        .collect();
    let git = git_dir(st, repo);
    for (number, head, base) in pulls {
        let (Some(head_sha), Some(base_sha)) = (head_of(st, repo, &head), head_of(st, repo, &base))
        else {
            continue;
        };
        let Some(p) = pull_mut(st, repo, number) else {
            continue;
        };
        let moved = p.head_sha != head_sha || p.base_sha != base_sha;
        let pushed = !p.head_sha.is_empty() && p.head_sha != head_sha;
        p.head_sha = head_sha.clone();
        p.base_sha = base_sha.clone();
        let fresh = !p.ci_ran.contains(&head_sha);
        if fresh {
            p.ci_ran.push(head_sha.clone());
        }
        let round = p.ci_ran.len();
        if moved {
            if let Some(dir) = &git {
                let merged = merges(dir, &base_sha, &head_sha);
                if let Some(p) = pull_mut(st, repo, number) {
                    p.mergeable = merged;
                }
            } else if let Some(p) = pull_mut(st, repo, number) {
                p.mergeable.get_or_insert(true);
            }
        }
        if pushed {
            super::deliver::pull_synchronized(st, repo, number);
        }
        if fresh {
            let files = st
                .repo(repo)
                .and_then(|r| r.commits.get(&head))
                .map(|b| b.files.clone())
                .unwrap_or_default();
            let run = CiRun {
                repo: repo.to_string(),
                pull: number,
                branch: head,
                sha: head_sha,
                round,
                git: git.clone(),
                files,
            };
            super::checks::run_ci(st, run);
        }
    }
}

fn pull_mut<'a>(
    st: &'a mut State,
    repo: &str,
    number: u64,
) -> Option<&'a mut super::state::FakePull> {
    st.repo_mut(repo)?.issues.get_mut(&number)?.pull.as_mut()
}

impl FakeGitHub {
    /// Sets whether pull request `number` of `repo` merges cleanly (`None`: not
    /// computed yet). Where the fake hosts git it is computed again when a branch
    /// moves.
    pub fn set_mergeable(&self, repo: &str, number: u64, mergeable: Option<bool>) {
        let mut st = lock(&self.state);
        refresh(&mut st, repo, Some(number));
        if let Some(p) = st
            .repo_mut(repo)
            .and_then(|r| r.issues.get_mut(&number))
            .and_then(|i| i.pull.as_mut())
        {
            p.mergeable = mergeable;
        }
    }

    /// Writes `content` to `path` on `branch` of `repo` as one new commit (a real
    /// one where the fake hosts git: a push to a pull request's branch, or to its
    /// base to make it conflict), brings the pull requests up to date (CI runs on
    /// a new head) and returns the commit.
    ///
    /// # Panics
    /// When the repository is unknown or git fails.
    pub fn commit_to_branch(&self, repo: &str, branch: &str, path: &str, content: &str) -> String {
        let sha = {
            let mut st = lock(&self.state);
            let message = format!("Update {path}");
            let sha = commit(&mut st, repo, branch, path, content, &message)
                .expect("a known repository, and git able to commit");
            refresh(&mut st, repo, None);
            sha
        };
        self.flush_deliveries();
        sha
    }

    /// Pull request `number`'s head commit as the fake sees it now.
    pub fn head_sha(&self, repo: &str, number: u64) -> Option<String> {
        let sha = {
            let mut st = lock(&self.state);
            resolve(&mut st, repo, &At::Pull(number))
        };
        self.flush_deliveries();
        sha
    }
}
