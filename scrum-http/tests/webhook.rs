//! `POST /webhooks/github` with GitHub's own signature scheme: a signed `issues`
//! event makes the engine poll at once; a forged or unsigned one changes nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use scrum_core::engine::Orchestrator;
use scrum_core::memory::{MemoryIssueSource, MemoryQueue};
use scrum_core::state::Policy;
use scrum_core::{Labels, Timestamp, WorkQueue};
use scrum_github::webhook::{WebhookSecret, sign};
use tower::ServiceExt;

use scrum_http::{ApiConfig, ApiState, app};

const LABELED: &str =
    r#"{"action":"labeled","issue":{"number":7},"repository":{"full_name":"acme/widgets"}}"#;

fn post(event: &str, signature: Option<String>, body: &str) -> Request<Body> {
    let mut req = Request::post("/webhooks/github").header("x-github-event", event);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn a_signed_issue_event_triggers_a_poll_and_a_forged_one_is_refused() {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue.clone(), source.clone()).build();
    let secret = WebhookSecret::new("s3cret").unwrap();
    let config = ApiConfig {
        webhook: Some(Arc::new(WebhookSecret::new("s3cret").unwrap())),
        ..ApiConfig::default()
    };
    let router = app(ApiState::new(orchestrator.clone(), config));

    let forged = router
        .clone()
        .oneshot(post("issues", Some("sha256=00".into()), LABELED))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let unsigned = router
        .clone()
        .oneshot(post("issues", None, LABELED))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let garbage = "{not json";
    let bad = router
        .clone()
        .oneshot(post(
            "issues",
            Some(sign(&secret, garbage.as_bytes())),
            garbage,
        ))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ping = router
        .clone()
        .oneshot(post("ping", Some(sign(&secret, b"{}")), "{}"))
        .await
        .unwrap();
    assert_eq!(ping.status(), StatusCode::OK);

    // A signed event wakes the poll loop, which queues the newly labelled issue.
    source.open_issue(
        "acme/widgets#7".parse().unwrap(),
        "New",
        &["ai-ready"],
        Timestamp(0),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = {
        let o = orchestrator.clone();
        tokio::spawn(async move {
            o.run(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    // The first round polls at start; wait for it, so the event is what triggers the next.
    while orchestrator.reads().status().last_poll.is_none() {
        tokio::task::yield_now().await;
    }
    source.open_issue(
        "acme/widgets#8".parse().unwrap(),
        "Newer",
        &["ai-ready"],
        Timestamp(1),
    );
    let ok = router
        .oneshot(post(
            "issues",
            Some(sign(&secret, LABELED.as_bytes())),
            LABELED,
        ))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    let started = std::time::Instant::now();
    while queue
        .get(&"acme/widgets#8".parse().unwrap())
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the webhook did not trigger a poll"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "queued in well under a second"
    );
    stop.send(()).unwrap();
    engine.await.unwrap();
}

#[tokio::test]
async fn without_a_webhook_secret_the_route_is_off() {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue, source).build();
    let router = app(ApiState::new(orchestrator, ApiConfig::default()));
    let secret = WebhookSecret::new("s3cret").unwrap();
    let resp = router
        .oneshot(post(
            "issues",
            Some(sign(&secret, LABELED.as_bytes())),
            LABELED,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_an_api_token_github_still_reaches_the_webhook_by_its_signature() {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue, source).build();
    let config = ApiConfig {
        token: Some(scrum_http::ApiToken::new("0123456789abcdef0123").unwrap()),
        webhook: Some(Arc::new(WebhookSecret::new("s3cret").unwrap())),
        ..ApiConfig::default()
    };
    let router = app(ApiState::new(orchestrator, config));
    let secret = WebhookSecret::new("s3cret").unwrap();
    let signed = router
        .clone()
        .oneshot(post(
            "issues",
            Some(sign(&secret, LABELED.as_bytes())),
            LABELED,
        ))
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::ACCEPTED);
    let forged = router
        .oneshot(post("issues", Some("sha256=00".into()), LABELED))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

/// GitLab's hook as the route sees it: the secret token arrives as the signature,
/// `X-Gitlab-Event` as the event (the real check is `scrum-gitlab`'s).
struct GitLabToken;

impl scrum_core::IssueEvents for GitLabToken {
    fn affected_task(
        &self,
        d: &scrum_core::Delivery<'_>,
    ) -> scrum_core::Result<Option<scrum_core::TaskId>> {
        if d.signature != Some("lab-s3cret") {
            return Err(scrum_core::Error::new(
                scrum_core::ErrorKind::Unauthorized,
                "wrong X-Gitlab-Token",
            ));
        }
        Ok((d.event == Some("Issue Hook")).then(|| "gitlab:group/sub/project#12".parse().unwrap()))
    }
}

fn post_gitlab(event: &str, token: &str) -> Request<Body> {
    Request::post("/webhooks/gitlab")
        .header("x-gitlab-event", event)
        .header("x-gitlab-token", token)
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn gitlab_deliveries_reach_their_own_route_beside_the_api_token() {
    let source = Arc::new(MemoryIssueSource::new(Labels::default()));
    let queue = Arc::new(MemoryQueue::new(Policy::default()));
    let orchestrator = Orchestrator::builder(queue, source).build();
    let config = ApiConfig {
        token: Some(scrum_http::ApiToken::new("0123456789abcdef0123").unwrap()),
        gitlab_webhook: Some(Arc::new(GitLabToken)),
        ..ApiConfig::default()
    };
    let router = app(ApiState::new(orchestrator.clone(), config));

    let good = router
        .clone()
        .oneshot(post_gitlab("Issue Hook", "lab-s3cret"))
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::ACCEPTED);
    let body = axum::body::to_bytes(good.into_body(), 1 << 16)
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["task_id"], "gitlab:group/sub/project#12");

    let wrong = router
        .clone()
        .oneshot(post_gitlab("Issue Hook", "guess"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let other = router
        .clone()
        .oneshot(post_gitlab("Push Hook", "lab-s3cret"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let github_off = router
        .oneshot(post("issues", Some("sha256=00".into()), LABELED))
        .await
        .unwrap();
    assert_eq!(
        github_off.status(),
        StatusCode::NOT_FOUND,
        "GitHub's is off"
    );

    let off = app(ApiState::new(orchestrator, ApiConfig::default()))
        .oneshot(post_gitlab("Issue Hook", "lab-s3cret"))
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
}
