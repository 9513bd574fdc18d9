//! Follow-ups over real git: where the fake hosts the repository, a pull request's
//! head is its branch's commit, it conflicts when the base branch changed the same
//! lines (`git merge-tree`), and merges again once the branch merged the base in;
//! a CI script fails a check on one head and passes it on the next.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use scrum_core::follow_up::{ChecksState, Mergeable, PullStatus};
use scrum_core::{IssueSource, RepoName};
use scrum_github::GitHubClient;
use scrum_github::fake::{FakeCheck, FakeGitHub, NewIssue};

const REPO: &str = "acme/widgets";

/// A directory of its own under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "scrum-github-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fake hosting `acme/widgets` as a bare repository whose `main` has
/// `src/lib.rs`, a clone of it, and a pull request from `feature`, which
/// changed the file's second line: (fake, client, scratch, clone, pull request).
async fn hosted() -> (FakeGitHub, GitHubClient, Scratch, PathBuf, u64) {
    let scratch = Scratch::new("git");
    let bare = scratch.0.join("remotes/acme/widgets.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "--bare", "-q"]);
    let work = scratch.0.join("work");
    git(&scratch.0, &["clone", "-q", bare.to_str().unwrap(), "work"]);
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn c() {}\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "start"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        work.join("src/lib.rs"),
        "fn a() {}\nfn b() { feature() }\nfn c() {}\n",
    )
    .unwrap();
    git(&work, &["commit", "-q", "-am", "feature"]);
    git(&work, &["push", "-q", "origin", "feature"]);

    let (github, client) = setup(&[REPO]).await;
    github.serve_git_from(&scratch.0.join("remotes"));
    let pr = github.add_issue(REPO, NewIssue::new("Feature").pull_request("feature"));
    (github, client, scratch, work, pr.number())
}

async fn status(client: &GitHubClient, pr: u64) -> PullStatus {
    let repo: RepoName = REPO.parse().unwrap();
    client.pull_status(&repo, pr, &[]).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_base_branch_that_changed_the_same_lines_conflicts_until_merged_in() {
    let (github, client, _scratch, work, pr) = hosted().await;
    let s = status(&client, pr).await;
    assert_eq!(s.mergeable, Mergeable::Clean);
    assert_eq!(
        s.head,
        git(&work, &["rev-parse", "HEAD"]),
        "the branch's commit"
    );

    // The base branch changes the same line.
    github.commit_to_branch(
        REPO,
        "main",
        "src/lib.rs",
        "fn a() {}\nfn b() { base() }\nfn c() {}\n",
    );
    assert_eq!(status(&client, pr).await.mergeable, Mergeable::Conflict);

    // The worker merges the base in, resolves and pushes.
    git(&work, &["fetch", "-q", "origin"]);
    let merged = Command::new("git")
        .current_dir(&work)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(["merge", "-q", "origin/main"])
        .output()
        .unwrap();
    assert!(!merged.status.success(), "the merge conflicts");
    std::fs::write(
        work.join("src/lib.rs"),
        "fn a() {}\nfn b() { base(); feature() }\nfn c() {}\n",
    )
    .unwrap();
    git(&work, &["commit", "-q", "-am", "merge main"]);
    git(&work, &["push", "-q", "origin", "feature"]);
    let s = status(&client, pr).await;
    assert_eq!(s.mergeable, Mergeable::Clean);
    assert_eq!(s.head, git(&work, &["rev-parse", "HEAD"]));
}

#[tokio::test]
async fn a_ci_script_fails_the_first_head_and_passes_the_fix() {
    let (github, client, _scratch, work, pr) = hosted().await;
    github.ci_fails_while(
        REPO,
        "test",
        "src/lib.rs",
        "feature()",
        "test widgets::b ... FAILED: feature() panicked",
    );
    let s = status(&client, pr).await;
    assert_eq!(s.checks.state, ChecksState::Failed, "{:?}", s.checks);
    let f = &s.checks.failed[0];
    assert!(
        f.log_tail.contains("test widgets::b ... FAILED"),
        "{}",
        f.log_tail
    );
    assert_eq!(
        f.annotations,
        ["src/lib.rs:1: test widgets::b ... FAILED: feature() panicked"]
    );

    // The agent pushes a fix: CI runs on the new head, and passes.
    std::fs::write(
        work.join("src/lib.rs"),
        "fn a() {}\nfn b() { fixed() }\nfn c() {}\n",
    )
    .unwrap();
    git(&work, &["commit", "-q", "-am", "fix"]);
    git(&work, &["push", "-q", "origin", "feature"]);
    let s = status(&client, pr).await;
    assert_eq!(s.checks.state, ChecksState::Passed, "{:?}", s.checks);
}

#[tokio::test]
async fn a_ci_closure_decides_each_round() {
    // Without hosted git: commits are made up, files kept in memory.
    let (github, client) = setup(&[REPO]).await;
    github.set_ci(REPO, |run| {
        if run.round == 1 {
            FakeCheck::failed("build").log(&["error[E0425]: cannot find `x`"])
        } else {
            FakeCheck::passed("build")
        }
    });
    let pr = github
        .add_issue(REPO, NewIssue::new("x").pull_request("feature"))
        .number();
    let s = status(&client, pr).await;
    assert_eq!(s.checks.state, ChecksState::Failed);
    assert!(s.checks.failed[0].log_tail.contains("E0425"));
    let before = s.head;
    let after = github.commit_to_branch(REPO, "feature", "src/x.rs", "let x = 1;");
    let s = status(&client, pr).await;
    assert_eq!(s.head, after);
    assert_ne!(s.head, before);
    assert_eq!(s.checks.state, ChecksState::Passed);
}
