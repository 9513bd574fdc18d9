//! Who vouches for an issue's text on GitLab: the member who added the ready
//! label (resource label events) and their access level, the editor, the
//! author.

mod common;

use common::setup;
use scrum_core::IssueSource;
use scrum_gitlab::fake::{NewIssue, access};

const PROJECT: &str = "group/sub/widgets";

#[tokio::test]
async fn a_ready_label_added_by_a_reporter_is_no_approval() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    gitlab.add_member(PROJECT, "reporter", access::REPORTER);
    let id = gitlab.add_issue(PROJECT, NewIssue::new("Drive-by"));
    gitlab.label_as(&id, &["ai-ready"], "reporter");
    let p = client.labelled_by(&id).await.unwrap();
    assert_eq!((p.login.as_str(), p.may_approve), ("reporter", false));
    assert!(p.at.is_some());
}

#[tokio::test]
async fn a_ready_label_added_by_a_developer_is_an_approval() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    gitlab.add_member(PROJECT, "dev", access::DEVELOPER);
    gitlab.add_member(PROJECT, "outsider", 0);
    let id = gitlab.add_issue(PROJECT, NewIssue::new("Wanted"));
    gitlab.label_as(&id, &["ai-ready"], "outsider");
    gitlab.label_as(&id, &[], "dev");
    gitlab.label_as(&id, &["AI-Ready"], "dev");
    let p = client.labelled_by(&id).await.unwrap();
    assert_eq!((p.login.as_str(), p.may_approve), ("dev", true));
}

#[tokio::test]
async fn an_unlabelled_issue_names_nobody_who_may_approve() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    let id = gitlab.add_issue(PROJECT, NewIssue::new("Plain").labels(&["bug"]));
    let p = client.labelled_by(&id).await.unwrap();
    assert!(!p.may_approve, "{p:?}");
}

#[tokio::test]
async fn the_author_and_the_editor_are_named_with_their_access() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    gitlab.add_member(PROJECT, "guest", access::GUEST);
    gitlab.add_member(PROJECT, "maintainer", access::MAINTAINER);
    let id = gitlab.add_issue(PROJECT, NewIssue::new("From outside").author("guest"));
    let author = client.opened_by(&id).await.unwrap();
    assert_eq!(
        (author.login.as_str(), author.may_approve),
        ("guest", false)
    );
    assert_eq!(client.edited_by(&id).await.unwrap(), None);

    gitlab.edit_as(&id, "maintainer", None, Some("Clearer words."));
    let editor = client.edited_by(&id).await.unwrap().expect("an editor");
    assert_eq!(
        (editor.login.as_str(), editor.may_approve),
        ("maintainer", true)
    );
    gitlab.edit_as(&id, "guest", Some("Sneaky"), None);
    let editor = client.edited_by(&id).await.unwrap().expect("an editor");
    assert_eq!(
        (editor.login.as_str(), editor.may_approve),
        ("guest", false)
    );
}

#[tokio::test]
async fn an_issue_state_carries_the_digest_of_its_text() {
    let (gitlab, client) = setup(&[PROJECT]).await;
    let id = gitlab.add_issue(PROJECT, NewIssue::new("Title").body("Body"));
    let state = client.issue_state(&id).await.unwrap();
    assert_eq!(
        state.digest.as_deref(),
        Some(scrum_core::model::text_digest("Title", "Body").as_str())
    );
}
