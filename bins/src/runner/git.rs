//! Git for the worker: a cached mirror per repository, an isolated clone per task on
//! a fresh `ai-feature/issue-N` branch, and a push that carries the credentials in
//! the environment (never in the remote URL, on the command line or on disk).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use scrum_core::{Error, ErrorKind, RepoName, Result};
use tokio::process::Command;

use super::merge::Merge;
use super::secret::Secret;

/// How long one git command may take before it is killed.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where repositories are cloned from and how pushes authenticate: one forge's
/// (the worker's forge seam, [`super::forge`], gives each task its own).
#[derive(Clone, Debug)]
pub struct GitRemote {
    /// `https://github.com` by default; repositories are `{base}/{path}.git`, the
    /// path as the forge names it (`owner/name`, `group/sub/project`).
    pub base_url: String,
    /// The token pushes authenticate with (HTTP basic, as [`GitRemote::user`]), if any.
    pub token: Option<Secret>,
    /// The HTTP basic user the token goes with: `x-access-token` on GitHub,
    /// `oauth2` on GitLab.
    pub user: &'static str,
    /// The commit author for commits the runner makes itself.
    pub author: (String, String),
}

/// GitHub's HTTP basic user for a token.
pub const GITHUB_USER: &str = "x-access-token";

impl GitRemote {
    fn url(&self, repo: &RepoName) -> String {
        format!(
            "{}/{}.git",
            self.base_url.trim_end_matches('/'),
            repo.path()
        )
    }

    /// Runs `git args` in `dir`, with the credentials and author in the environment.
    async fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", &self.author.0)
            .env("GIT_AUTHOR_EMAIL", &self.author.1)
            .env("GIT_COMMITTER_NAME", &self.author.0)
            .env("GIT_COMMITTER_EMAIL", &self.author.1);
        if let Some(token) = &self.token {
            // Config through the environment: not in argv (visible in `ps`), not in
            // .git/config (on disk), not in the remote URL (in logs and errors).
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!(
                        "Authorization: Basic {}",
                        base64(&format!("{}:{}", self.user, token.expose()))
                    ),
                );
        }
        let run = cmd.output();
        let out = tokio::time::timeout(GIT_TIMEOUT, run)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, format!("git {} timed out", args[0])))?
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "could not run git; is it installed?")
                    .with_source(e)
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(Error::unavailable(format!(
                "git {} failed: {}",
                args[0],
                stderr.trim().lines().last().unwrap_or("no output")
            )))
        }
    }
}

/// A task's isolated clone.
#[derive(Debug)]
pub struct Workspace {
    /// The clone's directory.
    pub dir: PathBuf,
    /// The repository's default branch.
    pub base_branch: String,
    /// The commit the branch started from.
    pub base_commit: String,
    /// The commit this attempt started from: `base_commit`, or on a follow-up the
    /// branch's pushed head. Only commits after it are this attempt's work.
    pub start_commit: String,
    /// The task's branch.
    pub branch: String,
}

