//! The webhooks follow-ups answer to: the fake sends `check_run`, `check_suite`,
//! `status`, `issue_comment`, `pull_request_review_comment` and `pull_request`
//! deliveries, signed; each verified delivery names the pull request to look at
//! now (a `status`, which names a commit, through the client's pull heads).

mod common;

use std::time::Duration;

use common::*;
use scrum_core::{ErrorKind, IssueSource, RepoName, TaskId};
use scrum_github::fake::{FakeCheck, NewIssue};
use scrum_github::webhook::{WebhookSecret, affected_task, parse_event, sign};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const REPO: &str = "acme/widgets";
const SECRET: &str = "hook secret";

/// One delivery as received: (event, signature, body).
type Received = (String, String, Vec<u8>);

/// A receiver on a loopback port that answers 202 to every delivery and hands
/// each on: its URL and the deliveries.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(got) = read_request(&mut stream).await {
                    let _ = stream
                        .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    let _ = tx.send(got);
                }
            });
        }
    });
    (url, rx)
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let length: usize = header("content-length").parse().ok()?;
            if data.len() >= end + 4 + length {
                let body = data[end + 4..end + 4 + length].to_vec();
                return Some((
                    header("x-github-event"),
                    header("x-hub-signature-256"),
                    body,
                ));
            }
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// The next delivery of `event`, passing over others; fails after a deadline.
async fn next_of(rx: &mut mpsc::UnboundedReceiver<Received>, event: &str) -> Received {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(got)) if got.0 == event => return got,
            Ok(Some(other)) => seen.push(other.0),
            _ => panic!("no {event} delivery; saw {seen:?}"),
        }
    }
}

#[tokio::test]
async fn each_follow_up_event_is_delivered_signed_and_names_the_pull_request() {
    let (github, client) = setup(&[REPO]).await;
    let (url, mut rx) = receiver().await;
    github.deliver_to(REPO, &url, SECRET);
    github.set_role(REPO, "writer", "write");
    let pr = github.add_issue(REPO, NewIssue::new("x").pull_request("feature"));
    let secret = WebhookSecret::new(SECRET)
        .unwrap()
        .with_pull_heads(client.pull_heads());
    let task = |got: &Received| affected_task(&secret, Some(&got.0), Some(&got.1), &got.2);

    github.set_check(REPO, pr.number(), FakeCheck::failed("test"));
    let got = next_of(&mut rx, "check_run").await;
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));

    github.comment_on_pull(REPO, pr.number(), "writer", "/agent fix");
    let got = next_of(&mut rx, "issue_comment").await;
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));

    github.review_comment(REPO, pr.number(), "writer", "a.rs", 3, "/agent here");
    let got = next_of(&mut rx, "pull_request_review_comment").await;
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));

    // A status names a commit: the pull request whose head it is, once read.
    github.add_status(REPO, pr.number(), "ci/jenkins", "failure", "red");
    let got = next_of(&mut rx, "status").await;
    let unknown = WebhookSecret::new(SECRET).unwrap();
    assert_eq!(
        affected_task(&unknown, Some(&got.0), Some(&got.1), &got.2).unwrap(),
        None
    );
    let repo: RepoName = REPO.parse().unwrap();
    client.pull_status(&repo, pr.number(), &[]).await.unwrap();
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));

    // A push: the pull request is synchronized and CI's suite completes.
    github.set_ci(REPO, |_| FakeCheck::passed("build"));
    github.commit_to_branch(REPO, "feature", "a.rs", "fixed");
    let got = next_of(&mut rx, "pull_request").await;
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));
    let got = next_of(&mut rx, "check_suite").await;
    assert_eq!(task(&got).unwrap(), Some(pr.clone()));

    // Signed with another secret: refused.
    let other = WebhookSecret::new("not the secret").unwrap();
    let err = affected_task(&other, Some(&got.0), Some(&got.1), &got.2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    // The fake records each delivery and the receiver's answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while github.deliveries().len() < 7 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = github.deliveries();
    assert!(delivered.len() >= 7, "{delivered:?}");
    assert!(
        delivered.iter().all(|(_, status)| *status == 202),
        "{delivered:?}"
    );
}

#[test]
fn a_comment_on_an_issue_or_a_check_without_a_pull_request_polls_nothing() {
    let s = WebhookSecret::new(SECRET).unwrap();
    let on_issue = br#"{"action":"created","issue":{"number":4},"comment":{"id":1},
        "repository":{"full_name":"acme/widgets"}}"#;
    let sig = sign(&s, on_issue);
    assert_eq!(
        affected_task(&s, Some("issue_comment"), Some(&sig), on_issue).unwrap(),
        None
    );
    let on_pull = br#"{"action":"created","issue":{"number":4,"pull_request":{"url":"u"}},
        "repository":{"full_name":"acme/widgets"}}"#;
    assert_eq!(
        parse_event(Some("issue_comment"), on_pull).unwrap(),
        Some(TaskId::new(REPO, 4).unwrap())
    );
    let branch_only =
        br#"{"action":"completed","check_suite":{"head_sha":"abc","pull_requests":[]},
        "repository":{"full_name":"acme/widgets"}}"#;
    assert_eq!(parse_event(Some("check_suite"), branch_only).unwrap(), None);
    let err = parse_event(Some("check_run"), b"{}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}
