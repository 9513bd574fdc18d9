//! Crash test: the real `scrum-orchestrator` on SQLite, under load from simulated
//! workers, is killed with SIGKILL at random moments again and again and restarted
//! each time. Afterwards no task is lost, none is completed twice, none was held by
//! two leases at once, and every label and comment reached the fake GitHub exactly
//! once.
//!
//! The workers run in this process: `WorkerLoop`s over the HTTP client, with a
//! runner that "works" for a few hundred milliseconds. A wrapper around the client
//! records every lease a worker got (from the orchestrator's own lease times), every
//! renewal and every report the orchestrator accepted, so the checks do not trust
//! the orchestrator's word alone.
//!
//! `CRASH_SEED=N` replays the kill schedule of a run (the test prints its seed);
//! `CRASH_KEEP=1` keeps the fleet's directory (logs, SQLite file) afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use scrum_bins::fleet::Fleet;
use scrum_core::runner::{RunOutcome, WorkflowRunner};
use scrum_core::worker::{WorkSource, WorkerLoop};
use scrum_core::{
    Assignment, Completion, Failure, HeartbeatReply, LeaseToken, Result, TaskId, WorkerId,
};
use scrum_github::fake::Fault;
use scrum_http::OrchestratorClient;
use scrum_http::wire::{QueueQuery, QueueResponse};
use tokio_util::sync::CancellationToken;

/// The lease the fleet gives the orchestrator (`LEASE_SECS=3`).
const LEASE_MS: i64 = 3_000;
const ISSUES_PER_REPO: u64 = 80;
const REPOS: [&str; 2] = ["acme/api", "acme/web"];
const WORKERS: usize = 10;
const KILLS: usize = 12;
/// Kills after which the orchestrator stays down longer than a lease, so leases
/// lapse while their workers still run.
const LONG_OUTAGES: [usize; 2] = [4, 9];

/// How many GitHub requests are answered slowly (about all of them).
const GITHUB_DELAYS: usize = 2000;

const FAILS_ONCE: &str = "[fails-once]";
const ALWAYS_FAILS: &str = "[always-fails]";

