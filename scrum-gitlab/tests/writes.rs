//! Writes to GitLab issues: labels changed in one edit, and a note that follows
//! a merge request through its rounds edited in place.

mod common;

use common::{api_project, setup};
use scrum_core::IssueSource;
use scrum_core::source::Commented;
use scrum_gitlab::fake::{Fault, NewIssue};

const PATH: &str = "group/project";

#[tokio::test]
async fn labels_are_added_and_removed_in_one_edit() {
    let (gitlab, client) = setup(&[PATH]).await;
    let id = gitlab.add_issue(
        PATH,
        NewIssue::new("x").labels(&["ai-ready", "ai-in-progress"]),
    );
    gitlab.clear_requests();
    client
        .set_labels(
            &id,
            &["ai-completed".into()],
            &["AI-Ready".into(), "ai-in-progress".into()],
        )
        .await
        .unwrap();
    assert_eq!(gitlab.labels(&id), ["ai-completed"]);
    let writes: Vec<_> = gitlab
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PUT");
    assert_eq!(writes[0].path, format!("{}/issues/1", api_project(PATH)));

    // Already so: nothing written.
    gitlab.clear_requests();
    client
        .set_labels(&id, &["AI-Completed".into()], &["ai-ready".into()])
        .await
        .unwrap();
    assert!(gitlab.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_lost_answer_to_a_label_edit_is_retried_and_lands_once() {
    let (gitlab, client) = setup(&[PATH]).await;
    let id = gitlab.add_issue(PATH, NewIssue::new("x").labels(&["ai-ready"]));
    gitlab.inject_for("PUT", &api_project(PATH), Fault::LostAnswer);
    client
        .add_labels(&id, &["ai-in-progress".into()])
        .await
        .unwrap();
    assert_eq!(gitlab.labels(&id), ["ai-ready", "ai-in-progress"]);
}

#[tokio::test]
async fn an_upserted_note_is_posted_once_then_edited() {
    let (gitlab, client) = setup(&[PATH]).await;
    let id = gitlab.add_issue(PATH, NewIssue::new("x"));
    gitlab.add_note(&id, "someone", "A person's note.");
    let first = client
        .upsert_comment(&id, "scrum:rounds", "Round 1: opened")
        .await
        .unwrap();
    assert_eq!(first, Commented::Posted);
    let second = client
        .upsert_comment(&id, "scrum:rounds", "Round 2: checks fixed")
        .await
        .unwrap();
    assert_eq!(second, Commented::Updated);
    let notes = gitlab.comments(&id);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes[1].starts_with("Round 2: checks fixed") && notes[1].contains("<!-- scrum:rounds -->")
    );
    assert_eq!(notes[0], "A person's note.");
}
