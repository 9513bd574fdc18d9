//! Authenticating as a GitHub App against the fake acting as one: an installation
//! per owner, each repository read and written with its own installation's token,
//! tokens renewed before they expire (no request refused), each installation paced
//! apart, and tokens for one repository.

mod common;

use std::time::Duration;

use common::*;
use scrum_core::{ErrorKind, IssueSource};
use scrum_github::fake::{FakeGitHub, Fault, NewIssue};
use scrum_github::{GitHubApp, GitHubClient, GitHubConfig};

const WIDGETS: &str = "acme/widgets";
const GADGETS: &str = "globex/gadgets";

/// A fake app installed on `acme` and `globex`, an issue ready in each repository,
/// and a client authenticating as the app.
async fn two_installations() -> (FakeGitHub, GitHubClient, u64, u64) {
    let github = FakeGitHub::start().await;
    let app = github.act_as_app();
    for r in [WIDGETS, GADGETS] {
        github.add_repo(r);
        github.add_issue(r, NewIssue::new("ready").labels(&["ai-ready"]));
    }
    let acme = github.add_installation("acme");
    let globex = github.add_installation("globex");
    let client = GitHubClient::new(app_config(app, &github.url(), &[WIDGETS, GADGETS])).unwrap();
    (github, client, acme, globex)
}

fn app_config(app: GitHubApp, url: &str, names: &[&str]) -> GitHubConfig {
    GitHubConfig::for_app(app, repos(names))
        .unwrap()
        .with_api_url(url)
        .unwrap()
        .with_timing(fast_timing())
}

/// The installation whose token each request to `/repos/{owner}/` carried.
fn installations_used(github: &FakeGitHub, owner: &str) -> Vec<Option<u64>> {
    let prefix = format!("/repos/{owner}/");
    let mut seen: Vec<Option<u64>> = github
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(&prefix) && !r.path.ends_with("/installation"))
        .map(|r| r.installation)
        .collect();
    seen.dedup();
    seen
}

fn refused(github: &FakeGitHub) -> Vec<String> {
    github
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn each_owner_is_read_and_written_with_its_own_installations_token() {
    let (github, client, acme, globex) = two_installations().await;
    assert_ne!(acme, globex);

    client.check().await.unwrap();
    let ready = client.list_ready().await.unwrap();
    assert_eq!(ready.len(), 2);
    for issue in &ready {
        client
            .add_labels(&issue.id, &["ai-in-progress".to_string()])
            .await
            .unwrap();
        assert_eq!(github.labels(&issue.id), ["ai-ready", "ai-in-progress"]);
    }

    assert_eq!(installations_used(&github, "acme"), [Some(acme)]);
    assert_eq!(installations_used(&github, "globex"), [Some(globex)]);
    assert_eq!(refused(&github), Vec::<String>::new());
    // One lookup and one token per installation, however many requests followed.
    assert_eq!(requests_to(&github, "POST", "/app/installations/"), 2);
    let spent = client.points_by_installation();
    let ids: Vec<u64> = spent.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, {
        let mut v = vec![acme, globex];
        v.sort_unstable();
        v
    });
    assert!(spent.iter().all(|(_, rest, _)| *rest >= 3), "{spent:?}");
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_renewed_before_any_request_is_refused() {
    let (github, client, acme, globex) = two_installations().await;
    // Tokens live 2 s; the client renews them when less than 1 s is left.
    github.set_token_lifetime(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let minted = |id: u64| {
        github
            .issued_tokens()
            .iter()
            .filter(|t| t.installation == id)
            .count()
    };
    let mut polls = 0;
    while minted(acme) < 3 || minted(globex) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tokens minted: acme {}, globex {}",
            minted(acme),
            minted(globex)
        );
        assert_eq!(client.list_ready().await.unwrap().len(), 2);
        polls += 1;
        // The pace of a busy orchestrator's polls.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(polls > 10, "{polls} polls");
    assert_eq!(refused(&github), Vec::<String>::new());
    assert!(client.status().is_connected());
}

#[tokio::test]
async fn a_rate_limit_of_one_installation_holds_only_its_own_requests() {
    let (github, client, _, _) = two_installations().await;
    client.check().await.unwrap();
    github.inject_for(
        "GET",
        "/repos/acme/widgets/issues",
        Fault::SecondaryRateLimit {
            retry_after_secs: 3,
        },
    );
    let waiting = {
        let client = client.clone();
        let id = scrum_core::TaskId::new(WIDGETS, 1).unwrap();
        tokio::spawn(async move { client.issue_state(&id).await })
    };
    // Wait until acme's request met its limit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !github.requests().iter().any(|r| r.status == 403) {
        assert!(tokio::time::Instant::now() < deadline, "no rate limit met");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gadgets = scrum_core::TaskId::new(GADGETS, 1).unwrap();
    let state = client.issue_state(&gadgets).await.unwrap();
    assert!(state.open);
    assert!(
        !waiting.is_finished(),
        "globex's request should not wait behind acme's limit"
    );
    assert!(waiting.await.unwrap().unwrap().open);
}

#[tokio::test]
async fn a_repository_token_reaches_that_repository_alone() {
    let (github, client, acme, _) = two_installations().await;
    github.add_repo("acme/other");
    let (token, expires) = client
        .repo_token(&WIDGETS.parse().unwrap())
        .await
        .unwrap()
        .expect("an app mints repository tokens");
    let issued = github.issued_token(&token).unwrap();
    assert_eq!(issued.installation, acme);
    assert_eq!(issued.repositories, Some(vec!["widgets".to_string()]));
    assert_eq!(issued.expires_at_ms, expires.0);

    let with = |repo: &str| {
        let config = GitHubConfig::new(&token, repos(&[repo]))
            .unwrap()
            .with_api_url(&github.url())
            .unwrap()
            .with_timing(fast_timing());
        GitHubClient::new(config).unwrap()
    };
    with(WIDGETS).check().await.unwrap();
    let elsewhere = with("acme/other").check().await.unwrap_err();
    assert_eq!(elsewhere.kind(), ErrorKind::NotFound, "{elsewhere}");
    let other_owner = with(GADGETS).check().await.unwrap_err();
    assert_eq!(other_owner.kind(), ErrorKind::NotFound, "{other_owner}");

    // A personal token mints none.
    let plain = GitHubClient::new(config(&FakeGitHub::start().await, &[WIDGETS])).unwrap();
    assert_eq!(
        plain.repo_token(&WIDGETS.parse().unwrap()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_jwt_of_another_app_and_an_owner_without_installation_are_refused() {
    let github = FakeGitHub::start().await;
    github.act_as_app();
    github.add_repo(WIDGETS);
    github.add_repo(GADGETS);
    github.add_installation("acme");

    let impostor = GitHubApp::from_pem(FakeGitHub::APP_ID + 1, FakeGitHub::APP_KEY_PEM).unwrap();
    let e = GitHubClient::new(app_config(impostor, &github.url(), &[WIDGETS]))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    let app = GitHubApp::from_pem(FakeGitHub::APP_ID, FakeGitHub::APP_KEY_PEM).unwrap();
    let e = GitHubClient::new(app_config(app, &github.url(), &[GADGETS]))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("not installed on globex"), "{e}");

    // Acting as an app, the fake refuses the personal token.
    let e = GitHubClient::new(config(&github, &[WIDGETS]))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}
