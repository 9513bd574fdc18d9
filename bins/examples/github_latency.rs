//! GitHub at its real latency, with the real `scrum-orchestrator` binary: the fake
//! GitHub runs in this process and holds every answer back by `--latency-ms`
//! (100 ms is what a server far from GitHub sees). Three scenes, each with its own
//! fake and orchestrator (SQLite in `--dir`), in the default trust mode unless said:
//!
//! 1. **Backlog.** `--repos R` repositories of `--issues N` newly labelled issues
//!    each. Prints how long the orchestrator took to queue them (from its start),
//!    the requests and rate-limit points (REST and GraphQL) that cost per issue,
//!    and how long after it was labelled an issue in another repository (an old
//!    issue, so first in claim order, labelled while the backlog is being seen, its
//!    webhook posted as GitHub would) was handed out to a worker.
//! 2. **Unchanged polls.** R repositories of two issues, polled every second once
//!    their labels are written: the points one unchanged poll costs.
//! 3. **Write-back.** `--refused N` ready issues in a repository whose writes
//!    GitHub refuses (the token lost write access; trust off, to queue them fast),
//!    and one in another repository, which a worker completes: how long its labels
//!    and comment took to land behind the refused writes, and the writes and REST
//!    points its whole life cost on GitHub.
//! 4. **Follow-up.** A completed task's pull request, tracked while it stays the
//!    same (polled every second): the requests and points one poll of it costs.
//!    Then its check fails, with the `check_run` webhook GitHub sends: how long
//!    until a worker waiting on `/work/next` gets the follow-up run.
//!
//! ```sh
//! cargo build -p scrum-bins --bin scrum-orchestrator --example github_latency
//! target/debug/examples/github_latency --bin target/debug/scrum-orchestrator \
//!     --dir /tmp/github-latency --latency-ms 100 --repos 5 --issues 40 --refused 230
//! ```
//!
//! `--write-spacing-ms` (default 1000, the orchestrator's default) and
//! `--concurrency` (unset: the orchestrator's default) are passed on as
//! `GITHUB_WRITE_SPACING_MS` and `GITHUB_CONCURRENCY`; `--timeout-secs` (default
//! 300) bounds each wait, and a wait that runs out is printed as such; `--scenes`
//! picks some of `backlog,quiet,write-back,follow-up` (all by default).

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scrum_core::{TaskId, Timestamp};
use scrum_github::fake::{FakeCheck, FakeGitHub, MAINTAINER, NewIssue, ServedRequest};
use scrum_http::OrchestratorClient;
use scrum_http::wire::{CompleteRequest, LeaseMode, QueueQuery, TaskRef};

const SECRET: &str = "github-latency-secret";
/// The repository of the late issue and of the completed task: its name sorts
/// before the others', so it heads `/queue`'s id order.
const OTHER: &str = "acme/another";

struct Args {
    bin: PathBuf,
    dir: PathBuf,
    latency: Duration,
    repos: usize,
    issues: usize,
    refused: usize,
    port: u16,
    write_spacing_ms: u64,
    concurrency: Option<String>,
    timeout: Duration,
    scenes: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        bin: PathBuf::new(),
        dir: PathBuf::new(),
        latency: Duration::from_millis(100),
        repos: 5,
        issues: 40,
        refused: 230,
        port: 8766,
        write_spacing_ms: 1000,
        concurrency: None,
        timeout: Duration::from_secs(300),
        scenes: "backlog,quiet,write-back,follow-up".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(&value),
            "--dir" => a.dir = PathBuf::from(&value),
            "--latency-ms" => a.latency = Duration::from_millis(num()?),
            "--repos" => a.repos = usize::try_from(num()?)?,
            "--issues" => a.issues = usize::try_from(num()?)?,
            "--refused" => a.refused = usize::try_from(num()?)?,
            "--port" => a.port = u16::try_from(num()?)?,
            "--write-spacing-ms" => a.write_spacing_ms = num()?,
            "--concurrency" => a.concurrency = Some(value.clone()),
            "--timeout-secs" => a.timeout = Duration::from_secs(num()?),
            "--scenes" => a.scenes = value.clone(),
            other => bail!("unknown flag {other}; see the example's doc comment"),
        }
    }
    if a.bin.as_os_str().is_empty() || a.dir.as_os_str().is_empty() {
        bail!("--bin PATH (the scrum-orchestrator binary) and --dir PATH are required");
    }
    Ok(a)
}

