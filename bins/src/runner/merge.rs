//! A follow-up for a conflict with the base branch: the base branch is merged into
//! the task's branch ([`super::GitRemote::merge_base`]); where git stops on
//! conflicts, the agent resolves the conflicted files (the markers are in them),
//! then [`conclude`] checks that no marker is left and makes the merge commit.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// What merging the base branch into the task's branch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The branch already held the base branch: nothing to do.
    UpToDate,
    /// Merged without conflicts: the merge commit is made.
    Clean,
    /// Git stopped on conflicts in these files (paths in the clone), the merge in
    /// progress.
    Conflicted(Vec<String>),
}

/// The lines git starts a conflict's sides with (`<<<<<<< ours`, the `diff3`
/// style's `||||||| base`, `>>>>>>> theirs`). `=======` alone is left out: a
/// Markdown heading is underlined with it.
const MARKERS: [&str; 3] = ["<<<<<<<", "|||||||", ">>>>>>>"];

/// Whether `line` is one git writes around a conflict: a marker followed by a
/// space or nothing.
fn is_marker(line: &str) -> bool {
    MARKERS.iter().any(|m| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })
}

/// Those of `files` (paths in `dir`) that still hold a conflict marker. A file
/// the resolution removed holds none.
pub fn with_markers(dir: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            std::fs::read(dir.join(f)).is_ok_and(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .any(|l| is_marker(l.trim_end_matches('\r')))
            })
        })
        .cloned()
        .collect()
}

/// After the agent resolved the conflicts: fails, naming them, if any of `files`
/// still holds a conflict marker; else, if the merge is still in progress (the
/// agent did not commit it), stages everything and makes the merge commit with
/// git's message. Returns whether it made that commit. `env` carries the commit
/// identity (`GIT_AUTHOR_NAME`…) where the worker's environment has none.
pub async fn conclude(
    dir: &Path,
    files: &[String],
    env: &[(String, String)],
) -> Result<bool, String> {
    let left = with_markers(dir, files);
    if !left.is_empty() {
        return Err(format!("left conflict markers in {}", left.join(", ")));
    }
    if !in_progress(dir).await {
        return Ok(false);
    }
    git(dir, env, &["add", "--all"]).await?;
    git(dir, env, &["commit", "--quiet", "--no-edit"]).await?;
    Ok(true)
}

/// Whether a merge is in progress in the clone at `dir`.
pub async fn in_progress(dir: &Path) -> bool {
    git(
        dir,
        &[],
        &["rev-parse", "--quiet", "--verify", "MERGE_HEAD"],
    )
    .await
    .is_ok()
}

/// Runs `git args` in `dir` with the commit identity of `env`.
async fn git(dir: &Path, env: &[(String, String)], args: &[&str]) -> Result<String, String> {
    let identity = env
        .iter()
        .filter(|(k, _)| k.starts_with("GIT_AUTHOR_") || k.starts_with("GIT_COMMITTER_"));
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(identity.map(|(k, v)| (k, v)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("could not run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "could not conclude the merge (git {}: {})",
            args[0],
            stderr.trim().lines().last().unwrap_or("no output")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_only_where_git_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "conflicted.rs",
            "fn a() {}\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> origin/main\n",
        );
        write("crlf.txt", "x\r\n>>>>>>>\r\n");
        write(
            "resolved.md",
            "Title\n=======\n\n<<<<<<<< eight is not a marker\n",
        );
        let files: Vec<String> = ["conflicted.rs", "crlf.txt", "resolved.md", "deleted.txt"]
            .map(String::from)
            .into();
        assert_eq!(
            with_markers(dir.path(), &files),
            ["conflicted.rs", "crlf.txt"]
        );
    }
}