fn title(n: u64) -> String {
    if n % 10 == 3 {
        format!("Flaky import {n} {FAILS_ONCE}")
    } else if n % 20 == 7 {
        format!("Impossible rewrite {n} {ALWAYS_FAILS}")
    } else {
        format!("Change {n}")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// xorshift64*: a seeded generator, enough for a kill schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One lease as the worker that got it saw it.
#[derive(Debug)]
struct Hold {
    task: TaskId,
    worker: WorkerId,
    attempt: u32,
    /// When the orchestrator granted it (its expiry at the claim less one lease).
    start_ms: i64,
    /// The latest expiry the orchestrator confirmed (claim or heartbeat).
    known_expiry_ms: i64,
    /// When the runner stopped working on it.
    run_end_ms: Option<i64>,
    /// The pull request URL of a completion the orchestrator accepted.
    completed: Option<String>,
    /// A failure the orchestrator accepted.
    failed: Option<Failure>,
}

impl Hold {
    /// Until when the worker surely held the lease: not past the last expiry the
    /// orchestrator confirmed, and not past the end of its run (reports follow it).
    fn end_ms(&self) -> i64 {
        self.known_expiry_ms
            .min(self.run_end_ms.unwrap_or(self.known_expiry_ms))
    }
}

#[derive(Default)]
struct Records {
    holds: HashMap<LeaseToken, Hold>,
    /// Tokens that were handed out twice (must stay empty).
    reused_tokens: Vec<LeaseToken>,
    runs_started: usize,
}

type Shared = Arc<Mutex<Records>>;

/// The HTTP client, recording what the orchestrator granted and accepted.
struct Recording {
    client: OrchestratorClient,
    records: Shared,
}

impl Recording {
    fn with_hold(&self, token: LeaseToken, f: impl FnOnce(&mut Hold)) {
        if let Some(h) = self.records.lock().unwrap().holds.get_mut(&token) {
            f(h);
        }
    }
}

#[async_trait]
impl WorkSource for Recording {
    async fn next(&self, worker: &WorkerId, wait: Duration) -> Result<Option<Assignment>> {
        let a = WorkSource::next(&self.client, worker, wait).await?;
        if let Some(a) = &a {
            let hold = Hold {
                task: a.task.clone(),
                worker: worker.clone(),
                attempt: a.attempt,
                start_ms: a.lease_expires_at.0 - LEASE_MS,
                known_expiry_ms: a.lease_expires_at.0,
                run_end_ms: None,
                completed: None,
                failed: None,
            };
            let mut r = self.records.lock().unwrap();
            if r.holds.insert(a.lease_token, hold).is_some() {
                r.reused_tokens.push(a.lease_token);
            }
        }
        Ok(a)
    }

    async fn heartbeat(&self, worker: &WorkerId, a: &Assignment) -> Result<HeartbeatReply> {
        let reply = WorkSource::heartbeat(&self.client, worker, a).await?;
        self.with_hold(a.lease_token, |h| {
            h.known_expiry_ms = h.known_expiry_ms.max(reply.lease_expires_at.0);
        });
        Ok(reply)
    }

    async fn complete(&self, worker: &WorkerId, a: &Assignment, c: Completion) -> Result<()> {
        let url = c.pr_url.clone().unwrap_or_default();
        WorkSource::complete(&self.client, worker, a, c).await?;
        self.with_hold(a.lease_token, |h| h.completed = Some(url));
        Ok(())
    }

    async fn fail(&self, worker: &WorkerId, a: &Assignment, f: Failure) -> Result<()> {
        WorkSource::fail(&self.client, worker, a, f.clone()).await?;
        self.with_hold(a.lease_token, |h| h.failed = Some(f));
        Ok(())
    }

    async fn release(&self, worker: &WorkerId, a: &Assignment, reason: &str) -> Result<()> {
        WorkSource::release(&self.client, worker, a, reason).await
    }
}

/// Marks the end of a run, however the run ends (outcome, cancel, drop).
struct RunGuard {
    records: Shared,
    token: LeaseToken,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut r = self.records.lock().unwrap();
        if let Some(h) = r.holds.get_mut(&self.token) {
            h.run_end_ms.get_or_insert_with(now_ms);
        }
    }
}

/// "Works" 200–900 ms (one run in five 1.5–2.5 s), then succeeds with a pull request, except that
/// `[fails-once]` issues fail their first attempt (retryably) and
/// `[always-fails]` issues fail for good.
struct SimulatedWork {
    records: Shared,
}

#[async_trait]
impl WorkflowRunner for SimulatedWork {
    async fn run(&self, a: &Assignment, cancel: CancellationToken) -> RunOutcome {
        let _guard = RunGuard {
            records: self.records.clone(),
            token: a.lease_token,
        };
        self.records.lock().unwrap().runs_started += 1;
        // One run in five outlasts a heartbeat interval (a third of the lease), so
        // renewals cross restarts too, and a long outage lapses leases mid-run.
        let r = a.lease_token.0;
        let work = if (r >> 64) % 5 == 0 {
            Duration::from_millis(1500 + (r % 1000) as u64)
        } else {
            Duration::from_millis(200 + (r % 700) as u64)
        };
        tokio::select! {
            () = cancel.cancelled() => return RunOutcome::Release("cancelled".into()),
            () = tokio::time::sleep(work) => {}
        }
        let title = &a.issue.title;
        if title.contains(ALWAYS_FAILS) {
            return RunOutcome::Failure(Failure {
                reason: "the tests fail".into(),
                retryable: false,
                ..Failure::default()
            });
        }
        if title.contains(FAILS_ONCE) && a.attempt == 1 {
            return RunOutcome::Failure(Failure {
                reason: "flaky: attempt 1 fails".into(),
                retryable: true,
                ..Failure::default()
            });
        }
        RunOutcome::Success(Completion {
            pr_url: Some(format!(
                "https://github.com/{}/pull/{}#attempt-{}",
                a.task.repo(),
                1000 + a.task.number(),
                a.attempt
            )),
            cost_usd: None,
            tokens: None,
            revisions: None,
        })
    }
}

/// What to print when something goes wrong: the kills so far, the issues' labels,
/// and the tail of the orchestrator's log.
fn diagnostics(fleet: &Fleet, kills: &[String]) -> String {
    let mut by_labels: BTreeMap<String, usize> = BTreeMap::new();
    for id in &fleet.issues {
        *by_labels
            .entry(fleet.github.labels(id).join(","))
            .or_default() += 1;
    }
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(60).collect();
    format!(
        "kills:\n  {}\nissues by labels: {by_labels:?}\norchestrator log (last lines, newest first):\n{}",
        kills.join("\n  "),
        tail.join("\n")
    )
}

fn finished_count(fleet: &Fleet) -> usize {
    fleet
        .issues
        .iter()
        .filter(|id| final_labels(&fleet.github.labels(id)))
        .count()
}

fn final_labels(labels: &[String]) -> bool {
    labels == ["ai-completed"] || labels == ["ai-failed"]
}

async fn whole_queue(client: &OrchestratorClient) -> Result<QueueResponse> {
    client
        .queue(&QueueQuery {
            limit: Some(1000),
            offset: None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkills_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64)
        | 1;
    println!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let titles: Vec<(&str, String)> = REPOS
        .iter()
        .flat_map(|repo| (1..=ISSUES_PER_REPO).map(move |n| (*repo, title(n))))
        .collect();
    let refs: Vec<(&str, &str)> = titles.iter().map(|(r, t)| (*r, t.as_str())).collect();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &refs).await.unwrap();
    // Lapsed leases spend attempts: leave room so that only the scripted failures
    // end in failure.
    fleet.set_env("MAX_ATTEMPTS", "10");
    // Nobody reviews the pull requests here: 80 per repository would stop at
    // review gating's default of five (bins/tests/review.rs tests the gate).
    fleet.set_env("MAX_PENDING_PRS", "0");
    // GitHub answers in 10 ms rather than at once, so an outbox round takes long
    // enough for kills to land between a write and its acknowledgment.
    fleet
        .github
        .inject_times(Fault::Delay(Duration::from_millis(10)), GITHUB_DELAYS);
    fleet.start_orchestrator().await.unwrap();

    let records: Shared = Arc::default();
    // The client's own retries stay short (0.7 s in all): the worker loop retries
    // reports at least once per heartbeat interval (1 s), and a restarted
    // orchestrator waits one 3 s lease for them; the client's backoff, which grows to
    // 5 s, would miss that.
    let client = OrchestratorClient::new(&fleet.url())
        .unwrap()
        .with_retries(4, Duration::from_millis(100))
        .with_timeout(Duration::from_secs(5));
    let source = Arc::new(Recording {
        client: client.clone(),
        records: records.clone(),
    });
    let runner = Arc::new(SimulatedWork {
        records: records.clone(),
    });
    let stop_workers = CancellationToken::new();
    let mut workers = Vec::new();
    for n in 1..=WORKERS {
        let worker = WorkerLoop::new(
            WorkerId::new(&format!("sim-{n}")).unwrap(),
            source.clone(),
            runner.clone(),
        )
        .poll_interval(Duration::from_millis(200))
        .wait(Duration::from_secs(1))
        .shutdown_grace(Duration::from_secs(5));
        let stop = stop_workers.clone();
        workers.push(tokio::spawn(async move { worker.run(stop).await }));
    }

    // The kills: at random moments, so they land in claims, heartbeats, reports,
    // polls and outbox dispatch alike.
    let mut kills = Vec::new();
    for k in 0..KILLS {
        let up = Duration::from_millis(100 + rng.below(1400));
        tokio::time::sleep(up).await;
        fleet.kill_orchestrator();
        let down = if LONG_OUTAGES.contains(&k) {
            Duration::from_millis(LEASE_MS as u64 + 500)
        } else {
            Duration::from_millis(rng.below(300))
        };
        let (runs, holds) = {
            let r = records.lock().unwrap();
            (r.runs_started, r.holds.len())
        };
        kills.push(format!(
            "kill {} at {:.1} s after {} ms up, down {} ms; {} of {} issues finished on GitHub, {runs} runs, {holds} leases",
            k + 1,
            started.elapsed().as_secs_f64(),
            up.as_millis(),
            down.as_millis(),
            finished_count(&fleet),
            fleet.issues.len(),
        ));
        tokio::time::sleep(down).await;
        if let Err(e) = fleet.start_orchestrator().await {
            panic!(
                "restart after kill {} failed: {e:#}\n{}",
                k + 1,
                diagnostics(&fleet, &kills)
            );
        }
    }
    let kills_done = started.elapsed();

    // Let everything finish: every issue labelled completed or failed alone, and the
    // queue holding nothing live.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let queue_idle = match whole_queue(&client).await {
            Ok(q) => q.pending.is_empty() && q.in_progress.is_empty(),
            Err(_) => false,
        };
        if queue_idle && finished_count(&fleet) == fleet.issues.len() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for every issue to finish ({} of {} finished on GitHub)\n{}",
                finished_count(&fleet),
                fleet.issues.len(),
                diagnostics(&fleet, &kills)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queue = whole_queue(&client).await.unwrap();
    stop_workers.cancel();
    for w in workers {
        w.await.unwrap();
    }
    fleet.stop();
    let finished = started.elapsed();

    let mut problems = check(&fleet, &records.lock().unwrap(), &queue, &titles);
    let log = std::fs::read_to_string(fleet.log("orchestrator")).unwrap_or_default();
    if log.contains("panicked") {
        problems.push("the orchestrator panicked (see its log below)".to_string());
    }
    let r = records.lock().unwrap();
    let summary = format!(
        "{} issues, {WORKERS} simulated workers, {KILLS} SIGKILLs in {:.1} s, all finished at {:.1} s; {} leases granted, {} runs; {}",
        fleet.issues.len(),
        kills_done.as_secs_f64(),
        finished.as_secs_f64(),
        r.holds.len(),
        r.runs_started,
        crash_paths(&fleet, &r, &queue),
    );
    println!("{summary}\n  {}", kills.join("\n  "));
    if std::env::var_os("CRASH_KEEP").is_some() {
        println!("kept {}", dir.keep().display());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n{summary}\n{}",
        problems.len(),
        problems.join("\n"),
        diagnostics(&fleet, &kills)
    );
}

