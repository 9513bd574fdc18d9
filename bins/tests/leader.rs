//! Leader failover with real processes: two `scrum-orchestrator`s share one store
//! (PostgreSQL, then Redis) and the fake GitHub. While both run, exactly one leads
//! (the `scrum_leader` gauge of `/metrics`) and only the leader polls GitHub (the
//! other's `/health` never shows a poll). The leader is then killed with SIGKILL; the
//! other must lead, poll, and queue an issue labelled after the kill within two
//! leader lease periods (`LEADER_TTL_SECS`) of the kill, and then label it. A leader
//! stopped with SIGTERM resigns instead: the other takes over well within one lease.
//!
//! Isolation. A PostgreSQL run works in a schema of its own (`?schema=` in
//! `DATABASE_URL`), dropped afterwards, pass or fail (and, should the test process
//! die first, by the store tests' sweep of `scrum_test_<pid>_…` schemas); a Redis
//! run under a key prefix of its own (`?prefix=`), whose keys are deleted afterwards
//! (`tests/common`).

use std::path::Path;
use std::time::{Duration, Instant};

use scrum_bins::fleet::Fleet;
use scrum_core::TaskId;
use scrum_github::fake::NewIssue;
use scrum_http::OrchestratorClient;
use scrum_http::wire::QueueQuery;

mod common;

/// How the leader goes away, and so how soon the other must take over.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// SIGKILL: within two leader leases (3 s here).
    Killed,
    /// SIGTERM: it resigns, so within 3 s although its lease lasts 10 s.
    Stopped,
}

impl Ending {
    /// The leader lease the orchestrators get (`LEADER_TTL_SECS`).
    fn lease(self) -> Duration {
        match self {
            Ending::Killed => Duration::from_secs(3),
            Ending::Stopped => Duration::from_secs(10),
        }
    }

