//! The demo: the fake GitHub with a handful of sample issues, a fake GitLab beside
//! it with one more (in a project of a nested group), the real
//! `scrum-orchestrator` on SQLite in a temporary directory, and three real
//! `scrum-worker`s running the built-in AI Scrum Master workflow (architect,
//! security, tester, product owner) over a harmless fake `claude` the demo ships
//! (`scrum_bins::fleet::FAKE_CLAUDE`), which commits a file per role.
//! The workers' agents run in a sandbox (sandbox-runtime or bubblewrap) where one
//! is installed; where none is, the demo runs them with `SANDBOX=none` and says so.
//! One issue's pull request fails its CI check on the first push, and a follow-up
//! run (the same branch, the check's log as feedback) turns it green on the second.
//! Shows progress live, prints the API's address, and ends with a summary of each
//! issue's pull request and cost. With `--keep`, the fleet stays up after that,
//! its dashboard answering, until Ctrl-C.
//!
//! Run it with `scripts/demo` (which builds the binaries first; `scripts/demo
//! --keep` passes the flag on).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scrum_bins::fleet::{Fleet, IssueProgress};

const ISSUES: [(&str, &str); 8] = [
    ("demo/shop", "Add a health endpoint"),
    ("demo/shop", "Validate the checkout form"),
    ("demo/shop", "Fix the flaky price test [fails-once]"),
    ("demo/shop", "Document the API [revise-twice]"),
    ("demo/blog", "Add an RSS feed"),
    ("demo/blog", "Paginate the archive"),
    ("demo/blog", "Render code blocks"),
    ("demo/blog", "Add a dark theme"),
];

/// The issue (of `ISSUES`) whose pull request fails CI on its first push, and the
/// failing test its check's log names.
const RED_FIRST: (usize, &str) = (0, "test health::answers_200 ... FAILED");

/// The GitLab project (in a nested group) and its issue, beside GitHub's.
const GITLAB_ISSUES: [(&str, &str); 1] = [("demo/lab/tools", "Add a --version flag")];

const USAGE: &str = "usage: scrum-demo [--keep]

