//! What the workflow is told of its task: a workflow command's environment
//! variables and issue file, the built-in workflow's template values. On a
//! follow-up both carry its cause, feedback, author, pull request and round (and
//! on a conflict the conflicted files); the `REWORK_*` variables and the
//! `review_feedback`, `reviewer` and `pull_request` values keep the names they
//! had before follow-ups.

use scrum_core::Assignment;
use scrum_core::follow_up::{FollowUp, FollowUpCause};
use serde_json::Value;

use super::workflow::template::Vars;

/// The feedback of `follow_up` with the list of `conflicted` files after it, as
/// the agent reads it (unchanged without conflicted files).
pub fn feedback_with_conflicts(follow_up: &FollowUp, conflicted: &[String]) -> String {
    if conflicted.is_empty() {
        return follow_up.feedback.clone();
    }
    format!(
        "{}\n\nConflicted files (the conflict markers are in them):\n{}",
        follow_up.feedback.trim_end(),
        conflicted
            .iter()
            .map(|f| format!("- {f}\n"))
            .collect::<String>()
    )
}

/// The follow-up's variables of a workflow command: `FOLLOW_UP_CAUSE`
/// (`conflicts`, as `FOLLOW_UP_ON` names it), `FOLLOW_UP_FEEDBACK`,
/// `FOLLOW_UP_AUTHOR`, `FOLLOW_UP_PR_URL`, `FOLLOW_UP_ROUND`, `CONFLICTED_FILES`
/// (one a line) when the merge stopped on conflicts, and the older `REWORK_*`
/// names of the feedback, author and pull request.
pub fn follow_up_env(follow_up: &FollowUp, conflicted: &[String]) -> Vec<(String, String)> {
    let feedback = feedback_with_conflicts(follow_up, conflicted);
    let mut env: Vec<(String, String)> = [
        ("FOLLOW_UP_CAUSE", follow_up.cause.as_str().to_string()),
        ("FOLLOW_UP_FEEDBACK", feedback.clone()),
        ("FOLLOW_UP_AUTHOR", follow_up.author.clone()),
        ("FOLLOW_UP_PR_URL", follow_up.pr_url.clone()),
        ("FOLLOW_UP_ROUND", follow_up.round.to_string()),
        ("REWORK_FEEDBACK", feedback),
        ("REWORK_REVIEWER", follow_up.author.clone()),
        ("REWORK_PR_URL", follow_up.pr_url.clone()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    if !conflicted.is_empty() {
        env.push(("CONFLICTED_FILES".to_string(), conflicted.join("\n")));
    }
    env
}

/// The issue file (`ISSUE_FILE`): the issue, the attempt and the follow-up (its
/// feedback with the conflicted files), with `conflicted_files` on a conflict.
pub fn issue_json(a: &Assignment, conflicted: &[String]) -> Value {
    let follow_up = a.follow_up.as_ref().map(|f| {
        let mut f = f.clone();
        f.feedback = feedback_with_conflicts(&f, conflicted);
        f
    });
    let mut json = serde_json::json!({
        "repository": a.task.repo(),
        "number": a.task.number(),
        "title": a.issue.title,
        "body": a.issue.body,
        "labels": a.issue.labels,
        "branch": a.branch_name,
        "attempt": a.attempt,
        "max_attempts": a.max_attempts,
        "follow_up": follow_up,
    });
    if !conflicted.is_empty() {
        json["conflicted_files"] = serde_json::json!(conflicted);
    }
    json
}

/// The template values of the issue, the attempt and the follow-up: every name
/// of [`super::workflow::PROMPT_VARS`] but those the pipeline sets (`phase`,
/// `revision`, `max_revisions`, `feedback`). `follow_up_cause` is for people
/// ("a check failed"); the follow-up's values are empty on a first run.
pub fn prompt_vars(a: &Assignment, base_branch: &str, conflicted: &[String]) -> Vars {
    let f = a.follow_up.as_ref();
    let of = |get: fn(&FollowUp) -> String| f.map(get).unwrap_or_default();
    let feedback = f
        .map(|f| feedback_with_conflicts(f, conflicted))
        .unwrap_or_default();
    [
        ("issue_title", a.issue.title.clone()),
        ("issue_body", a.issue.body.clone()),
        ("issue_labels", a.issue.labels.join(", ")),
        ("issue_number", a.task.number().to_string()),
        ("repository", a.task.repo().to_string()),
        ("branch", a.branch_name.clone()),
        ("base_branch", base_branch.to_string()),
        ("attempt", a.attempt.to_string()),
        ("max_attempts", a.max_attempts.to_string()),
        (
            "follow_up_cause",
            of(|f| FollowUpCause::describe(f.cause).to_string()),
        ),
        ("follow_up_feedback", feedback.clone()),
        ("follow_up_author", of(|f| f.author.clone())),
        ("follow_up_round", of(|f| f.round.to_string())),
        ("conflicted_files", conflicted.join("\n")),
        ("review_feedback", feedback),
        ("reviewer", of(|f| f.author.clone())),
        ("pull_request", of(|f| f.pr_url.clone())),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scrum_core::Timestamp;

    fn follow_up() -> FollowUp {
        FollowUp::new(
            FollowUpCause::Conflicts,
            "https://github.com/acme/api/pull/4",
            "conflicts:abc".into(),
            "forge",
            "The branch conflicts.",
            2,
            Timestamp(1),
        )
    }

    #[test]
    fn a_conflicts_follow_up_names_its_files_everywhere_and_keeps_the_old_names() {
        let files = ["src/a.rs".to_string(), "docs/b c.md".to_string()];
        let env: std::collections::BTreeMap<String, String> =
            follow_up_env(&follow_up(), &files).into_iter().collect();
        assert_eq!(env["FOLLOW_UP_CAUSE"], "conflicts");
        assert_eq!(env["FOLLOW_UP_ROUND"], "2");
        assert_eq!(env["CONFLICTED_FILES"], "src/a.rs\ndocs/b c.md");
        assert!(env["FOLLOW_UP_FEEDBACK"].contains("- docs/b c.md"));
        assert_eq!(env["REWORK_FEEDBACK"], env["FOLLOW_UP_FEEDBACK"]);
        assert_eq!(env["REWORK_REVIEWER"], "forge");
        let plain = follow_up_env(&follow_up(), &[]);
        assert!(plain.iter().all(|(k, _)| k != "CONFLICTED_FILES"));
        assert!(
            plain
                .iter()
                .any(|(k, v)| k == "FOLLOW_UP_FEEDBACK" && v == "The branch conflicts.")
        );
    }
}