    /// How soon after the leader went away the other must lead.
    fn limit(self) -> Duration {
        match self {
            Ending::Killed => 2 * self.lease(),
            Ending::Stopped => Duration::from_secs(3),
        }
    }
}
/// The two orchestrators.
const NAMES: [&str; 2] = ["orchestrator-a", "orchestrator-b"];
/// How often the test looks at the orchestrators.
const LOOK_EVERY: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_survivor_takes_over_polling_when_the_leader_is_killed() {
    let base = common::postgres_base();
    let schema = common::store_name("leader");
    let url = common::with_param(&base, "schema", &schema);
    let scenario = survivor_takes_over("postgres", url, Ending::Killed);
    common::then_clean_up(scenario, common::drop_schema(&base, &schema)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_the_survivor_takes_over_polling_when_the_leader_is_killed() {
    on_redis(Ending::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_leader_that_stops_hands_over_at_once() {
    on_redis(Ending::Stopped).await;
}

/// The scenario on Redis, under a key prefix of its own, removed afterwards.
async fn on_redis(ending: Ending) {
    let base = common::redis_base();
    let prefix = common::store_name(&format!("leader_{ending:?}"));
    let url = common::with_param(&base, "prefix", &prefix);
    let scenario = survivor_takes_over("redis", url, ending);
    common::then_clean_up(scenario, common::delete_prefix(&base, &prefix)).await;
}

/// Starts two orchestrators on the store at `database_url`, checks that one leads
/// and polls alone, ends it as `ending` says, and checks that the other takes over
/// in time. Run by [`common::then_clean_up`], so the store is cleaned up even
/// when it fails.
async fn survivor_takes_over(store: &'static str, database_url: String, ending: Ending) {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scrum-orchestrator"))
        .parent()
        .unwrap();
    let mut fleet = Fleet::prepare(dir.path(), bin_dir, &[("acme/api", "First change")])
        .await
        .unwrap();
    fleet.set_env("DATABASE_URL", &database_url);
    fleet.set_env("LEADER_TTL_SECS", &ending.lease().as_secs().to_string());
    for name in NAMES {
        if let Err(e) = fleet.start_orchestrator_named(name).await {
            fail(&fleet, &format!("{store}: {e:#}"));
        }
    }
    let first = fleet.issues[0].clone();

    // Both run: one leads and polls, the other neither, until the leader has polled
    // three times and labelled the first issue.
    let mut leader: Option<&str> = None;
    let mut leader_polls = Vec::new();
    let started = Instant::now();
    loop {
        let a = look(&fleet, NAMES[0]).await;
        let b = look(&fleet, NAMES[1]).await;
        let now_leading = match (a.leader, b.leader) {
            (true, true) => fail(&fleet, &format!("{store}: both orchestrators lead")),
            (true, false) => Some(NAMES[0]),
            (false, true) => Some(NAMES[1]),
            (false, false) => None,
        };
        if let Some(l) = now_leading {
            if leader.is_some_and(|before| before != l) {
                fail(
                    &fleet,
                    &format!("{store}: the lead moved to {l} while both ran"),
                );
            }
            leader = Some(l);
        }
        for (name, seen) in NAMES.iter().zip([&a, &b]) {
            if Some(*name) != leader && seen.last_poll.is_some() {
                fail(
                    &fleet,
                    &format!("{store}: {name} polled GitHub without leading"),
                );
            }
            if Some(*name) == leader && !leader_polls.contains(&seen.last_poll) {
                leader_polls.push(seen.last_poll.clone());
            }
        }
        let labelled = has_label(&fleet, &first, "ai-in-progress");
        if labelled && leader_polls.iter().flatten().count() >= 3 {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            fail(
                &fleet,
                &format!(
                    "{store}: after 20 s: leader {leader:?}, its polls {leader_polls:?}, \
                     first issue labelled: {labelled}"
                ),
            );
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    let leader = leader.expect("a leader was seen");
    let survivor = NAMES.into_iter().find(|n| *n != leader).unwrap();

    // End the leader; label a new issue that only the survivor can queue.
    let killed_at = Instant::now();
    match ending {
        Ending::Killed => fleet.kill_orchestrator_named(leader),
        Ending::Stopped => fleet.stop_orchestrator_named(leader),
    }
    fleet.github.clear_requests();
    let second = fleet.github.add_issue(
        "acme/api",
        NewIssue::new("Second change").labels(&["ai-ready"]),
    );
    let client = OrchestratorClient::new(&fleet.orchestrator_url(survivor).unwrap()).unwrap();
    let (mut led_after, mut polled_after, mut queued_after) = (None, None, None);
    while led_after.is_none() || polled_after.is_none() || queued_after.is_none() {
        let seen = look(&fleet, survivor).await;
        let since = killed_at.elapsed();
        if seen.leader {
            led_after.get_or_insert(since);
        }
        if seen.last_poll.is_some() {
            polled_after.get_or_insert(since);
        }
        if queued_after.is_none() && is_queued(&client, &second).await {
            queued_after = Some(since);
        }
        if since > ending.limit() {
            fail(
                &fleet,
                &format!(
                    "{store}: {survivor} did not take over within {:?} of the leader being \
                     {ending:?}: led after {led_after:?}, polled after {polled_after:?}, \
                     queued the new issue after {queued_after:?}",
                    ending.limit()
                ),
            );
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    let listings = fleet
        .github
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/repos/acme/api/issues?"))
        .count();
    assert!(
        listings > 0,
        "{store}: no issue listing reached GitHub after the kill"
    );
    // The survivor does the rest of the leader's duties too: it labels the issue.
    while !has_label(&fleet, &second, "ai-in-progress") {
        if killed_at.elapsed() > ending.limit() + Duration::from_secs(10) {
            fail(
                &fleet,
                &format!("{store}: {survivor} queued {second} but never labelled it"),
            );
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    eprintln!(
        "{store}: {leader} {ending:?}; {survivor} led after {led_after:?}, polled after \
         {polled_after:?}, queued the new issue after {queued_after:?}, labelled it after \
         {:?} (leader lease {:?})",
        killed_at.elapsed(),
        ending.lease()
    );
    fleet.stop();
}

/// What one orchestrator shows: whether it leads (`/metrics`) and when it last
/// polled GitHub (`/health`). A process that does not answer shows neither.
#[derive(Debug, Default)]
struct Seen {
    leader: bool,
    last_poll: Option<String>,
}

async fn look(fleet: &Fleet, name: &str) -> Seen {
    let url = fleet.orchestrator_url(name).unwrap();
    let Ok(client) = OrchestratorClient::new(&url) else {
        return Seen::default();
    };
    // `/health` first: a process that has polled by then leads when `/metrics` is read.
    let last_poll = client.health().await.ok().and_then(|h| h.github?.last_poll);
    let leader = client
        .metrics()
        .await
        .is_ok_and(|m| m.lines().any(|l| l == "scrum_leader 1"));
    Seen { leader, last_poll }
}

async fn is_queued(client: &OrchestratorClient, id: &TaskId) -> bool {
    let id = id.to_string();
    client.queue(&QueueQuery::default()).await.is_ok_and(|q| {
        q.pending
            .iter()
            .chain(&q.in_progress)
            .any(|e| e.task_id == id)
    })
}

fn has_label(fleet: &Fleet, id: &TaskId, label: &str) -> bool {
    fleet.github.labels(id).iter().any(|l| l == label)
}

/// Fails the test with `what` and the end of both orchestrators' logs.
fn fail(fleet: &Fleet, what: &str) -> ! {
    common::fail_with_logs(fleet, &NAMES, what)
}
