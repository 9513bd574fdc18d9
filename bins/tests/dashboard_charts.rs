//! The dashboard's charts in a real browser (headless `chromium` over WebDriver)
//! against the real `scrum-orchestrator` binary and the fake GitHub. This test is
//! the worker: it claims, completes and fails tasks over the API, with costs, in
//! two repositories.
//!
//! It checks what an operator sees: the overview's charts drawn with the run's
//! figures (completions per hour, cost per day per repository, the queue's depth
//! and the busy workers), painted in their colours on screen; the charts following
//! a completion on the open page without a reload; a task waiting for its retry
//! saying when it runs again on the queue; and a task's page drawing its attempts
//! on a time axis, the next one appearing live; the charts fitting a phone's
//! screen. Screenshots go under the target directory (`dashboard/charts-*.png`)
//! and are checked not blank.

mod browser;

use std::path::Path;
use std::time::Duration;

use browser::{Driver, element_screenshot, eventually, live, number, screenshot, text};
use fantoccini::Client;
use scrum_bins::fleet::Fleet;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{CompleteRequest, FailedRequest, LeaseMode, TaskRef, WorkItem};
use serde_json::json;

const WORKER: &str = "scripted-worker";

async fn claim(api: &OrchestratorClient) -> WorkItem {
    api.next_work(WORKER, Duration::from_secs(10), LeaseMode::RunTime)
        .await
        .unwrap()
        .expect("a task to claim")
}

fn task_ref(w: &WorkItem) -> TaskRef {
    TaskRef {
        worker_id: WORKER.into(),
        issue_number: w.issue_number,
        repository: Some(w.repository.clone()),
        lease_token: Some(w.lease_token.clone()),
    }
}

/// Claims the next task, checks it is `expect`, and completes it at `cost_usd`.
async fn complete_next(api: &OrchestratorClient, expect: &str, cost_usd: f64) {
    let work = claim(api).await;
    assert_eq!(work.task_id, expect);
    let report = CompleteRequest {
        task: task_ref(&work),
        pr_url: Some(format!("https://github.com/{}/pull/1", work.repository)),
        success: true,
        error: None,
        cost_usd: Some(cost_usd),
        tokens: Some(1000),
        revisions: None,
    };
    api.complete(&report).await.unwrap();
}

/// The sum of the `data-value`s of the elements `css` finds.
async fn total(c: &Client, css: &str) -> Result<f64, String> {
    let script = "return [...document.querySelectorAll(arguments[0])]\
                  .reduce((sum, e) => sum + Number(e.dataset.value), 0);";
    number(c, script, vec![json!(css)]).await
}

/// The `data-peak` of the load chart's `series`.
async fn peak(c: &Client, series: &str) -> Result<f64, String> {
    let script = "const p = document.querySelector(\
                  `#chart-load path[data-series=\"${arguments[0]}\"]`); \
                  return p ? Number(p.dataset.peak) : null;";
    number(c, script, vec![json!(series)]).await
}

