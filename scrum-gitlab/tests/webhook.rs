//! GitLab webhooks: the secret token checked, each hook kind mapped to its task,
//! and the fake's deliveries read back through the same check.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use common::setup;
use scrum_core::{Delivery, ErrorKind, IssueEvents, IssueSource, TaskId};
use scrum_gitlab::WebhookToken;
use scrum_gitlab::fake::{FakeJob, NewIssue};
use scrum_gitlab::webhook::affected_task;
use serde_json::json;

const SECRET: &str = "hook-s3cret";

fn task(s: &str) -> Option<TaskId> {
    Some(s.parse().unwrap())
}

fn deliver(event: &str, body: serde_json::Value) -> scrum_core::Result<Option<TaskId>> {
    affected_task(
        SECRET,
        Some(event),
        Some(SECRET),
        body.to_string().as_bytes(),
    )
}

fn project() -> serde_json::Value {
    json!({ "path_with_namespace": "group/sub/project" })
}

#[test]
fn each_hook_kind_names_its_task() {
    let issue = json!({
        "object_kind": "issue", "project": project(),
        "object_attributes": { "iid": 12, "action": "update" },
    });
    assert_eq!(
        deliver("Issue Hook", issue).unwrap(),
        task("gitlab:group/sub/project#12")
    );

    let mr = json!({
        "object_kind": "merge_request", "project": project(),
        "object_attributes": { "iid": 5, "action": "approved" },
    });
    assert_eq!(
        deliver("Merge Request Hook", mr).unwrap(),
        task("gitlab:group/sub/project#5")
    );

    let on_issue = json!({
        "object_kind": "note", "project": project(),
        "object_attributes": { "noteable_type": "Issue", "note": "hi" },
        "issue": { "iid": 3 },
    });
    assert_eq!(
        deliver("Note Hook", on_issue).unwrap(),
        task("gitlab:group/sub/project#3")
    );

    let on_mr = json!({
        "object_kind": "note", "project": project(),
        "object_attributes": { "noteable_type": "MergeRequest", "note": "/agent fix" },
        "merge_request": { "iid": 9 },
    });
    assert_eq!(
        deliver("Note Hook", on_mr).unwrap(),
        task("gitlab:group/sub/project#9")
    );

    let on_commit = json!({
        "object_kind": "note", "project": project(),
        "object_attributes": { "noteable_type": "Commit", "note": "nice" },
    });
    assert_eq!(deliver("Note Hook", on_commit).unwrap(), None);

    let pipeline = json!({
        "object_kind": "pipeline", "project": project(),
        "object_attributes": { "id": 77, "status": "failed" },
        "merge_request": { "iid": 9 },
    });
    assert_eq!(
        deliver("Pipeline Hook", pipeline).unwrap(),
        task("gitlab:group/sub/project#9")
    );

    let branch_pipeline = json!({
        "object_kind": "pipeline", "project": project(),
        "object_attributes": { "id": 78, "status": "success" },
        "merge_request": null,
    });
    assert_eq!(deliver("Pipeline Hook", branch_pipeline).unwrap(), None);

    assert_eq!(deliver("Push Hook", json!({})).unwrap(), None);
}

#[test]
fn a_wrong_or_missing_token_is_unauthorized_before_anything_is_read() {
    let body = br#"{"object_kind":"issue","project":{"path_with_namespace":"g/p"},"object_attributes":{"iid":1}}"#;
    for token in [Some("hook-s3cre"), Some("hook-s3cret "), Some(""), None] {
        let err = affected_task(SECRET, Some("Issue Hook"), token, body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{token:?}");
        assert!(!err.to_string().contains(SECRET));
    }
    let err = affected_task(SECRET, Some("Issue Hook"), Some(SECRET), b"{not json").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err = affected_task(SECRET, None, Some(SECRET), body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn the_token_type_checks_deliveries_and_hides_the_secret() {
    let token = WebhookToken::new(SECRET).unwrap();
    assert!(!format!("{token:?}").contains(SECRET));
    let body = br#"{"object_kind":"issue","project":{"path_with_namespace":"g/p"},"object_attributes":{"iid":4}}"#;
    let good = Delivery {
        event: Some("Issue Hook"),
        signature: Some(SECRET),
        body,
    };
    assert_eq!(token.affected_task(&good).unwrap(), task("gitlab:g/p#4"));
    let bad = Delivery {
        signature: Some("nope"),
        ..good
    };
    assert_eq!(
        token.affected_task(&bad).unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    assert!(WebhookToken::new("").is_err());
}

type Received = Arc<Mutex<Vec<(String, Option<String>, Vec<u8>)>>>;

async fn receive(State(got): State<Received>, headers: HeaderMap, body: axum::body::Bytes) {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    got.lock().unwrap().push((
        header("x-gitlab-event").unwrap_or_default(),
        header("x-gitlab-token"),
        body.to_vec(),
    ));
}

/// Polls until `count` deliveries arrived, failing with what arrived by the deadline.
async fn wait_for(got: &Received, count: usize) -> Vec<(String, Option<String>, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = got.lock().unwrap().clone();
        if now.len() >= count {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "only {} deliveries: {:?}",
            now.len(),
            now.iter().map(|d| &d.0).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_fakes_deliveries_pass_the_check_and_name_their_tasks() {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (gitlab, client) = setup(&["group/sub/project"]).await;
    gitlab.set_webhook(&url, SECRET);
    let issue = gitlab.add_issue("group/sub/project", NewIssue::new("Hooked"));
    client
        .comment(&issue, "scrum:test", "A note")
        .await
        .unwrap();
    let mr = gitlab.add_merge_request("group/sub/project", "ai-feature/issue-1", "main", "Fix");
    gitlab.set_pipeline("group/sub/project", mr, &[FakeJob::new("test", "running")]);

    let deliveries = wait_for(&got, 4).await;
    let events: Vec<&str> = deliveries.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(
        events,
        [
            "Issue Hook",
            "Note Hook",
            "Merge Request Hook",
            "Pipeline Hook"
        ]
    );
    let tasks: Vec<Option<TaskId>> = deliveries
        .iter()
        .map(|(event, token, body)| {
            affected_task(SECRET, Some(event), token.as_deref(), body).unwrap()
        })
        .collect();
    let issue_task = Some(issue.clone());
    let mr_task = task(&format!("gitlab:group/sub/project#{mr}"));
    assert_eq!(
        tasks,
        [issue_task.clone(), issue_task, mr_task.clone(), mr_task]
    );
    assert!(gitlab.deliveries().iter().all(|(_, status)| *status == 200));
}
