//! What the composite adds to its members: routing by forge, one listing of all,
//! answers put back in order, and each forge's health apart.

use std::sync::Arc;

use super::Forges;
use crate::error::ErrorKind;
use crate::faults::{Faults, Faulty};
use crate::memory::MemoryIssueSource;
use crate::model::{TaskId, Timestamp};
use crate::source::{IssueSource, Labels};

struct Two {
    github: Arc<MemoryIssueSource>,
    gitlab: Arc<Faulty<MemoryIssueSource>>,
    both: Forges,
}

fn two() -> Two {
    let github = Arc::new(MemoryIssueSource::new(Labels::default()));
    let gitlab = Arc::new(Faulty::new(
        MemoryIssueSource::new(Labels::default()),
        Faults::default(),
    ));
    let both = Forges::new()
        .with("github", github.clone())
        .with("gitlab", gitlab.clone());
    Two {
        github,
        gitlab,
        both,
    }
}

fn id(s: &str) -> TaskId {
    s.parse().expect("valid id")
}

#[tokio::test]
async fn each_call_goes_to_the_forge_its_issue_names() {
    let t = two();
    let (hub, lab) = (id("acme/widgets#1"), id("gitlab:group/sub/project#1"));
    t.github
        .open_issue(hub.clone(), "Hub", &["ai-ready"], Timestamp(1));
    t.gitlab
        .inner()
        .open_issue(lab.clone(), "Lab", &["ai-ready"], Timestamp(2));

    t.both
        .add_labels(&lab, &["ai-in-progress".into()])
        .await
        .unwrap();
    t.both.comment(&hub, "m", "hello").await.unwrap();

    let on_lab = t.gitlab.inner().issue(&lab).unwrap();
    assert!(on_lab.labels.contains(&"ai-in-progress".to_string()));
    assert!(on_lab.comments.is_empty(), "the comment went to GitLab");
    let on_hub = t.github.issue(&hub).unwrap();
    assert_eq!(on_hub.comments.len(), 1);
    assert!(!on_hub.labels.contains(&"ai-in-progress".to_string()));
    assert!(t.both.issue_state(&lab).await.unwrap().open);
}

#[tokio::test]
async fn a_listing_merges_every_forge() {
    let t = two();
    let (hub, lab) = (id("acme/widgets#1"), id("gitlab:group/sub/project#7"));
    t.github
        .open_issue(hub.clone(), "Hub", &["ai-ready"], Timestamp(1));
    t.gitlab
        .inner()
        .open_issue(lab.clone(), "Lab", &["ai-ready"], Timestamp(2));
    let mut listed: Vec<TaskId> = t
        .both
        .list_ready()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    listed.sort();
    assert_eq!(listed, vec![hub, lab]);
}

#[tokio::test]
async fn one_forge_failing_fails_the_listing_and_its_health_says_which() {
    let t = two();
    t.github
        .open_issue(id("acme/widgets#1"), "Hub", &["ai-ready"], Timestamp(1));
    let health = t.both.health();
    t.gitlab.faults().fail_next(1);

    let e = t.both.list_ready().await.expect_err("never a partial list");
    assert!(e.message().starts_with("gitlab: "), "{e}");
    let seen = health.borrow().clone();
    assert!(seen["github"].connected);
    assert!(!seen["gitlab"].connected);
    assert!(seen["gitlab"].reason.is_some());

    assert_eq!(t.both.list_ready().await.unwrap().len(), 1);
    assert!(health.borrow()["gitlab"].connected, "healthy again");
}

#[tokio::test]
async fn provenance_asks_each_forge_once_and_answers_in_order() {
    let t = two();
    let ids = [
        id("gitlab:group/sub/project#1"),
        id("acme/widgets#1"),
        id("gitlab:group/sub/project#2"),
        id("acme/widgets#2"),
    ];
    for (n, i) in ids.iter().enumerate() {
        let login = format!("person-{n}");
        match i.repo_name().forge() {
            "gitlab" => {
                let m = t.gitlab.inner();
                m.open_issue(i.clone(), "x", &[], Timestamp(1));
                m.label_as(i, &["ai-ready"], &login, n % 2 == 0, Timestamp(2));
            }
            _ => {
                t.github.open_issue(i.clone(), "x", &[], Timestamp(1));
                t.github
                    .label_as(i, &["ai-ready"], &login, n % 2 == 0, Timestamp(2));
            }
        }
    }
    let asked = [ids.to_vec(), vec![id("gitlab:group/sub/project#99")]].concat();
    let got = t.both.provenance(&asked, false).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (n, answer) in got.iter().take(4).enumerate() {
        let p = answer.as_ref().expect("answered");
        assert_eq!(p.labelled_by.login, format!("person-{n}"));
        assert_eq!(p.labelled_by.may_approve, n % 2 == 0);
    }
    let unknown = got[4].as_ref().expect_err("no such issue");
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn an_issue_of_a_forge_without_a_source_is_not_found() {
    let only_github = Forges::new().with(
        "github",
        Arc::new(MemoryIssueSource::new(Labels::default())),
    );
    let lab = id("gitlab:group/project#1");
    let e = only_github.issue_state(&lab).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("gitlab"), "{e}");
    let answers = only_github.provenance(&[lab], false).await.unwrap();
    assert_eq!(answers[0].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
}
