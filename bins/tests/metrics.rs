//! `/metrics` of the real binary after a scripted run: the fake GitHub, one
//! `scrum-orchestrator` on SQLite and one `scrum-worker` finish 3 issues; the
//! scrape says so (runs, run times, queue waits, dispatch latency, GitHub
//! requests, gauges), and `promtool check metrics` finds nothing wrong with it.
//! The Grafana dashboard's expressions name only metrics this scrape has.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use scrum_bins::fleet::{Fleet, IssueProgress};
use scrum_http::OrchestratorClient;

/// The value of the sample written exactly `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Every metric family name of the scrape (from its `# TYPE` lines).
fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// Runs `promtool` with `args`, `input` on its standard input; its exit status
/// and what it wrote. Fails the test clearly when promtool is missing.
fn promtool(args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: install Debian's prometheus package (scripts/services.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The metric names a PromQL expression uses: identifiers that start with
/// `scrum_`, with a histogram's `_bucket`, `_sum` and `_count` taken off.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("scrum_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

/// Every `expr` of every panel (and panel of a row) of a Grafana dashboard.
fn panel_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            out.push((title, t["expr"].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_run_shows_in_metrics_that_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let issues = [
        ("acme/api", "Add an endpoint"),
        ("acme/api", "Document the endpoint"),
        ("acme/api", "Test the endpoint"),
    ];
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &issues).await.unwrap();
    fleet.start_orchestrator().await.unwrap();
    fleet.start_worker("worker-1").unwrap();
    fleet
        .wait_for("3 completed issues", Duration::from_secs(120), || {
            fleet
                .progress()
                .iter()
                .all(|(_, p)| *p == IssueProgress::Completed)
        })
        .await;
    let client = OrchestratorClient::new(&fleet.url()).unwrap();
    let text = client.metrics().await.unwrap();
    fleet.stop();

    let expect = [
        (
            r#"scrum_runs_total{repository="acme/api",outcome="completed"}"#,
            3.0,
        ),
        (
            r#"scrum_runs_total{repository="acme/api",outcome="failed"}"#,
            0.0,
        ),
        (
            r#"scrum_tasks_finished_total{repository="acme/api",state="completed"}"#,
            3.0,
        ),
        (
            r#"scrum_run_duration_seconds_count{outcome="completed"}"#,
            3.0,
        ),
        (
            r#"scrum_run_duration_seconds_bucket{outcome="completed",le="+Inf"}"#,
            3.0,
        ),
        ("scrum_queue_wait_seconds_count", 3.0),
        (r#"scrum_queue_tasks{state="completed"}"#, 3.0),
        (r#"scrum_queue_tasks{state="pending"}"#, 0.0),
        ("scrum_claims_total", 3.0),
        ("scrum_leader", 1.0),
        ("scrum_store_up", 1.0),
        ("scrum_oldest_ready_task_age_seconds", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let dispatched: f64 = ["webhook", "label", "poll"]
        .iter()
        .filter_map(|t| {
            sample(
                &text,
                &format!(r#"scrum_dispatch_latency_seconds_count{{trigger="{t}"}}"#),
            )
        })
        .sum();
    assert_eq!(dispatched, 3.0, "one dispatch latency per run:\n{text}");
    let listed = sample(
        &text,
        r#"scrum_github_request_duration_seconds_count{kind="list_issues",status="200"}"#,
    );
    assert!(
        listed.is_some_and(|n| n >= 1.0),
        "GitHub polls were timed:\n{text}"
    );
    let points = |budget: &str| {
        sample(
            &text,
            &format!(r#"scrum_github_points_total{{budget="{budget}"}}"#),
        )
    };
    assert!(
        points("rest").is_some_and(|n| n >= 1.0) && points("graphql").is_some(),
        "both rate-limit budgets are counted:\n{text}"
    );
    assert!(
        sample(&text, "scrum_github_rate_limit_remaining").is_some_and(|n| n > 0.0),
        "the rate limit left is shown:\n{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("#1") && !line.contains("worker-1"),
            "an unbounded label: {line}"
        );
    }

    let (ok, problems) = promtool(&["check", "metrics"], &text);
    assert!(
        ok && problems.trim().is_empty(),
        "promtool check metrics:\n{problems}\n{text}"
    );

    // Every panel of the dashboard draws a metric this scrape has.
    let exported = families(&text);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/scrum-orchestrator.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let exprs = panel_exprs(&dashboard);
    assert!(exprs.len() >= 10, "the dashboard has its panels: {exprs:?}");
    for (title, expr) in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "panel {title:?} draws no scrum_ metric: {expr}"
        );
        for name in names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|b| exported.iter().any(|e| e == b))
                })
                .unwrap_or(&name);
            assert!(
                exported.iter().any(|e| e == base),
                "panel {title:?} uses {name}, which the binary does not export"
            );
        }
    }
    // …and every family the binary exports has a panel.
    let drawn: Vec<String> = exprs.iter().flat_map(|(_, e)| metric_names(e)).collect();
    for family in &exported {
        assert!(
            drawn.iter().any(|d| d == family
                || d.strip_prefix(family.as_str())
                    .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
            "no panel draws {family}"
        );
    }
}
