//! The fleet's git remotes: a bare repository per GitHub repository, which the fake
//! GitHub serves and the workers push to.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::Fleet;

impl Fleet {
    /// The bare remote of `repo`: GitHub's `owner/name`, or a GitLab project as
    /// `gitlab:group/sub/project`.
    fn bare(&self, repo: &str) -> std::path::PathBuf {
        match repo.strip_prefix("gitlab:") {
            Some(path) => self.root.join("gitlab-remotes").join(format!("{path}.git")),
            None => self.root.join("remotes").join(format!("{repo}.git")),
        }
    }

    /// The branches of `repo`'s bare remote (`owner/name`, `gitlab:group/project`).
    pub fn remote_branches(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let out = Command::new("git")
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .current_dir(self.bare(repo))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// A file's content on a branch of `repo`'s remote.
    pub fn remote_file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["show", &format!("{branch}:{path}")])
            .current_dir(self.bare(repo))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A bare repository `{remotes}/{repo}.git` whose `main` has one commit.
pub(super) fn make_remote(remotes: &Path, repo: &str, scratch: &Path) -> anyhow::Result<()> {
    let bare = remotes.join(format!("{repo}.git"));
    std::fs::create_dir_all(&bare)?;
    git(
        &bare,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    )?;
    let seed = scratch.join(repo);
    std::fs::create_dir_all(&seed)?;
    git(&seed, &["init", "--quiet", "--initial-branch=main"])?;
    std::fs::write(seed.join("README.md"), format!("# {repo}\n"))?;
    git(&seed, &["add", "README.md"])?;
    git(
        &seed,
        &[
            "-c",
            "user.name=demo",
            "-c",
            "user.email=demo@example.invalid",
            "commit",
            "--quiet",
            "-m",
            "Initial commit",
        ],
    )?;
    git(
        &seed,
        &["push", "--quiet", &bare.display().to_string(), "main"],
    )?;
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
