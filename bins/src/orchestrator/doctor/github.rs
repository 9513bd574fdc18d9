//! The doctor's GitHub checks: what the token may do in each repository, and the
//! labels.

use scrum_core::{ErrorKind, RepoName};
use scrum_github::{GitHubClient, RepoAccess};

use crate::doctor::Report;

/// Reads each repository with the token and says what it may do there: read
/// issues and pull requests (any role), write issues (labels and comments: triage
/// or more), and for a classic token whether its scopes allow writes. Returns the
/// repositories the token could read, with what it may do.
pub async fn token(client: &GitHubClient, report: &mut Report) -> Vec<RepoAccess> {
    let mut readable = Vec::new();
    for repo in client.repos() {
        match client.repo_access(repo).await {
            Ok(access) => {
                judge(&access, report);
                readable.push(access);
            }
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                report.fail(
                    "github",
                    format!("GitHub refused GITHUB_TOKEN: {e}"),
                    "the token is wrong, expired or revoked: create a new one and set GITHUB_TOKEN",
                );
                return Vec::new();
            }
            Err(e) if e.kind() == ErrorKind::NotFound => report.fail(
                "github",
                format!("{repo} cannot be read with the token: {e}"),
                format!(
                    "check the name in GITHUB_REPOS, and give the token access to {repo} (a fine-grained token lists its repositories)"
                ),
            ),
            Err(e) => {
                report.fail(
                    "github",
                    format!("cannot read {repo}: {e}"),
                    "check GITHUB_API_URL and this host's network access to it",
                );
                return readable;
            }
        }
    }
    readable
}

/// One line on what the token may do in one repository.
fn judge(access: &RepoAccess, report: &mut Report) {
    let repo = &access.repo;
    if access.scopes_allow_writes() == Some(false) {
        let scopes = access.scopes.clone().unwrap_or_default().join(", ");
        report.fail(
            "github",
            format!("{repo} token (a classic token with scopes: {scopes}) cannot write issues"),
            if access.private {
                "give the token the repo scope"
            } else {
                "give the token the public_repo scope (repo for private repositories)"
            },
        );
        return;
    }
    let Some(grants) = access.grants else {
        report.ok(
            "github",
            format!("{repo} can be read with the token (GitHub does not say what else it may do)"),
        );
        return;
    };
    let granted = grants.granted();
    if grants.can_write_issues() {
        report.ok(
            "github",
            format!("{repo} token can read and write issues and read pull requests ({granted})"),
        );
    } else if grants.can_read() {
        report.fail(
            "github",
            format!("{repo} token can read issues but cannot write them ({granted})"),
            format!(
                "give the token's user the triage or write role on {repo} (a fine-grained token: Issues read and write); until then its labels and comments are refused"
            ),
        );
    } else {
        report.fail(
            "github",
            format!("{repo} token cannot read issues ({granted})"),
            format!("give the token access to {repo} with the triage or write role"),
        );
    }
}

/// Whether the ready labels and the lifecycle labels exist in each readable
/// repository; with `create`, creates the missing ones.
pub async fn labels(
    client: &GitHubClient,
    readable: &[RepoAccess],
    create: bool,
    report: &mut Report,
) {
    let l = client.labels();
    let mut names: Vec<String> = l.ready.clone();
    names.extend([l.in_progress.clone(), l.completed.clone(), l.failed.clone()]);
    names.extend([l.needs_clarification.clone()]);
    for access in readable {
        let can_write = access.grants.is_none_or(|g| g.can_write_issues())
            && access.scopes_allow_writes() != Some(false);
        one_repo(client, &access.repo, &names, create, can_write, report).await;
    }
}

async fn one_repo(
    client: &GitHubClient,
    repo: &RepoName,
    names: &[String],
    create: bool,
    can_write: bool,
    report: &mut Report,
) {
    let mut missing = Vec::new();
    for name in names {
        match client.has_label(repo, name).await {
            Ok(true) => {}
            Ok(false) => missing.push(name.clone()),
            Err(e) => {
                report.fail(
                    "labels",
                    format!("cannot read the labels of {repo}: {e}"),
                    "",
                );
                return;
            }
        }
    }
    if missing.is_empty() {
        report.ok("labels", format!("{repo} has {}", names.join(", ")));
        return;
    }
    let list = missing.join(", ");
    if create {
        for name in &missing {
            if let Err(e) = client.create_label(repo, name).await {
                report.fail(
                    "labels",
                    format!("{repo}: cannot create {name}: {e}"),
                    "give the token the triage or write role (fine-grained: Issues read and write)",
                );
                return;
            }
        }
        report.ok("labels", format!("{repo}: created {list}"));
    } else if !can_write {
        report.fail(
            "labels",
            format!("{repo} lacks {list}, and the token cannot create them"),
            "create them in the repository's label settings, or give the token the triage or write role",
        );
    } else {
        report.ok(
            "labels",
            format!("{repo} lacks {list}; the token can create them (on first use, or now with --create-labels)"),
        );
    }
}
