//! Notifications with the real binaries: the fake GitHub, `scrum-orchestrator` on
//! SQLite, a `scrum-worker`, and local stand-ins for Slack, Discord and a signed
//! JSON webhook. Each event reaches each target once, in its shape, across a
//! SIGKILL of the orchestrator mid-send and a restart; a 429's `Retry-After` is
//! honoured; a dead webhook never delays a label.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use scrum_bins::fleet::{Fleet, IssueProgress};
use serde_json::Value;

const SECRET: &str = "a-test-secret-of-some-length";

/// How the Slack stand-in answers its next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Holds the request open until the test says otherwise (a slow Slack).
    Hang,
    /// Answers 429 with `Retry-After: 1`, then goes to `Accept`.
    TooMany,
    /// Answers 200.
    Accept,
    /// Answers 500, always.
    Dead,
}

/// One request a stand-in accepted.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Log {
    accepted: Vec<Received>,
    /// Every request that arrived, accepted or not, by path, with when.
    arrived: Vec<(String, Instant)>,
    /// When the 429 was sent.
    too_many_at: Option<Instant>,
    slack: Option<Mode>,
    /// Discord and the webhook hang too, until released.
    hang_others: bool,
}

#[derive(Clone)]
struct StandIn {
    log: Arc<Mutex<Log>>,
    release: Arc<tokio::sync::Notify>,
}