Runs a whole fleet on this machine: a fake GitHub with eight sample issues and a fake
GitLab with one more, the real scrum-orchestrator on SQLite in a temporary directory
and three real scrum-workers, shows progress, and ends with each issue's labels,
pull or merge request and cost. One pull request fails its CI check on the first push
and is fixed by a follow-up run.

  --keep    after the issues finish, keep the fleet (and its dashboard) up until Ctrl-C
  -h, --help  print this help";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut keep = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let bin_dir = binaries()?;
    let dir = tempfile::Builder::new().prefix("scrum-demo-").tempdir()?;
    let mut fleet = Fleet::prepare(dir.path(), &bin_dir, &ISSUES).await?;
    fleet.add_gitlab(&GITLAB_ISSUES).await?;
    let red = fleet.issues[RED_FIRST.0].clone();
    fleet.github.ci_fails_while(
        ISSUES[RED_FIRST.0].0,
        "test",
        &format!("changes/issue-{}.md", red.number()),
        "architect pass 1",
        RED_FIRST.1,
    );
    println!("scrum-orchestrator demo");
    println!("  fake GitHub      {}", fleet.github.url());
    println!("  fake GitLab      {}", fleet.gitlab().url());
    println!("  working files    {}", dir.path().display());
    fleet.start_orchestrator().await?;
    println!(
        "  orchestrator API {}  (try: curl {}/health)",
        fleet.url(),
        fleet.url()
    );
    let sandbox = sandbox();
    fleet.set_env("SANDBOX", sandbox);
    println!(
        "  agent sandbox    SANDBOX={sandbox}{}",
        if sandbox == "none" {
            "  (neither sandbox-runtime nor bubblewrap is installed: agents run unsandboxed)"
        } else {
            ""
        }
    );
    for w in ["worker-1", "worker-2", "worker-3"] {
        fleet.start_agent_worker(w)?;
    }
    println!(
        "  3 workers started (built-in workflow, fake claude); {} issues labelled ai-ready",
        fleet.issues.len()
    );
    println!("  CI fails {red}'s first push: a follow-up run fixes it on the same branch\n");

    let started = Instant::now();
    let mut last = String::new();
    while !fleet.finished() || rounds(&fleet, &red) < 2 {
        if started.elapsed() > Duration::from_secs(180) {
            fleet.stop();
            bail!(
                "the demo did not finish in 3 minutes; logs are in {}",
                dir.path().join("logs").display()
            );
        }
        let line = progress_line(&fleet);
        if line != last {
            println!("  [{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The final labels are written first; give the outbox a moment for the rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "  [{:>5.1}s] {}\n",
        started.elapsed().as_secs_f64(),
        progress_line(&fleet)
    );
    if !keep {
        fleet.stop();
    }

    println!("summary");
    let mut completed = 0;
    for id in &fleet.issues {
        let comments = fleet.comments(id);
        let done = comments.iter().find(|c| c.starts_with("Completed: "));
        let pr = done.and_then(|c| {
            c.lines()
                .next()
                .and_then(|l| l.strip_prefix("Completed: "))
                .map(str::to_string)
        });
        let cost = done
            .and_then(|c| c.lines().find_map(|l| l.strip_prefix("- cost: ")))
            .unwrap_or("no cost reported");
        let labels = fleet.labels(id).join(", ");
        let rounds = match rounds(&fleet, id) {
            0 | 1 => String::new(),
            n => format!(", {n} rounds: CI was red, a follow-up fixed it"),
        };
        let id = id.to_string();
        match pr {
            Some(url) => {
                completed += 1;
                println!("  {id:<28} {labels:<14} {url}  ({cost}{rounds})");
            }
            None => println!("  {id:<28} {labels}"),
        }
    }
    println!(
        "\n{completed} of {} issues completed, each with its pull or merge request and its cost.",
        fleet.issues.len()
    );
    if completed != fleet.issues.len() {
        fleet.stop();
        bail!(
            "not every demo issue was completed; logs are in {}",
            dir.path().join("logs").display()
        );
    }
    if keep {
        println!(
            "\nthe fleet stays up: the dashboard is at {}/ui (the API at {}); press Ctrl-C to stop",
            fleet.url(),
            fleet.url()
        );
        tokio::signal::ctrl_c().await?;
        fleet.stop();
        println!("stopped");
    }
    Ok(())
}

/// The rounds of `id`'s pull request its completion comment gives (`Rounds (2):`),
/// 1 before any follow-up, 0 before it completed.
fn rounds(fleet: &Fleet, id: &scrum_core::TaskId) -> usize {
    let comments = fleet.comments(id);
    let Some(done) = comments.iter().find(|c| c.starts_with("Completed: ")) else {
        return 0;
    };
    done.lines()
        .find_map(|l| l.strip_prefix("Rounds (")?.split(')').next()?.parse().ok())
        .unwrap_or(1)
}

fn progress_line(fleet: &Fleet) -> String {
    let p = fleet.progress();
    let count = |want| p.iter().filter(|(_, s)| *s == want).count();
    let followed_up = fleet
        .issues
        .iter()
        .filter(|id| rounds(fleet, id) > 1)
        .count();
    format!(
        "ready {}  in progress {}  completed {}  failed {}  followed up {followed_up}",
        count(IssueProgress::Ready),
        count(IssueProgress::InProgress),
        count(IssueProgress::Completed),
        count(IssueProgress::Failed)
    )
}

/// `auto` when a sandbox for agents is installed (sandbox-runtime, or bubblewrap
/// with socat), else `none`.
fn sandbox() -> &'static str {
    use scrum_bins::runner::sandbox::find;
    let bwrap = find("bwrap").is_some() && find("socat").is_some();
    if find("srt").is_some() || bwrap {
        "auto"
    } else {
        "none"
    }
}

/// The directory with `scrum-orchestrator` and `scrum-worker`: next to this binary.
fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the demo binary")?;
    let dir = exe
        .parent()
        .context("the demo binary has no directory")?
        .to_path_buf();
    Ok(dir)
}
