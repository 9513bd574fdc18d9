//! Dispatch latency end to end with the real `scrum-orchestrator` binary: from a
//! GitHub webhook (`issues`, `labeled`) to a long-polling worker holding the task.
//!
//! It starts the fake GitHub in this process and the binary on SQLite in `--dir`
//! with a webhook secret and an hour between polls (so only the webhook makes it
//! poll), in the default trust mode (each new issue's label event is read, and each
//! claim reads the issue again). Then, `--rounds N` times: a worker long-polls
//! `GET /work/next?wait=30`, an issue labelled `ai-ready` is opened on the fake,
//! the signed webhook is posted, and the time from posting it to the worker's
//! answer is recorded; the worker completes the task and the issue is closed. It prints the percentiles,
//! and the orchestrator's own `scrum_dispatch_latency_seconds{trigger="webhook"}`.
//!
//! ```sh
//! cargo build -p scrum-bins --bin scrum-orchestrator --example dispatch_latency
//! target/debug/examples/dispatch_latency --bin target/debug/scrum-orchestrator \
//!     --dir /tmp/latency --rounds 200
//! ```

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_http::OrchestratorClient;
use scrum_http::wire::{CompleteRequest, LeaseMode, TaskRef};

const SECRET: &str = "dispatch-latency-secret";

struct Args {
    bin: PathBuf,
    dir: PathBuf,
    rounds: usize,
    port: u16,
}

fn args() -> anyhow::Result<Args> {
    let (mut bin, mut dir, mut rounds, mut port) = (None, None, 100, 8765);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bin" => bin = Some(PathBuf::from(value)),
            "--dir" => dir = Some(PathBuf::from(value)),
            "--rounds" => rounds = value.parse().context("--rounds takes a number")?,
            "--port" => port = value.parse().context("--port takes a port number")?,
            other => bail!("unknown flag {other}; see the example's doc comment"),
        }
    }
    Ok(Args {
        bin: bin.context("--bin PATH (the scrum-orchestrator binary) is required")?,
        dir: dir.context("--dir PATH (for its state and log) is required")?,
        rounds,
        port,
    })
}

/// Posts a signed `issues` delivery to the orchestrator (plain HTTP/1.1).
async fn post_webhook(port: u16, body: &[u8]) -> anyhow::Result<()> {
    common::post_webhook(port, SECRET, body).await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    let env = [
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("GITHUB_POLL_INTERVAL", "3600"),
    ];
    let (mut child, log) = common::spawn_orchestrator(&a.bin, &a.dir, a.port, &github, &env)?;
    let url = format!("http://127.0.0.1:{}", a.port);
    let client = OrchestratorClient::new(&url).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    while client.health().await.is_err() {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the orchestrator exited with {status}; see {}",
                log.display()
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the orchestrator did not answer; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stop the orchestrator however the rounds end.
    let measured = rounds(&a, &github, &client).await;
    let metrics = client.metrics().await.map_err(anyhow::Error::msg);
    // SIGKILL: a clean stop would first finish the dispatch round of label writes
    // the rounds left behind, spaced a second apart (minutes, for a long run).
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    kill(pid, Signal::SIGKILL)?;
    child.wait()?;
    let (mut latencies, metrics) = (measured?, metrics?);

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "webhook to worker holding the task, {} rounds: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    for line in metrics.lines().filter(|l| {
        l.starts_with("scrum_dispatch_latency_seconds_")
            && l.contains("trigger=\"webhook\"")
            && !l.contains("_bucket")
    }) {
        println!("orchestrator's own: {line}");
    }
    if percentile(&latencies, 0.99) >= Duration::from_secs(1) {
        bail!("p99 is over 1 s");
    }
    Ok(())
}

/// The measured rounds: the time from each webhook to the worker's answer.
async fn rounds(
    a: &Args,
    github: &FakeGitHub,
    client: &OrchestratorClient,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(a.rounds);
    for n in 1..=a.rounds {
        let worker = client.clone();
        let poll = tokio::spawn(async move {
            let got = worker
                .next_work(
                    "latency-worker",
                    Duration::from_secs(30),
                    LeaseMode::Heartbeat,
                )
                .await;
            (got, Instant::now())
        });
        let id = github.add_issue(
            "acme/widgets",
            NewIssue::new(&format!("Latency probe {n}")).labels(&["ai-ready"]),
        );
        let body = format!(
            r#"{{"action":"labeled","label":{{"name":"ai-ready"}},"issue":{{"number":{}}},"repository":{{"full_name":"acme/widgets"}}}}"#,
            id.number()
        );
        let sent = Instant::now();
        post_webhook(a.port, body.as_bytes()).await?;
        let (got, at) = poll.await?;
        let work = got
            .map_err(anyhow::Error::msg)?
            .with_context(|| format!("round {n}: the long poll ended without {id}"))?;
        if work.task_id != id.to_string() {
            bail!("round {n}: got {} instead of {id}", work.task_id);
        }
        latencies.push(at.saturating_duration_since(sent));
        let done = CompleteRequest {
            task: TaskRef {
                worker_id: "latency-worker".into(),
                issue_number: work.issue_number,
                repository: Some(work.repository.clone()),
                lease_token: Some(work.lease_token.clone()),
            },
            pr_url: None,
            success: true,
            error: None,
            cost_usd: None,
            tokens: None,
            revisions: None,
        };
        client.complete(&done).await.map_err(anyhow::Error::msg)?;
        // Closed, it leaves the ready listing at once (the completed label lands
        // later: writes to GitHub are spaced a second apart).
        github.close_issue(&id);
    }
    Ok(latencies)
}