/// How often the crashes hit the paths that matter, to show they were exercised.
fn crash_paths(fleet: &Fleet, records: &Records, queue: &QueueResponse) -> String {
    let lapsed = records
        .holds
        .values()
        .filter(|h| h.run_end_ms.is_some_and(|end| end > h.known_expiry_ms))
        .count();
    let attempts: u32 = queue
        .completed
        .iter()
        .chain(&queue.failed)
        .map(|e| e.attempts)
        .sum();
    let lost_claims = (attempts as usize).saturating_sub(records.holds.len());
    // A lease granted again while the worker whose lease lapsed still ran: the case
    // where only the lease times keep two holders apart.
    let mut regranted = 0;
    let mut by_task: HashMap<&TaskId, Vec<&Hold>> = HashMap::new();
    for h in records.holds.values() {
        by_task.entry(&h.task).or_default().push(h);
    }
    for holds in by_task.values_mut() {
        holds.sort_by_key(|h| h.start_ms);
        regranted += holds
            .windows(2)
            .filter(|w| w[0].run_end_ms.is_some_and(|end| end > w[1].start_ms))
            .count();
    }
    let requests = fleet.github.requests();
    let comment_requests = |method: &str| {
        requests
            .iter()
            .filter(|r| {
                r.method == method
                    && r.path
                        .split('?')
                        .next()
                        .is_some_and(|p| p.ends_with("/comments"))
            })
            .count()
    };
    let mut deletes: HashMap<&str, usize> = HashMap::new();
    for r in requests.iter().filter(|r| r.method == "DELETE") {
        *deletes.entry(r.path.as_str()).or_default() += 1;
    }
    let repeated_deletes: usize = deletes.values().map(|n| n - 1).sum();
    format!(
        "{} GitHub requests, {lapsed} leases lapsed while their worker ran \
         ({regranted} granted again before it stopped), {lost_claims} claims whose answer a crash lost, \
         {} comment effects re-applied after a crash (marker found, not posted again), \
         {repeated_deletes} label removals repeated",
        requests.len(),
        comment_requests("GET").saturating_sub(comment_requests("POST"))
    )
}