/// A running orchestrator, killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
    client: OrchestratorClient,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: a clean stop would first finish a round of spaced label writes.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the orchestrator in `dir` on `github`, polling `repos`, with `env` on
/// top of the common settings, and waits until it answers.
async fn start(
    a: &Args,
    dir: &Path,
    github: &FakeGitHub,
    repos: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<Running> {
    let repos = repos.join(",");
    let spacing = a.write_spacing_ms.to_string();
    let mut all = vec![
        ("GITHUB_REPOS", repos.as_str()),
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("GITHUB_WRITE_SPACING_MS", spacing.as_str()),
    ];
    if let Some(c) = &a.concurrency {
        all.push(("GITHUB_CONCURRENCY", c.as_str()));
    }
    all.extend_from_slice(env);
    let (child, log) = common::spawn_orchestrator(&a.bin, dir, a.port, github, &all)?;
    let client = OrchestratorClient::new(&format!("http://127.0.0.1:{}", a.port))
        .map_err(anyhow::Error::msg)?;
    let mut running = Running {
        child,
        log,
        client,
        port: a.port,
    };
    let started = Instant::now();
    while running.client.health().await.is_err() {
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "the orchestrator exited with {status}; see {}",
                running.log.display()
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the orchestrator did not answer; see {}",
                running.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(running)
}

/// What a slice of the fake's request log cost.
#[derive(Debug, Default)]
struct Cost {
    reads: usize,
    writes: usize,
    graphql: usize,
    rest_points: u64,
    graphql_points: u64,
}

impl Cost {
    fn of<'a>(log: impl IntoIterator<Item = &'a ServedRequest>) -> Cost {
        let mut c = Cost::default();
        for r in log {
            if r.path.starts_with("/graphql") {
                c.graphql += 1;
            } else if r.method == "GET" {
                c.reads += 1;
            } else {
                c.writes += 1;
            }
            c.rest_points += r.points;
            c.graphql_points += r.graphql_points;
        }
        c
    }

    fn requests(&self) -> usize {
        self.reads + self.writes + self.graphql
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    println!(
        "GitHub latency {} ms, write spacing {} ms, concurrency {}",
        a.latency.as_millis(),
        a.write_spacing_ms,
        a.concurrency.as_deref().unwrap_or("default")
    );
    let runs = |scene: &str| a.scenes.split(',').any(|s| s.trim() == scene);
    if runs("backlog") {
        backlog(&a).await?;
    }
    if runs("quiet") {
        unchanged_polls(&a).await?;
    }
    if runs("write-back") {
        write_back(&a).await?;
    }
    if runs("follow-up") {
        follow_up(&a).await?;
    }
    Ok(())
}

/// Scene 1: a backlog of new issues, and an issue labelled elsewhere meanwhile.
async fn backlog(a: &Args) -> anyhow::Result<()> {
    let github = FakeGitHub::start().await;
    let mut repos = vec![OTHER.to_string()];
    for r in 1..=a.repos {
        let repo = format!("acme/backlog-{r}");
        github.add_repo(&repo);
        for n in 1..=a.issues {
            let issue = NewIssue::new(&format!("Backlog {r}.{n}")).labels(&["ai-ready"]);
            github.add_issue(&repo, issue);
        }
        repos.push(repo);
    }
    github.add_repo(OTHER);
    // Opened long ago, labelled only now: first in claim order once queued.
    let late = github.add_issue(
        OTHER,
        NewIssue::new("Late").created_at(Timestamp(1_000_000_000_000)),
    );
    github.set_latency(a.latency);
    let total = a.repos * a.issues;
    let started = Instant::now();
    let o = start(a, &a.dir.join("backlog"), &github, &repos, &[]).await?;
    let (mut labelled, mut queued, mut handed) = (None, None, None);
    let mut cost = Cost::default();
    while queued.is_none() || handed.is_none() {
        if started.elapsed() > a.timeout {
            break;
        }
        let pending = o.client.health().await.map_err(anyhow::Error::msg)?.queue;
        let seen = pending.pending + pending.in_progress;
        if labelled.is_none() && seen > 0 {
            github.label_as(&late, &["ai-ready"], MAINTAINER);
            labelled = Some(Instant::now());
            webhook(o.port, &late).await?;
        }
        let backlog_seen = seen >= (total + usize::from(handed.is_some())) as u64;
        if queued.is_none() && backlog_seen {
            queued = Some(started.elapsed());
            cost = Cost::of(&github.requests());
        }
        if handed.is_none() && labelled.is_some() && heads_queue(&o.client, &late).await? {
            let work = o
                .client
                .next_work("bench-worker", Duration::ZERO, LeaseMode::Heartbeat)
                .await
                .map_err(anyhow::Error::msg)?;
            if let Some(w) = work {
                if w.task_id != late.to_string() {
                    bail!("the worker got {} before {late}", w.task_id);
                }
                handed = labelled.map(|at| at.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "backlog: {} repositories x {} new issues",
        a.repos, a.issues
    );
    match queued {
        Some(t) => {
            let per = |n: f64| n / total as f64;
            println!(
                "  queued all in {} from start; per issue {:.2} requests ({:.2} REST reads, {:.2} writes, {:.3} GraphQL queries), {:.2} REST points, {:.3} GraphQL points",
                secs(t),
                per(cost.requests() as f64),
                per(cost.reads as f64),
                per(cost.writes as f64),
                per(cost.graphql as f64),
                per(cost.rest_points as f64),
                per(cost.graphql_points as f64),
            );
        }
        None => println!("  not all queued within {}", secs(a.timeout)),
    }
    match handed {
        Some(t) => println!(
            "  {late}, labelled while the backlog was seen, handed out {} after its label",
            secs(t)
        ),
        None => println!("  {late} was not handed out within {}", secs(a.timeout)),
    }
    Ok(())
}

/// Whether `id` heads `/queue` (its repository sorts first), pending.
async fn heads_queue(client: &OrchestratorClient, id: &TaskId) -> anyhow::Result<bool> {
    let page = QueueQuery {
        limit: Some(1),
        offset: None,
    };
    let q = client.queue(&page).await.map_err(anyhow::Error::msg)?;
    Ok(q.pending
        .first()
        .is_some_and(|e| e.task_id == id.to_string()))
}

/// Posts GitHub's `issues`/`labeled` delivery for `id`.
async fn webhook(port: u16, id: &TaskId) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"action":"labeled","label":{{"name":"ai-ready"}},"issue":{{"number":{}}},"repository":{{"full_name":"{}"}}}}"#,
        id.number(),
        id.repo()
    );
    common::post_webhook(port, SECRET, body.as_bytes()).await
}

/// Scene 2: what an unchanged poll costs.
async fn unchanged_polls(a: &Args) -> anyhow::Result<()> {
    let github = FakeGitHub::start().await;
    let mut repos = Vec::new();
    let mut ids = Vec::new();
    for r in 1..=a.repos {
        let repo = format!("acme/quiet-{r}");
        github.add_repo(&repo);
        for n in 1..=2 {
            let issue = NewIssue::new(&format!("Quiet {r}.{n}")).labels(&["ai-ready"]);
            ids.push(github.add_issue(&repo, issue));
        }
        repos.push(repo);
    }
    github.set_latency(a.latency);
    let o = start(
        a,
        &a.dir.join("quiet"),
        &github,
        &repos,
        &[("GITHUB_POLL_INTERVAL", "1")],
    )
    .await?;
    let started = Instant::now();
    while !ids
        .iter()
        .all(|id| github.labels(id).iter().any(|l| l == "ai-in-progress"))
    {
        if started.elapsed() > a.timeout {
            println!(
                "unchanged polls: the in-progress labels did not land within {}",
                secs(a.timeout)
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the poll under way (which saw the last label land) end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first_page = format!("/repos/{}/issues?", repos[0]);
    let lists = |log: &[ServedRequest]| {
        log.iter()
            .filter(|r| r.path.starts_with(&first_page) && !r.path.contains("page=2"))
            .count()
    };
    let before = github.requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = github.requests();
    let window = &after[before.len()..];
    let polls = lists(&after) - lists(&before);
    let cost = Cost::of(window);
    drop(o);
    println!(
        "unchanged polls: {polls} polls of {} repositories cost {} REST points and {} GraphQL points in all ({} requests)",
        a.repos,
        cost.rest_points,
        cost.graphql_points,
        cost.requests()
    );
    Ok(())
}

/// How many writes GitHub refused in the log (403 to anything but a GET).
fn refused_writes(log: &[ServedRequest]) -> usize {
    log.iter()
        .filter(|r| r.method != "GET" && r.status == 403)
        .count()
}

/// Scene 3: a completion behind a repository that refuses writes.
async fn write_back(a: &Args) -> anyhow::Result<()> {
    let github = FakeGitHub::start().await;
    let refusing = "acme/refusing";
    github.add_repo(refusing);
    for n in 1..=a.refused {
        let issue = NewIssue::new(&format!("Refused {n}")).labels(&["ai-ready"]);
        github.add_issue(refusing, issue);
    }
    github.add_repo(OTHER);
    let done = github.add_issue(
        OTHER,
        NewIssue::new("Done soon")
            .labels(&["ai-ready"])
            .created_at(Timestamp(1_000_000_000_000)),
    );
    github.set_read_only(refusing, true);
    github.set_latency(a.latency);
    let repos = [OTHER.to_string(), refusing.to_string()];
    let env = [("TRUST_MODE", "off"), ("ALLOW_READ_ONLY_REPOS", "true")];
    let o = start(a, &a.dir.join("write-back"), &github, &repos, &env).await?;
    let started = Instant::now();
    let work = loop {
        let work = o
            .client
            .next_work("bench-worker", Duration::from_secs(5), LeaseMode::Heartbeat)
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some(w) = work {
            break w;
        }
        if started.elapsed() > a.timeout {
            bail!("nothing was handed out; see {}", o.log.display());
        }
    };
    if work.task_id != done.to_string() {
        bail!("the worker got {} before {done}", work.task_id);
    }
    // Wait until writes to the refusing repository are being refused.
    while refused_writes(&github.requests()) == 0 {
        if started.elapsed() > a.timeout {
            bail!(
                "no write to {refusing} was refused; see {}",
                o.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request = CompleteRequest {
        task: TaskRef {
            worker_id: "bench-worker".into(),
            issue_number: work.issue_number,
            repository: Some(work.repository.clone()),
            lease_token: Some(work.lease_token.clone()),
        },
        pr_url: Some("https://github.com/acme/another/pull/2".into()),
        success: true,
        error: None,
        cost_usd: None,
        tokens: None,
        revisions: None,
    };
    o.client
        .complete(&request)
        .await
        .map_err(anyhow::Error::msg)?;
    let completed = Instant::now();
    let landed = loop {
        let labels = github.labels(&done);
        let commented = github.comments_containing(&done, "Completed") > 0;
        if commented
            && labels.iter().any(|l| l == "ai-completed")
            && !labels.iter().any(|l| l == "ai-in-progress")
        {
            break Some(completed.elapsed());
        }
        if completed.elapsed() > a.timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = github.requests();
    let path = format!("/repos/{}/issues/{}", done.repo(), done.number());
    let of_task = Cost::of(log.iter().filter(|r| {
        r.path == path
            || r.path.starts_with(&format!("{path}/"))
            || r.path.starts_with(&format!("{path}?"))
    }));
    let refused = refused_writes(&log);
    println!(
        "write-back: {} ready issues in {refusing}, whose writes GitHub refuses",
        a.refused
    );
    match landed {
        Some(t) => println!(
            "  {done}'s completion labels and comment landed {} after the worker reported",
            secs(t)
        ),
        None => println!(
            "  {done}'s completion did not land within {}",
            secs(a.timeout)
        ),
    }
    println!(
        "  {done} cost {} writes and {} REST points on GitHub, reads included; {refused} writes to {refusing} were refused meanwhile",
        of_task.writes, of_task.rest_points
    );
    drop(o);
    Ok(())
}

/// Scene 4: a tracked pull request's polls, and a red check to the follow-up run.
async fn follow_up(a: &Args) -> anyhow::Result<()> {
    let github = FakeGitHub::start().await;
    github.add_repo(OTHER);
    let issue = github.add_issue(OTHER, NewIssue::new("Add a greeting").labels(&["ai-ready"]));
    let pull = github.add_issue(
        OTHER,
        NewIssue::new("Add a greeting")
            .pull_request(&format!("ai-feature/issue-{}", issue.number())),
    );
    github.deliver_to(
        OTHER,
        &format!("http://127.0.0.1:{}/webhooks/github", a.port),
        SECRET,
    );
    github.set_latency(a.latency);
    let repos = [OTHER.to_string()];
    let env = [("GITHUB_POLL_INTERVAL", "1")];
    let o = start(a, &a.dir.join("follow-up"), &github, &repos, &env).await?;
    let started = Instant::now();
    let next = |wait| {
        o.client
            .next_work("bench-worker", wait, LeaseMode::Heartbeat)
    };
    let work = loop {
        if let Some(w) = next(Duration::from_secs(5))
            .await
            .map_err(anyhow::Error::msg)?
        {
            break w;
        }
        if started.elapsed() > a.timeout {
            bail!("nothing was handed out; see {}", o.log.display());
        }
    };
    let request = CompleteRequest {
        task: TaskRef {
            worker_id: "bench-worker".into(),
            issue_number: work.issue_number,
            repository: Some(work.repository.clone()),
            lease_token: Some(work.lease_token.clone()),
        },
        pr_url: Some(format!("https://github.com/{OTHER}/pull/{}", pull.number())),
        success: true,
        error: None,
        cost_usd: None,
        tokens: None,
        revisions: None,
    };
    o.client
        .complete(&request)
        .await
        .map_err(anyhow::Error::msg)?;
    // Tracked and read at least once, then a window of unchanged polls.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let of_pull = |log: &[ServedRequest]| {
        let pr = format!("/pulls/{}", pull.number());
        Cost::of(
            log.iter()
                .filter(|r| r.path.contains(&pr) || r.path.contains("/commits/")),
        )
    };
    let lists = |log: &[ServedRequest]| {
        let first = format!("/repos/{OTHER}/issues?");
        log.iter().filter(|r| r.path.starts_with(&first)).count()
    };
    let before = github.requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = github.requests();
    let polls = lists(&after).saturating_sub(lists(&before)).max(1);
    let quiet = of_pull(&after[before.len()..]);
    // The check fails; a worker waits for work meanwhile.
    let waiting = tokio::spawn({
        let client = o.client.clone();
        async move {
            let mut got = None;
            for _ in 0..20 {
                let w = client
                    .next_work(
                        "bench-worker-2",
                        Duration::from_secs(30),
                        LeaseMode::Heartbeat,
                    )
                    .await;
                if let Ok(Some(w)) = w {
                    got = Some((w, Instant::now()));
                    break;
                }
            }
            got
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = Instant::now();
    github.set_check(
        OTHER,
        pull.number(),
        FakeCheck::failed("test").log(&["test greeting::says_hello ... FAILED"]),
    );
    let handed = tokio::time::timeout(a.timeout, waiting).await;
    println!("follow-up: a completed task's pull request in {OTHER}");
    println!(
        "  one poll of it, unchanged, cost {:.1} requests and {:.1} REST points ({} polls)",
        quiet.requests() as f64 / polls as f64,
        quiet.rest_points as f64 / polls as f64,
        polls
    );
    match handed {
        Ok(Ok(Some((w, at)))) if w.follow_up.is_some() => println!(
            "  its check failed: a waiting worker got the follow-up run {} later",
            secs(at.duration_since(failed))
        ),
        _ => println!(
            "  its check failed: no follow-up was handed out within {}",
            secs(a.timeout)
        ),
    }
    drop(o);
    Ok(())
}