impl GitRemote {
    /// Brings the cached mirror of `repo` under `cache` up to date (cloning it the
    /// first time), then makes a fresh clone in `dir` with `branch` started from the
    /// default branch. A retry gets a fresh clone too, so whatever an earlier attempt
    /// pushed on `branch` is replaced, not built upon; but with `keep_branch` (a
    /// follow-up of the pull request's branch) the branch starts from what was
    /// pushed on it, when it exists.
    pub async fn prepare(
        &self,
        cache: &Path,
        repo: &RepoName,
        dir: &Path,
        branch: &str,
        keep_branch: bool,
    ) -> Result<Workspace> {
        // Under the forge's name: GitHub's `acme/widgets` and GitLab's
        // `gitlab:acme/widgets` are two repositories.
        let mirror = cache
            .join(repo.forge())
            .join(repo.owner())
            .join(format!("{}.git", repo.name()));
        adopt_unprefixed_mirror(cache, repo, &mirror);
        let url = self.url(repo);
        if mirror.join("HEAD").exists() {
            self.git(&mirror, &["remote", "update", "--prune"]).await?;
        } else {
            std::fs::create_dir_all(mirror.parent().unwrap_or(cache))
                .map_err(io("create the mirror directory"))?;
            let _ = std::fs::remove_dir_all(&mirror);
            self.git(
                cache,
                &["clone", "--mirror", "--quiet", &url, &path_str(&mirror)?],
            )
            .await?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io("clear the old workspace"))?;
        }
        std::fs::create_dir_all(dir.parent().unwrap_or(dir))
            .map_err(io("create the workspace directory"))?;
        let parent = dir.parent().unwrap_or(dir);
        self.git(
            parent,
            &["clone", "--quiet", &path_str(&mirror)?, &path_str(dir)?],
        )
        .await?;
        let head = self.git(&mirror, &["symbolic-ref", "HEAD"]).await?;
        let base_branch = head.trim_start_matches("refs/heads/").to_string();
        let base = format!("origin/{base_branch}");
        let pushed = format!("origin/{branch}");
        let start = if keep_branch
            && self
                .git(dir, &["rev-parse", "--verify", "--quiet", &pushed])
                .await
                .is_ok()
        {
            pushed
        } else {
            base.clone()
        };
        self.git(dir, &["checkout", "--quiet", "-B", branch, &start])
            .await?;
        self.git(dir, &["remote", "set-url", "origin", &url])
            .await?;
        let base_commit = self.git(dir, &["rev-parse", &base]).await?;
        let start_commit = self.git(dir, &["rev-parse", "HEAD"]).await?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            base_branch,
            base_commit,
            start_commit,
            branch: branch.to_string(),
        })
    }

    /// Merges the base branch, fetched again, into the task's branch (a follow-up
    /// for a conflict): `git merge --no-edit origin/<base>`. Where git stops on
    /// conflicts, the merge is left in progress with the conflicted files for
    /// the agent ([`super::merge::conclude`] finishes it).
    pub async fn merge_base(&self, ws: &Workspace) -> Result<Merge> {
        let base = &ws.base_branch;
        let tracking = format!("+refs/heads/{base}:refs/remotes/origin/{base}");
        self.git(&ws.dir, &["fetch", "--quiet", "origin", &tracking])
            .await?;
        let before = self.git(&ws.dir, &["rev-parse", "HEAD"]).await?;
        let theirs = format!("origin/{base}");
        let merged = self
            .git(&ws.dir, &["merge", "--no-edit", "--quiet", &theirs])
            .await;
        if let Err(e) = merged {
            let unmerged = self
                .git(&ws.dir, &["diff", "--name-only", "-z", "--diff-filter=U"])
                .await?;
            let files: Vec<String> = unmerged
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            return if files.is_empty() {
                Err(e)
            } else {
                Ok(Merge::Conflicted(files))
            };
        }
        let after = self.git(&ws.dir, &["rev-parse", "HEAD"]).await?;
        Ok(if after == before {
            Merge::UpToDate
        } else {
            Merge::Clean
        })
    }

    /// Commits whatever the workflow left uncommitted, and returns how many commits
    /// this attempt added on the branch (beyond [`Workspace::start_commit`], first
    /// parents only: a merge of the base branch counts once, not with the base
    /// branch's own commits).
    pub async fn commit_leftovers(&self, ws: &Workspace, message: &str) -> Result<u32> {
        let status = self.git(&ws.dir, &["status", "--porcelain"]).await?;
        if !status.is_empty() {
            self.git(&ws.dir, &["add", "--all"]).await?;
            self.git(&ws.dir, &["commit", "--quiet", "-m", message])
                .await?;
        }
        let range = format!("{}..HEAD", ws.start_commit);
        let count = self
            .git(&ws.dir, &["rev-list", "--count", "--first-parent", &range])
            .await?;
        count
            .parse()
            .map_err(|_| Error::new(ErrorKind::Internal, format!("git rev-list said {count:?}")))
    }

    /// Whether a push to `repo` would be accepted, without pushing anything: a
    /// one-commit repository is made in `scratch` (a new directory) and pushed
    /// with `--dry-run` and a real push's credentials. Over HTTPS that asks the
    /// forge for write access, which it refuses to a token that may only read.
    pub async fn check_push(&self, repo: &RepoName, scratch: &Path) -> Result<()> {
        std::fs::create_dir_all(scratch).map_err(io("create a scratch repository"))?;
        self.git(scratch, &["init", "--quiet"]).await?;
        let message = "scrum-worker doctor";
        self.git(
            scratch,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        )
        .await?;
        let refspec = "HEAD:refs/heads/scrum-worker-doctor-check";
        let url = self.url(repo);
        self.git(scratch, &["push", "--dry-run", "--quiet", &url, refspec])
            .await
            .map(|_| ())
    }

    /// Pushes the task's branch, replacing what an earlier attempt pushed.
    pub async fn push(&self, ws: &Workspace) -> Result<()> {
        let refspec = format!("HEAD:refs/heads/{}", ws.branch);
        self.git(&ws.dir, &["push", "--quiet", "--force", "origin", &refspec])
            .await
            .map(|_| ())
    }
}

/// Moves a GitHub mirror from where workers kept it before forges had names
/// (`{cache}/{owner}/{name}.git`) to its place under `github/`, so an upgraded
/// worker fetches into the mirror it has instead of cloning it again. A failed
/// move leaves it: the mirror is then cloned afresh.
fn adopt_unprefixed_mirror(cache: &Path, repo: &RepoName, mirror: &Path) {
    if repo.forge() != scrum_core::model::GITHUB || mirror.join("HEAD").exists() {
        return;
    }
    let old = cache
        .join(repo.owner())
        .join(format!("{}.git", repo.name()));
    if !old.join("HEAD").exists() {
        return;
    }
    if let Some(parent) = mirror.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::rename(&old, mirror);
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", p.display())))
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::new(ErrorKind::Internal, format!("could not {what}")).with_source(e)
}

/// Standard base64 with padding.
fn base64(input: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_from_before_forges_had_names_moves_under_github() {
        let cache = tempfile::tempdir().unwrap();
        let old = cache.path().join("acme").join("widgets.git");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let repo: RepoName = "acme/widgets".parse().unwrap();
        let mirror = cache.path().join("github/acme/widgets.git");
        adopt_unprefixed_mirror(cache.path(), &repo, &mirror);
        assert!(mirror.join("HEAD").exists());
        assert!(!old.exists());
        // A GitLab project of the same path is another repository: nothing moves.
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("HEAD"), "x").unwrap();
        let lab: RepoName = "gitlab:acme/widgets".parse().unwrap();
        let lab_mirror = cache.path().join("gitlab/acme/widgets.git");
        adopt_unprefixed_mirror(cache.path(), &lab, &lab_mirror);
        assert!(!lab_mirror.exists());
        assert!(old.exists());
    }

    #[test]
    fn base64_matches_the_standard_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain), encoded);
        }
    }
}
