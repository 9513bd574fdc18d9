//! The real `scrum-orchestrator` binary with many tasks waiting, for load tests over
//! real HTTP (`scripts/load`, or wrk with `scrum-http/scripts/cycle.lua`).
//!
//! It starts the fake GitHub in this process with `--issues N` issues labelled
//! `ai-ready` in `acme/widgets`, starts the binary on SQLite in `--dir` (its
//! settings as shipped, but for the fake's URL and `TRUST_MODE=off`:
//! in the default mode each claim reads the issue from GitHub first, which here
//! would measure the fake GitHub in this process; `--trust-mode labeler` measures
//! that too), waits until the orchestrator has queued every issue, prints
//! `listening on URL`, and serves until Ctrl-C, when it stops the orchestrator with
//! SIGTERM. `ORCHESTRATOR_API_TOKEN` and `GITHUB_WRITE_SPACING_MS`, when set in its
//! environment, are passed on to the binary (`scripts/schemathesis` sets both).
//!
//! ```sh
//! cargo build --release -p scrum-bins --bin scrum-orchestrator --example load_orchestrator
//! target/release/examples/load_orchestrator --bin target/release/scrum-orchestrator \
//!     --port 8000 --issues 100000 --dir /tmp/load
//! ```

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scrum_core::Timestamp;
use scrum_github::fake::{FakeGitHub, NewIssue};
use scrum_http::OrchestratorClient;

/// Settings the binary gets from this process's environment when set there: an
/// API token (the binary then refuses callers without it, as a deployment would),
/// and the spacing of GitHub writes (a dispatch round of spaced writes delays a
/// stop by up to a few minutes).
const FORWARDED: [&str; 2] = ["ORCHESTRATOR_API_TOKEN", "GITHUB_WRITE_SPACING_MS"];

/// How long the orchestrator gets to queue every issue.
const QUEUE_WITHIN: Duration = Duration::from_secs(900);

struct Args {
    bin: PathBuf,
    port: u16,
    issues: u64,
    dir: PathBuf,
    trust_mode: String,
}

fn args() -> anyhow::Result<Args> {
    let (mut bin, mut port, mut issues, mut dir) = (None, 8000, 100_000, None);
    let mut trust_mode = "off".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bin" => bin = Some(PathBuf::from(value)),
            "--port" => port = value.parse().context("--port takes a port number")?,
            "--issues" => issues = value.parse().context("--issues takes a number")?,
            "--dir" => dir = Some(PathBuf::from(value)),
            "--trust-mode" => trust_mode = value,
            other => bail!("unknown flag {other}; see the example's doc comment"),
        }
    }
    Ok(Args {
        bin: bin.context("--bin PATH (the scrum-orchestrator binary) is required")?,
        port,
        issues,
        dir: dir.context("--dir PATH (for its state and log) is required")?,
        trust_mode,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let github = FakeGitHub::start().await;
    github.add_repo("acme/widgets");
    for n in 1..=a.issues {
        let issue = NewIssue::new(&format!("Load test issue {n}"))
            .body("Make the widget faster.")
            .labels(&["ai-ready"])
            .created_at(Timestamp(1_700_000_000_000 + n as i64));
        github.add_issue("acme/widgets", issue);
    }
    let mut env = vec![("TRUST_MODE", a.trust_mode.clone())];
    for name in FORWARDED {
        if let Ok(value) = std::env::var(name) {
            env.push((name, value));
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut child, log) = common::spawn_orchestrator(&a.bin, &a.dir, a.port, &github, &env)?;
    let url = format!("http://127.0.0.1:{}", a.port);
    let client = OrchestratorClient::new(&url).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the orchestrator exited with {status}; see {}",
                log.display()
            );
        }
        if let Ok(health) = client.health().await {
            if health.queue.pending >= a.issues {
                break;
            }
        }
        if started.elapsed() > QUEUE_WITHIN {
            bail!("the orchestrator did not queue {} issues in time", a.issues);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "queued {} tasks in {:.1?} (scrum-orchestrator, SQLite)",
        a.issues,
        started.elapsed()
    );
    eprintln!("listening on {url}");
    tokio::signal::ctrl_c().await?;
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    kill(pid, Signal::SIGTERM)?;
    child.wait()?;
    Ok(())
}