/// The `data-outcome` of each bar of the task page's attempt chart, in order.
async fn attempt_bars(c: &Client) -> Result<Vec<String>, String> {
    let script = "return [...document.querySelectorAll('#attempt-chart rect[data-outcome]')]\
                  .map(r => r.dataset.outcome);";
    let v = c.execute(script, vec![]).await.map_err(|e| e.to_string())?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// The colours the stylesheet gives completions and the first two repositories.
const GREEN: [u8; 3] = [0x1f, 0x7a, 0x3a];
const BLUE: [u8; 3] = [0x24, 0x57, 0xc5];
const ORANGE: [u8; 3] = [0xc2, 0x41, 0x0c];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_draw_the_run_and_follow_it_live() {
    let dir = tempfile::tempdir().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    // Claimed in this order. (One repository's issues side by side: the fleet
    // sets up a repository once per run of equal names.)
    let issues = [
        ("acme/gadgets", "Polish the gadget"),
        ("acme/widgets", "Add the widget export"),
        ("acme/widgets", "Speed up the importer"),
        ("acme/widgets", "Fix the flaky exporter"),
    ];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    let ids: Vec<String> = fleet.issues.iter().map(ToString::to_string).collect();
    fleet.start_orchestrator().await.unwrap();
    let url = fleet.url();
    let api = OrchestratorClient::new(&url).unwrap();
    eventually(
        "the four issues queued",
        Duration::from_secs(20),
        || async {
            let h = api.health().await.map_err(|e| e.to_string())?;
            (h.queue.pending == 4)
                .then_some(())
                .ok_or(format!("{:?}", h.queue))
        },
    )
    .await;
    complete_next(&api, &ids[0], 1.5).await;
    complete_next(&api, &ids[1], 0.42).await;

    let driver = Driver::start(&dir.path().join("logs"));
    let c = driver.session(&dir.path().join("chromium")).await;
    c.goto(&format!("{url}/ui")).await.unwrap();
    // The run's figures, in the charts the server drew.
    let completed = "#chart-outcomes rect[data-series=completed]";
    assert_eq!(total(&c, completed).await.unwrap(), 2.0);
    assert_eq!(
        total(&c, "#chart-cost rect[data-series='acme/gadgets']")
            .await
            .unwrap(),
        1.5
    );
    let widgets = "#chart-cost rect[data-series='acme/widgets']";
    assert_eq!(total(&c, widgets).await.unwrap(), 0.42);
    let legend = text(&c, "#chart-cost .legend").await.unwrap();
    assert!(
        legend.starts_with("acme/gadgets $1.50") && legend.contains("acme/widgets $0.42"),
        "the costliest first: {legend}"
    );
    assert_eq!(peak(&c, "waiting").await.unwrap(), 4.0);
    assert_eq!(peak(&c, "busy workers").await.unwrap(), 1.0);
    assert!(
        text(&c, "#chart-load .legend")
            .await
            .unwrap()
            .contains("2 now")
    );
    // Painted: the completions' green bars, each repository's colour.
    let bars = element_screenshot(&c, "#chart-outcomes", &shots, "charts-outcomes").await;
    assert!(
        bars.count(GREEN) > 100,
        "{} green pixels",
        bars.count(GREEN)
    );
    let cost = element_screenshot(&c, "#chart-cost", &shots, "charts-cost").await;
    assert!(
        cost.count(BLUE) > 50 && cost.count(ORANGE) > 20,
        "repositories' colours"
    );

    // A completion reaches the open page's charts without a reload.
    c.execute("window.stillThisPage = 'yes'; return null;", vec![])
        .await
        .unwrap();
    live(&c).await;
    complete_next(&api, &ids[2], 0.2).await;
    eventually(
        "the third completion charted",
        Duration::from_secs(5),
        || async {
            let (done, spent) = (total(&c, completed).await?, total(&c, widgets).await?);
            (done == 3.0 && (spent - 0.62).abs() < 1e-9)
                .then_some(())
                .ok_or(format!("{done} completed, ${spent} for acme/widgets"))
        },
    )
    .await;
    let mark = c.execute("return window.stillThisPage || null;", vec![]);
    assert_eq!(mark.await.unwrap(), json!("yes"), "the page was reloaded");
    screenshot(&c, &shots, "charts-overview").await;

    // A failed attempt: the task waits for its retry, and the queue says until when.
    let work = claim(&api).await;
    assert_eq!(work.task_id, ids[3]);
    let failure = FailedRequest {
        task: task_ref(&work),
        error: "the exporter's test timed out".into(),
        retryable: Some(true),
        cost_usd: Some(0.1),
        tokens: None,
    };
    api.failed(&failure).await.unwrap();
    c.goto(&format!("{url}/ui/queue")).await.unwrap();
    let rows = text(&c, "#tasks tbody").await.unwrap();
    assert!(rows.contains("waiting for its retry: retry at"), "{rows}");

    // Its page draws the failed attempt on a time axis; the next one appears live.
    let (repo, number) = ids[3].split_once('#').unwrap();
    c.goto(&format!("{url}/ui/tasks/{repo}/{number}"))
        .await
        .unwrap();
    assert_eq!(attempt_bars(&c).await.unwrap(), ["failed"]);
    live(&c).await;
    complete_next(&api, &ids[3], 0.3).await;
    eventually(
        "the second attempt drawn",
        Duration::from_secs(5),
        || async {
            let bars = attempt_bars(&c).await?;
            (bars == ["failed", "completed"])
                .then_some(())
                .ok_or(format!("{bars:?}"))
        },
    )
    .await;
    let lanes = element_screenshot(&c, "#attempt-chart", &shots, "charts-attempts").await;
    assert!(lanes.count(GREEN) > 50, "the completed attempt's bar");
    screenshot(&c, &shots, "charts-task").await;

    // On a phone's screen the charts fit: nothing wider than the window.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{url}/ui")).await.unwrap();
    let wide = c.execute(
        "return document.documentElement.scrollWidth > window.innerWidth + 1;",
        vec![],
    );
    assert_eq!(
        wide.await.unwrap(),
        json!(false),
        "the overview is wider than a phone"
    );
    screenshot(&c, &shots, "charts-phone").await;
    c.close().await.unwrap();
    fleet.stop();
}
