//! The start-up check of a GitLab token: the `api` scope, and Developer access
//! to every project.

mod common;

use common::setup;
use scrum_core::{ErrorKind, IssueSource};
use scrum_gitlab::fake::{NewIssue, TOKEN_USER, access};

#[tokio::test]
async fn a_token_with_api_and_developer_access_passes() {
    let (_gitlab, client) = setup(&["group/a", "group/sub/b"]).await;
    client.check_access().await.unwrap();
}

#[tokio::test]
async fn a_read_api_token_is_refused_naming_the_missing_scope() {
    let (gitlab, client) = setup(&["group/a"]).await;
    gitlab.set_scopes(&["read_api", "read_repository"]);
    let err = client.check_access().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let text = err.to_string();
    assert!(
        text.contains("lacks the api scope") && text.contains("read_api"),
        "{text}"
    );
    // And GitLab itself refuses its writes.
    let id = gitlab.add_issue("group/a", NewIssue::new("x"));
    let err = client
        .add_labels(&id, &["ai-in-progress".into()])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
}

#[tokio::test]
async fn reporter_access_to_one_project_is_refused_naming_it() {
    let (gitlab, client) = setup(&["group/a", "group/b"]).await;
    gitlab.add_member("group/b", TOKEN_USER, access::REPORTER);
    let err = client.check_access().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let text = err.to_string();
    assert!(
        text.contains("gitlab:group/b") && text.contains("Reporter") && text.contains("Developer"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_project_is_named() {
    let (gitlab, _) = setup(&["group/a"]).await;
    let client =
        scrum_gitlab::GitLabClient::new(common::config(&gitlab, &["group/a", "group/gone"]))
            .unwrap();
    let err = client.check_access().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("gitlab:group/gone"), "{err}");
}
