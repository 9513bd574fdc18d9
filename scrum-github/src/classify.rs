//! GitHub's answers mapped once to [`scrum_core::Error`]: callers branch on the kind,
//! never on messages.

use std::fmt;

use http::StatusCode;
use scrum_core::{Error, ErrorKind, RepoName, TaskId, redact::redact};

/// What a request is about: named in error messages so an operator knows which
/// repository or issue failed.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    Repo(RepoName),
    Issue(TaskId),
}

impl Subject {
    /// The repository the request is about.
    pub(crate) fn repo(&self) -> RepoName {
        match self {
            Subject::Repo(r) => r.clone(),
            Subject::Issue(i) => i.repo_name(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Repo(r) => write!(f, "repository {r}"),
            Subject::Issue(i) => write!(f, "issue {i}"),
        }
    }
}

/// One request's purpose: `action` is a verb phrase ("list the issues of").
#[derive(Clone, Debug)]
pub(crate) struct What {
    pub(crate) action: &'static str,
    pub(crate) subject: Subject,
}

impl What {
    /// A short fixed name of the request's purpose: the `kind` label of the request
    /// duration metric (a bounded set: never a repository or issue).
    pub(crate) fn kind(&self) -> &'static str {
        match (self.action, &self.subject) {
            ("read", Subject::Repo(_)) => "read_repository",
            ("read", Subject::Issue(_)) => "read_issue",
            ("list the issues of", _) => "list_issues",
            ("close", _) => "close_issue",
            ("create a label in", _) => "create_label",
            ("add labels to", _) => "add_labels",
            ("set the labels of", _) => "set_labels",
            ("remove a label from", _) => "remove_label",
            ("comment on", _) => "comment",
            ("read the comments of", _) => "list_comments",
            ("open a pull request in", _) => "open_pull_request",
            ("list the pull requests of", _) => "list_pull_requests",
            ("read a pull request of", _) => "read_pull_request",
            ("read the checks of", _) => "read_checks",
            ("read the required checks of", _) => "read_required_checks",
            ("read a failed check of", _) => "read_failed_check",
            ("edit a comment on", _) => "edit_comment",
            ("read a collaborator's permission in", _) => "read_permission",
            ("read the events of", _) => "list_events",
            ("read who vouches for the issues of", _) => "read_trust",
            ("find the GitHub App's installation on", _) => "find_installation",
            ("get an installation token for", _) => "installation_token",
            _ => "other",
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.subject)
    }
}

/// GitHub's `message` from an error body, redacted and capped.
pub(crate) fn github_message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let mut msg = v
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
        for e in errors {
            if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
                msg.push_str(": ");
                msg.push_str(m);
            } else if let Some(code) = e.get("code").and_then(|c| c.as_str()) {
                msg.push_str(": ");
                msg.push_str(code);
            }
        }
    }
    let msg = redact(&msg);
    msg.chars().take(300).collect()
}

/// The error for a final (non-retried) answer `status` to `what`.
pub(crate) fn classify(status: StatusCode, body: &str, what: &What) -> Error {
    let message = github_message(body);
    let detail = if message.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {message}")
    };
    match status.as_u16() {
        401 => Error::new(
            ErrorKind::Unauthorized,
            format!(
                "GitHub refused GITHUB_TOKEN ({detail}): set GITHUB_TOKEN to a valid, unexpired token"
            ),
        ),
        403 => Error::new(
            ErrorKind::Forbidden,
            format!("GITHUB_TOKEN may not {what} ({detail}): grant the token access to it"),
        ),
        404 | 410 => match &what.subject {
            Subject::Repo(r) => Error::not_found(format!(
                "repository {r} not found, or GITHUB_TOKEN cannot see it (GITHUB_REPO/GITHUB_REPOS): could not {what}"
            )),
            Subject::Issue(i) => Error::not_found(format!("issue {i} not found ({detail})")),
        },
        400 | 409 | 422 => Error::invalid(format!("GitHub refused to {what} ({detail})")),
        429 => Error::new(
            ErrorKind::RateLimited,
            format!("GitHub rate limited {what} ({detail})"),
        ),
        500..=599 => Error::unavailable(format!("GitHub failed to {what} ({detail})")),
        _ => Error::new(
            ErrorKind::Internal,
            format!("GitHub answered {what} unexpectedly ({detail})"),
        ),
    }
}