/// Every check, as a list of what is wrong.
fn check(
    fleet: &Fleet,
    records: &Records,
    queue: &QueueResponse,
    titles: &[(&str, String)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let gh = &fleet.github;
    let requests = gh.requests();

    // The orchestrator's queue: each issue once, terminal, as scripted.
    let mut states: HashMap<String, (&str, u32, Option<String>)> = HashMap::new();
    let lists = [
        ("pending", &queue.pending),
        ("in_progress", &queue.in_progress),
        ("completed", &queue.completed),
        ("failed", &queue.failed),
        ("cancelled", &queue.cancelled),
    ];
    for (state, list) in lists {
        for e in list {
            if states
                .insert(e.task_id.clone(), (state, e.attempts, e.pr_url.clone()))
                .is_some()
            {
                problems.push(format!("{} is listed twice in /queue", e.task_id));
            }
        }
    }
    if states.len() != fleet.issues.len() {
        problems.push(format!(
            "/queue lists {} tasks for {} issues",
            states.len(),
            fleet.issues.len()
        ));
    }

    // The workers' records: tokens unique, leases of a task never overlapping, at
    // most one completion accepted per task.
    for t in &records.reused_tokens {
        problems.push(format!("lease token {t} was handed out twice"));
    }
    let mut by_task: HashMap<&TaskId, Vec<&Hold>> = HashMap::new();
    for h in records.holds.values() {
        by_task.entry(&h.task).or_default().push(h);
    }
    for holds in by_task.values_mut() {
        holds.sort_by_key(|h| h.start_ms);
        let mut held_until: Option<(i64, &Hold)> = None;
        for h in holds.iter() {
            if let Some((until, prev)) = held_until.filter(|(u, _)| h.start_ms < *u) {
                problems.push(format!(
                    "{}: held by two leases at once: {} (attempt {}) from {} until {until}, and {} (attempt {}) from {}",
                    h.task, prev.worker, prev.attempt, prev.start_ms, h.worker, h.attempt, h.start_ms
                ));
            }
            if held_until.is_none_or(|(u, _)| h.end_ms() > u) {
                held_until = Some((h.end_ms(), h));
            }
        }
    }

    // Finished work is never refused: at each restart the leases held through the
    // outage get one more lease period, so every run that ended had its report
    // accepted.
    for h in records.holds.values() {
        if h.run_end_ms.is_some() && h.completed.is_none() && h.failed.is_none() {
            problems.push(format!(
                "{}: the run of {} (attempt {}) ended without its report accepted",
                h.task, h.worker, h.attempt
            ));
        }
    }

    let (mut completed, mut failed) = (0, 0);
    for (id, (_, title)) in fleet.issues.iter().zip(titles) {
        let key = id.to_string();
        let holds = by_task.get(id).map(Vec::as_slice).unwrap_or_default();
        let accepted: Vec<&str> = holds
            .iter()
            .filter_map(|h| h.completed.as_deref())
            .collect();
        let failed_for_good = holds
            .iter()
            .filter(|h| h.failed.as_ref().is_some_and(|f| !f.retryable))
            .count();
        let expect_failed = title.contains(ALWAYS_FAILS);
        let (state, attempts, pr_url) = states.get(&key).cloned().unwrap_or(("missing", 0, None));
        let labels = gh.labels(id);
        let comments = gh.comments(id);

        if expect_failed {
            failed += 1;
            if state != "failed" {
                problems.push(format!("{id}: /queue says {state}, expected failed"));
            }
            if labels != ["ai-failed"] {
                problems.push(format!("{id}: labels {labels:?}, expected [ai-failed]"));
            }
            if !accepted.is_empty() || failed_for_good != 1 {
                problems.push(format!(
                    "{id}: {} completion(s) and {failed_for_good} final failure(s) accepted, expected 0 and 1",
                    accepted.len()
                ));
            }
        } else {
            completed += 1;
            if state != "completed" {
                problems.push(format!("{id}: /queue says {state}, expected completed"));
            }
            if labels != ["ai-completed"] {
                problems.push(format!("{id}: labels {labels:?}, expected [ai-completed]"));
            }
            if accepted.len() != 1 {
                problems.push(format!(
                    "{id}: {} completions accepted (for different leases), expected 1: {accepted:?}",
                    accepted.len()
                ));
            } else if pr_url.as_deref() != Some(accepted[0]) {
                problems.push(format!(
                    "{id}: /queue's pr_url {pr_url:?} is not the accepted {}",
                    accepted[0]
                ));
            }
        }

        // Comments: each once. Every attempt but the last left one retry note, the
        // last one the completion or failure comment; nothing else, nothing twice.
        let done: Vec<&String> = comments
            .iter()
            .filter(|c| c.starts_with("Completed:") || c.starts_with("Failed after"))
            .collect();
        let retries: Vec<&String> = comments
            .iter()
            .filter(|c| c.starts_with("Attempt "))
            .collect();
        if done.len() != 1 {
            problems.push(format!(
                "{id}: {} final comments, expected 1: {done:?}",
                done.len()
            ));
        } else if expect_failed {
            let want = format!("Failed after {attempts} attempt(s): the tests fail");
            if !done[0].starts_with(&want) {
                problems.push(format!(
                    "{id}: final comment {:?}, expected {want:?}",
                    done[0]
                ));
            }
        } else if let Some(url) = accepted.first() {
            if !done[0].starts_with(&format!("Completed: {url}")) {
                problems.push(format!(
                    "{id}: completion comment {:?} does not carry the accepted {url}",
                    done[0]
                ));
            }
        }
        let mut attempt_numbers: Vec<u32> = retries
            .iter()
            .filter_map(|c| c.strip_prefix("Attempt ")?.split(' ').next()?.parse().ok())
            .collect();
        attempt_numbers.sort_unstable();
        let want: Vec<u32> = (1..attempts).collect();
        if attempt_numbers != want {
            problems.push(format!(
                "{id}: retry notes for attempts {attempt_numbers:?}, expected {want:?} ({attempts} attempts): {retries:?}"
            ));
        }
        if comments.len() != done.len() + retries.len() {
            problems.push(format!("{id}: unexpected comments: {comments:?}"));
        }
        let markers: HashSet<&str> = comments
            .iter()
            .filter_map(|c| c.rsplit_once("<!-- ").map(|(_, m)| m))
            .collect();
        if markers.len() != comments.len() {
            problems.push(format!(
                "{id}: {} comments but {} distinct markers: {comments:?}",
                comments.len(),
                markers.len()
            ));
        }
        // The request log: no comment was posted twice, even when a crash came
        // between the post and its acknowledgment.
        let path = format!("/repos/{}/issues/{}/comments", id.repo(), id.number());
        let posts = requests
            .iter()
            .filter(|r| r.method == "POST" && r.path == path && (200..300).contains(&r.status))
            .count();
        if posts != comments.len() {
            problems.push(format!(
                "{id}: {posts} comment posts for {} comments",
                comments.len()
            ));
        }
        // Every lease a worker got is an attempt the orchestrator counted (a claim
        // whose answer a crash lost is an attempt no worker saw).
        if holds.len() > attempts as usize {
            problems.push(format!(
                "{id}: {} leases granted but the orchestrator counted {attempts} attempts",
                holds.len()
            ));
        }
    }
    if queue.completed.len() != completed || queue.failed.len() != failed {
        problems.push(format!(
            "/queue: {} completed and {} failed, expected {completed} and {failed}",
            queue.completed.len(),
            queue.failed.len()
        ));
    }
    problems
}
