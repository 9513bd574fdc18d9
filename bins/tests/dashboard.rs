//! The dashboard in a real browser: Debian's `chromium`, driven over WebDriver
//! (`chromedriver`, started here on a free port) from fantoccini, against the real
//! `scrum-orchestrator` binary and the fake GitHub. This test is the worker: it
//! claims, completes and fails tasks over the API, so it knows when each change
//! happens.
//!
//! It checks what an operator sees: the counts on the overview; a completion
//! reaching the open page within 2 s without a reload; Retry on a failed task
//! queuing it again (read back from the API); Cancel asking first; an issue
//! depending on an open one shown blocked, with its blocker, on the queue
//! filtered to blocked tasks and on its page; with an API
//! token, the login and a wrong token refused. Screenshots of the overview, of a
//! task page and of the queue on a phone-sized window are written under the target
//! directory (`dashboard/`) and checked not blank.
//!
//! Needs `chromium` and `chromium-driver` (`scripts/services.sh` installs them);
//! without them the test fails, saying so.

mod browser;

use std::path::Path;
use std::time::{Duration, Instant};

use browser::{Driver, click, click_to, eventually, live, path, screenshot, text};
use fantoccini::Locator;
use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{
    CompleteRequest, FailedRequest, LeaseMode, QueueEntry, QueueQuery, TaskRef, WorkItem,
};
use serde_json::json;

const TOKEN: &str = "dashboard-browser-test-token";

/// A task as `/queue` lists it.
async fn listed(api: &OrchestratorClient, id: &TaskId) -> Option<QueueEntry> {
    let q = api.queue(&QueueQuery::default()).await.ok()?;
    let lists = [q.pending, q.in_progress, q.completed, q.failed, q.cancelled];
    lists
        .into_iter()
        .flatten()
        .find(|e| e.task_id == id.to_string())
}

async fn claim(api: &OrchestratorClient) -> WorkItem {
    api.next_work(
        "scripted-worker",
        Duration::from_secs(5),
        LeaseMode::RunTime,
    )
    .await
    .unwrap()
    .expect("a task to claim")
}

