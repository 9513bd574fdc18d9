//! `scrum-demo --keep`: once every issue finished, the fleet stays up with its
//! dashboard answering, and Ctrl-C (SIGINT) stops it cleanly. A browser (headless
//! `chromium` over WebDriver, as in the dashboard's tests) opens the kept
//! dashboard and finds the run in its charts. Runs the demo binary as a user does;
//! it needs `scrum-orchestrator` and `scrum-worker` built beside it (`scripts/test`
//! builds every binary of the workspace first), and `chromium` with
//! `chromium-driver` (`scripts/services.sh` installs them).

// The dashboard tests' browser helpers: chromedriver, waits, screenshots.
#[path = "../../../bins/tests/browser/mod.rs"]
mod browser;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// The status line and body of `GET path` on `addr` (`127.0.0.1:PORT`).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("the orchestrator answers");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn keep_leaves_the_dashboard_answering_until_interrupted() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_scrum-demo"))
        .arg("--keep")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut seen = Vec::new();
    let mut addr = None;
    // The demo gives up by itself after 3 minutes, so this read ends.
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("orchestrator API http://") {
            addr = rest.split_whitespace().next().map(str::to_string);
        }
        let up = line.contains("the fleet stays up");
        seen.push(line);
        if up {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("9 of 9 issues completed"), "{text}");
    assert!(
        text.contains("gitlab:demo/lab/tools#1") && text.contains("/-/merge_requests/"),
        "the GitLab issue ends with its merge request: {text}"
    );
    let addr = addr.unwrap_or_else(|| panic!("no API address printed:\n{text}"));

    let (status, page) = get(&addr, "/ui/queue");
    assert!(status.contains(" 200"), "{status}\n{page}");
    assert!(page.contains("completed"), "{page}");
    let (_, queue) = get(&addr, "/queue?limit=100");
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(
        queue["completed"].as_array().map(Vec::len),
        Some(9),
        "{queue}"
    );

    let fails_once = queue["completed"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["title"].as_str().unwrap_or("").contains("[fails-once]"))
        .and_then(|e| e["task_id"].as_str())
        .unwrap_or_else(|| panic!("no [fails-once] issue completed: {queue}"))
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(the_dashboard_charts_the_run(&addr, &fails_once));

    let pid = demo.id().to_string();
    let interrupted = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(interrupted.success());
    // Read on (its last lines), so the demo never writes into a closed pipe.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the orchestrator stopped with it"
    );
}

/// The sum of what `script` maps each element `css` finds to.
async fn sum(c: &fantoccini::Client, css: &str, value: &str) -> f64 {
    let script = format!(
        "return [...document.querySelectorAll(arguments[0])].reduce((s, e) => s + Number({value}), 0);"
    );
    browser::number(c, &script, vec![json!(css)]).await.unwrap()
}

/// A browser on the kept dashboard: the overview charts the nine completions,
/// the cost of the three repositories (two on GitHub, one on GitLab) and the fleet's load; the issue that failed once
/// draws its two attempts. Screenshots go under the target directory (`demo/`).
async fn the_dashboard_charts_the_run(addr: &str, fails_once: &str) {
    let dir = tempfile::tempdir().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = browser::Driver::start(dir.path());
    let c = driver.session(&dir.path().join("chromium")).await;
    c.goto(&format!("http://{addr}/ui")).await.unwrap();
    let bars = "#chart-outcomes rect[data-series=completed]";
    assert_eq!(sum(&c, bars, "e.dataset.value").await, 9.0);
    let failed = "#chart-outcomes rect[data-series=failed]";
    assert_eq!(sum(&c, failed, "e.dataset.value").await, 0.0);
    for repo in ["demo/shop", "demo/blog", "gitlab:demo/lab/tools"] {
        let css = format!("#chart-cost rect[data-series='{repo}']");
        assert!(
            sum(&c, &css, "e.dataset.value").await > 0.0,
            "no cost for {repo}"
        );
    }
    // Three workers took the nine issues: some waited, some ran at once.
    let peak = |s: &str| format!("#chart-load path[data-series='{s}']");
    assert!(sum(&c, &peak("waiting"), "e.dataset.peak").await >= 1.0);
    let busy = sum(&c, &peak("busy workers"), "e.dataset.peak").await;
    assert!((1.0..=3.0).contains(&busy), "{busy} busy workers at most");
    browser::element_screenshot(&c, ".charts", &shots, "charts").await;
    browser::screenshot(&c, &shots, "overview").await;

    let (repo, number) = fails_once.split_once('#').unwrap();
    c.goto(&format!("http://{addr}/ui/tasks/{repo}/{number}"))
        .await
        .unwrap();
    let outcomes = c
        .execute(
            "return [...document.querySelectorAll('#attempt-chart rect[data-outcome]')]\
             .map(r => r.dataset.outcome);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, json!(["failed", "completed"]), "{fails_once}");
    browser::screenshot(&c, &shots, "task").await;
    c.close().await.unwrap();
}