async fn receive(
    State(s): State<StandIn>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let mode = {
        let mut log = s.log.lock().unwrap();
        log.arrived.push((path.clone(), Instant::now()));
        match path.as_str() {
            "/slack" => log.slack.unwrap_or(Mode::Accept),
            _ if log.hang_others => Mode::Hang,
            _ => Mode::Accept,
        }
    };
    match mode {
        Mode::Hang => {
            s.release.notified().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Mode::TooMany => {
            let mut log = s.log.lock().unwrap();
            log.too_many_at = Some(Instant::now());
            log.slack = Some(Mode::Accept);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        Mode::Dead => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Accept => {}
    }
    s.log.lock().unwrap().accepted.push(Received {
        path,
        at: Instant::now(),
        headers,
        body,
    });
    StatusCode::OK.into_response()
}

async fn stand_in(slack: Mode) -> (String, StandIn) {
    let s = StandIn {
        log: Arc::new(Mutex::new(Log {
            slack: Some(slack),
            ..Log::default()
        })),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let app = Router::new()
        .route("/slack", post(receive))
        .route("/discord", post(receive))
        .route("/hook", post(receive))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, s)
}

/// Waits until `done` holds, looking every 50 ms; fails with `what` after `limit`.
async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn accepted(s: &StandIn, path: &str) -> Vec<Received> {
    s.log
        .lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|r| r.path == path)
        .cloned()
        .collect()
}

fn json(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

async fn fleet(dir: &Path, issues: &[(&str, &str)], url: &str) -> Fleet {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let mut fleet = Fleet::prepare(dir, bin_dir, issues).await.unwrap();
    fleet.set_env("SLACK_WEBHOOK_URL", &format!("{url}/slack"));
    fleet.set_env("DISCORD_WEBHOOK_URL", &format!("{url}/discord"));
    fleet.set_env("NOTIFY_WEBHOOK_URL", &format!("{url}/hook"));
    fleet.set_env("NOTIFY_WEBHOOK_SECRET", SECRET);
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_each_target_once_across_a_crash_and_a_429() {
    let dir = tempfile::tempdir().unwrap();
    let (url, s) = stand_in(Mode::Hang).await;
    let issues = [
        ("acme/api", "Add an endpoint"),
        ("acme/api", "Rewrite everything [always-fails]"),
    ];
    let mut fleet = fleet(dir.path(), &issues, &url).await;
    // A restart may look like a lost worker to nobody: count only the outcomes.
    fleet.set_env("NOTIFY_EVENTS", "completed,failed");
    fleet.start_orchestrator().await.unwrap();
    fleet.start_worker("worker-1").unwrap();

    // The first message to each target hangs in flight: crash the orchestrator
    // then. (A message a target took in the instant before the crash, before the
    // store heard of it, may be sent again: that window is not what this tests.)
    s.log.lock().unwrap().hang_others = true;
    until(
        "a request in flight to each target",
        Duration::from_secs(90),
        || {
            let log = s.log.lock().unwrap();
            ["/slack", "/discord", "/hook"]
                .iter()
                .all(|t| log.arrived.iter().any(|(p, _)| p == t))
        },
    )
    .await;
    fleet.kill_orchestrator();
    {
        let mut log = s.log.lock().unwrap();
        log.slack = Some(Mode::TooMany);
        log.hang_others = false;
    }
    s.release.notify_waiters();
    fleet.start_orchestrator().await.unwrap();

    fleet
        .wait_for("both issues to finish", Duration::from_secs(120), || {
            fleet.finished()
        })
        .await;
    until("every notification", Duration::from_secs(60), || {
        ["/slack", "/discord", "/hook"]
            .iter()
            .all(|p| accepted(&s, p).len() >= 2)
    })
    .await;
    // Every notification acknowledged: nothing is left to be sent twice.
    let client = scrum_http::OrchestratorClient::new(&fleet.url()).unwrap();
    let start = Instant::now();
    loop {
        let metrics = client.metrics().await.unwrap_or_default();
        if metrics.lines().any(|l| l == "scrum_outbox_pending 0") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the outbox did not drain:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.stop();

    let (completed, failed) = (fleet.issues[0].to_string(), fleet.issues[1].to_string());
    assert_eq!(fleet.progress()[0].1, IssueProgress::Completed);
    assert_eq!(fleet.progress()[1].1, IssueProgress::Failed);

    // Slack: Block Kit, one message per event, paced, the 429 waited out.
    let slack = accepted(&s, "/slack");
    let texts: Vec<String> = slack
        .iter()
        .map(|r| json(r)["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slack.len(), 2, "one Slack message per event: {texts:?}");
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains(&format!("{completed} completed")))
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains(&format!("{failed} failed for good")))
            .count(),
        1,
        "{texts:?}"
    );
    for r in &slack {
        let body = json(r);
        assert_eq!(body["blocks"][0]["type"], "section", "{body}");
        assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn", "{body}");
    }
    let too_many = s
        .log
        .lock()
        .unwrap()
        .too_many_at
        .expect("the stand-in sent a 429");
    assert!(
        slack[0].at.duration_since(too_many) >= Duration::from_millis(950),
        "the message after the 429 came {:?} after it (Retry-After: 1)",
        slack[0].at.duration_since(too_many)
    );
    assert!(
        slack[1].at.duration_since(slack[0].at) >= Duration::from_millis(950),
        "Slack messages are a second apart"
    );

    // Discord: embeds.
    let discord = accepted(&s, "/discord");
    assert_eq!(discord.len(), 2);
    for r in &discord {
        let embed = &json(r)["embeds"][0];
        assert!(
            embed["title"].as_str().unwrap().starts_with("acme/api#"),
            "{embed}"
        );
        assert!(embed["color"].is_u64(), "{embed}");
    }

    // The JSON webhook: signed, one delivery per event.
    let hook = accepted(&s, "/hook");
    assert_eq!(hook.len(), 2);
    let mut events = Vec::new();
    for r in &hook {
        let signature = r.headers["x-scrum-signature"].to_str().unwrap();
        assert_eq!(signature, scrum_http::notify::signature(SECRET, &r.body));
        let body = json(r);
        assert_eq!(r.headers["x-scrum-event"].to_str().unwrap(), body["event"]);
        events.push((
            body["task_id"].as_str().unwrap().to_string(),
            body["event"].as_str().unwrap().to_string(),
        ));
    }
    events.sort();
    assert_eq!(
        events,
        [
            (completed, "completed".to_string()),
            (failed, "failed".to_string())
        ]
    );

    // No URL leaked into the logs.
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap();
    assert!(!log.contains(&url), "a webhook URL is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_never_delays_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let (url, s) = stand_in(Mode::Dead).await;
    let issues = [
        ("acme/api", "Add an endpoint"),
        ("acme/api", "Handle the flaky import [fails-once]"),
    ];
    let mut fleet = fleet(dir.path(), &issues, &url).await;
    fleet.start_orchestrator().await.unwrap();
    fleet.start_worker("worker-1").unwrap();
    fleet
        .wait_for("both issues to complete", Duration::from_secs(90), || {
            fleet
                .progress()
                .iter()
                .all(|(_, p)| *p == IssueProgress::Completed)
        })
        .await;
    // Slack kept failing all along; the other targets got theirs.
    until(
        "the other targets' notifications",
        Duration::from_secs(30),
        || accepted(&s, "/discord").len() >= 2 && accepted(&s, "/hook").len() >= 2,
    )
    .await;
    let log_path = fleet.log("orchestrator");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    until(
        "the Slack failure to be logged",
        Duration::from_secs(30),
        || log().contains("notification not sent; will retry"),
    )
    .await;
    fleet.stop();
    let tried = s
        .log
        .lock()
        .unwrap()
        .arrived
        .iter()
        .filter(|(p, _)| p == "/slack")
        .count();
    assert!(tried >= 4, "the dead Slack was tried, and retried: {tried}");
    assert!(accepted(&s, "/slack").is_empty());
    assert!(!log().contains(&url), "a webhook URL is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_sends_a_test_message_to_each_target() {
    let (url, s) = stand_in(Mode::Accept).await;
    let bin = env!("CARGO_BIN_EXE_scrum-orchestrator");
    let out = tokio::process::Command::new(bin)
        .args(["notify", "test"])
        .env("SLACK_WEBHOOK_URL", format!("{url}/slack"))
        .env("DISCORD_WEBHOOK_URL", format!("{url}/discord"))
        .env("NOTIFY_WEBHOOK_URL", format!("{url}/hook"))
        .env("NOTIFY_WEBHOOK_SECRET", SECRET)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "slack: sent\ndiscord: sent\nwebhook: sent\n");
    for path in ["/slack", "/discord", "/hook"] {
        assert_eq!(accepted(&s, path).len(), 1, "{path}");
    }
    assert_eq!(json(&accepted(&s, "/hook")[0])["event"], "test");
    assert!(
        json(&accepted(&s, "/slack")[0])["text"]
            .as_str()
            .unwrap()
            .contains("Test message")
    );

    // Nothing configured: a clear error, not a silent success.
    let out = tokio::process::Command::new(bin)
        .args(["notify", "test"])
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("DISCORD_WEBHOOK_URL")
        .env_remove("NOTIFY_WEBHOOK_URL")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no notification target is configured"));

    // A URL without its signing key is refused.
    let out = tokio::process::Command::new(bin)
        .args(["notify", "test"])
        .env("NOTIFY_WEBHOOK_URL", format!("{url}/hook"))
        .env_remove("NOTIFY_WEBHOOK_SECRET")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOTIFY_WEBHOOK_SECRET"));
}