fn task_ref(w: &WorkItem) -> TaskRef {
    TaskRef {
        worker_id: "scripted-worker".into(),
        issue_number: w.issue_number,
        repository: Some(w.repository.clone()),
        lease_token: Some(w.lease_token.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_and_acts_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [
        ("acme/widgets", "Add the widget export"),
        ("acme/widgets", "Fix the flaky importer"),
        ("acme/widgets", "Document the widget API"),
    ];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    let (done, broken, waiting) = (
        fleet.issues[0].clone(),
        fleet.issues[1].clone(),
        fleet.issues[2].clone(),
    );
    fleet.start_orchestrator().await.unwrap();
    let url = fleet.url();
    let api = OrchestratorClient::new(&url).unwrap();
    eventually(
        "the three issues queued",
        Duration::from_secs(20),
        || async {
            let h = api.health().await.map_err(|e| e.to_string())?;
            (h.queue.pending == 3)
                .then_some(())
                .ok_or(format!("{:?}", h.queue))
        },
    )
    .await;

    let driver = Driver::start(&dir.path().join("logs"));
    let c = driver.session(&dir.path().join("chromium")).await;

    // The overview shows the counts.
    c.goto(&format!("{url}/ui")).await.unwrap();
    assert_eq!(text(&c, "#count-pending .n").await.unwrap(), "3");
    assert_eq!(text(&c, "#count-completed .n").await.unwrap(), "0");
    // A mark that a reload would wipe.
    c.execute("window.stillThisPage = 'yes'; return null;", vec![])
        .await
        .unwrap();
    // Live: the page waits on its event stream.
    live(&c).await;

    // A task completes; the open page shows it within 2 s, without a reload.
    let work = claim(&api).await;
    assert_eq!(work.task_id, done.to_string());
    let report = CompleteRequest {
        task: task_ref(&work),
        pr_url: Some("https://github.com/acme/widgets/pull/7".into()),
        success: true,
        error: None,
        cost_usd: Some(0.42),
        tokens: Some(1234),
        revisions: None,
    };
    api.complete(&report).await.unwrap();
    let reported = Instant::now();
    eventually(
        "the completion on the open page",
        Duration::from_secs(2),
        || async {
            let n = text(&c, "#count-completed .n").await?;
            (n == "1")
                .then_some(())
                .ok_or(format!("completed shows {n}"))
        },
    )
    .await;
    let shown_after = reported.elapsed();
    let mark = c
        .execute("return window.stillThisPage || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!("yes"), "the page was reloaded");
    assert_eq!(text(&c, "#count-pending .n").await.unwrap(), "2");
    eprintln!("the completion showed on the open overview {shown_after:?} after the report");
    let overview = screenshot(&c, &shots, "overview").await;

    // A task fails for good; Retry from its page queues it again.
    let work = claim(&api).await;
    assert_eq!(work.task_id, broken.to_string());
    let failure = FailedRequest {
        task: task_ref(&work),
        error: "the importer's tests fail".into(),
        retryable: Some(false),
        cost_usd: None,
        tokens: None,
    };
    api.failed(&failure).await.unwrap();
    let page = format!("{url}/ui/tasks/{}/{}", broken.repo(), broken.number());
    c.goto(&page).await.unwrap();
    assert!(
        text(&c, "#failure")
            .await
            .unwrap()
            .contains("the importer's tests fail")
    );
    let task_shot = screenshot(&c, &shots, "task").await;
    click_to(&c, "button[data-action=retry]", "/ui/confirm").await;
    assert!(text(&c, "h1").await.unwrap().starts_with("Retry"));
    assert_eq!(
        listed(&api, &broken).await.unwrap().state,
        "failed",
        "retried before confirming"
    );
    let broken_page = format!("/ui/tasks/{}/{}", broken.repo(), broken.number());
    click_to(&c, "#confirm", &broken_page).await;
    assert!(text(&c, ".notice").await.unwrap().contains("queued again"));
    let entry = listed(&api, &broken).await.unwrap();
    assert_eq!((entry.state.as_str(), entry.attempts), ("pending", 0));
    // The new run is ready on GitHub again, and a poll after that leaves it queued.
    eventually(
        "the ready label back on the retried issue",
        Duration::from_secs(10),
        || async {
            let labels = fleet.github.labels(&broken);
            labels
                .iter()
                .any(|l| l == "ai-ready")
                .then_some(())
                .ok_or(format!("{labels:?}"))
        },
    )
    .await;
    let last_poll = || async { api.health().await.ok().and_then(|h| h.github?.last_poll) };
    let before = last_poll().await;
    eventually(
        "a poll after the relabel",
        Duration::from_secs(10),
        || async {
            let now = last_poll().await;
            (now > before).then_some(()).ok_or(format!("{now:?}"))
        },
    )
    .await;
    assert_eq!(
        listed(&api, &broken).await.unwrap().state,
        "pending",
        "the poll cancelled the retry"
    );

    // Cancel asks first: going back leaves the task as it was.
    let page = format!("{url}/ui/tasks/{}/{}", waiting.repo(), waiting.number());
    c.goto(&page).await.unwrap();
    click_to(&c, "button[data-action=cancel]", "/ui/confirm").await;
    assert_eq!(text(&c, "h1").await.unwrap(), format!("Cancel {waiting}?"));
    let waiting_page = format!("/ui/tasks/{}/{}", waiting.repo(), waiting.number());
    click_to(&c, "#back", &waiting_page).await;
    assert_eq!(listed(&api, &waiting).await.unwrap().state, "pending");

    // An issue that depends on the completed one (still open) shows as blocked,
    // with its blocker, on the queue filtered to blocked tasks and on its page.
    let dependent = fleet.github.add_issue(
        "acme/widgets",
        NewIssue::new("Ship the export docs")
            .body(&format!("Depends on #{}", done.number()))
            .labels(&["ai-ready"]),
    );
    eventually(
        "the dependent issue queued and blocked",
        Duration::from_secs(20),
        || async {
            let e = listed(&api, &dependent).await;
            e.as_ref()
                .is_some_and(|e| e.blocked)
                .then_some(())
                .ok_or(format!("{e:?}"))
        },
    )
    .await;
    c.goto(&format!("{url}/ui/queue?state=blocked"))
        .await
        .unwrap();
    let rows = text(&c, "#tasks tbody").await.unwrap();
    assert!(rows.contains(&dependent.to_string()), "{rows}");
    assert!(
        rows.contains(&format!("waiting for {done} to be closed")),
        "{rows}"
    );
    assert!(!rows.contains(&waiting.to_string()), "{rows}");
    let page = format!("{url}/ui/tasks/{}/{}", dependent.repo(), dependent.number());
    c.goto(&page).await.unwrap();
    assert_eq!(
        text(&c, "#blockers").await.unwrap(),
        format!("waiting for {done}")
    );
    screenshot(&c, &shots, "task-blocked").await;

    // On a phone's screen the queue still reads: nothing wider than the window.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{url}/ui/queue")).await.unwrap();
    let wide = c
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        wide,
        json!(false),
        "the queue is wider than a phone's screen"
    );
    screenshot(&c, &shots, "queue-phone").await;
    c.close().await.unwrap();

    // With a token, the pages need the login, and a wrong token is refused.
    fleet.stop_orchestrator_named("orchestrator");
    fleet.set_env("ORCHESTRATOR_API_TOKEN", TOKEN);
    fleet.start_orchestrator().await.unwrap();
    let c = driver.session(&dir.path().join("chromium-2")).await;
    c.goto(&format!("{url}/ui/queue")).await.unwrap();
    assert_eq!(path(&c).await, "/ui/login");
    let login = c.find(Locator::Css("#token")).await.unwrap();
    login.send_keys("not-the-token-at-all").await.unwrap();
    click(&c, "form.login button").await;
    assert_eq!(path(&c).await, "/ui/login");
    assert!(
        text(&c, ".notice")
            .await
            .unwrap()
            .contains("not the API token")
    );
    assert!(
        text(&c, "#tasks").await.is_err(),
        "a wrong token showed the queue"
    );
    let login = c.find(Locator::Css("#token")).await.unwrap();
    login.send_keys(TOKEN).await.unwrap();
    click(&c, "form.login button").await;
    // The answer to the login is a redirect; on a busy machine the browser may
    // still be on its way when the click returns.
    eventually(
        "the queue after the login",
        Duration::from_secs(10),
        || async {
            let now = path(&c).await;
            let notice = text(&c, ".notice").await.unwrap_or_default();
            (now == "/ui/queue")
                .then_some(())
                .ok_or(format!("{now} {notice}"))
        },
    )
    .await;
    assert!(
        text(&c, "#tasks")
            .await
            .unwrap()
            .contains("Add the widget export")
    );
    let current = c.current_url().await.unwrap();
    assert!(
        !current.as_str().contains(TOKEN),
        "the token went into a URL: {current}"
    );
    c.close().await.unwrap();
    fleet.stop();
    eprintln!(
        "screenshots: {} and {}",
        overview.display(),
        task_shot.display()
    );
}
