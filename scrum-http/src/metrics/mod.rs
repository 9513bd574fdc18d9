//! `/metrics`: Prometheus metrics after Prometheus's naming rules (counters end in
//! `_total`, durations are `_seconds` histograms), kept with `prometheus-client`.
//!
//! Two kinds live here:
//! - what happened since start ([`Metrics`]): counters of API calls, of ended
//!   attempts and finished tasks by repository, cost and tokens by repository, and
//!   histograms of run time, queue wait, dispatch latency and GitHub request
//!   duration. The engine and the GitHub client report into it through
//!   [`scrum_core::observe::Observer`], so the core knows no metrics crate;
//! - what is true now ([`gauges`]): tasks by state and repository, the oldest
//!   ready task's age, workers by status, leadership, the outbox, the rate limit,
//!   read from the store at each scrape.
//!
//! Every label set is bounded: repositories (the configured ones), states,
//! outcomes, request kinds and HTTP statuses; never an issue number or a worker.
//!
//! The exposition is the Prometheus text format (0.0.4), which `promtool check
//! metrics` reads; a scraper that asks for OpenMetrics (`Accept:
//! application/openmetrics-text`) gets that.

mod gauges;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use scrum_core::observe::{AttemptEnd, Observer};
use scrum_core::{LeaseToken, Task, TaskId, TaskState, Timestamp};

pub(crate) use gauges::Scrape;

/// Run time buckets, in seconds: an agent's run takes minutes to hours.
const RUN_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
/// Waiting buckets, in seconds: from a long poll's instant hand-out to a day.
const WAIT_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 21600.0,
    86400.0,
];
/// GitHub request buckets, in seconds.
const REQUEST_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The most webhook arrivals remembered for dispatch latency, and the most runs
/// remembered as dispatched; past it the memory starts over (a metric, not a rule).
const REMEMBERED: usize = 10_000;
/// A webhook counts as what queued a task when the task was queued within this
/// long after it (the poll it asked for).
const WEBHOOK_LEADS_WITHIN: Duration = Duration::from_secs(300);
/// A ready label counts as what queued a task when the task was queued within this
/// long after it (a poll interval, with room).
const LABEL_LEADS_WITHIN: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoOutcome {
    repository: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoState {
    repository: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Repo {
    repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Trigger {
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    kind: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Budget {
    budget: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowUp {
    cause: &'static str,
    /// `run`: a follow-up run was queued; `exhausted`: the rounds were used up.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

/// What happened since start: the counters and histograms, and the observer the
/// engine and the GitHub client report into.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) claims: Counter,
    pub(crate) empty_polls: Counter,
    pub(crate) heartbeats: Counter,
    pub(crate) lease_lost: Counter,
    http_errors: Family<Class, Counter>,
    runs: Family<RepoOutcome, Counter>,
    finished: Family<RepoState, Counter>,
    cost: Family<Repo, Counter<f64, AtomicU64>>,
    tokens: Family<Repo, Counter>,
    run_duration: Histograms<Outcome>,
    queue_wait: Histogram,
    dispatch_latency: Histograms<Trigger>,
    github_requests: Histograms<Request>,
    github_points: Family<Budget, Counter>,
    follow_ups: Family<FollowUp, Counter>,
    /// When a verified webhook about each issue arrived (the first since its last
    /// claim): the start of its dispatch latency.
    webhooks: Mutex<HashMap<TaskId, Timestamp>>,
    /// The runs whose first claim was measured, so a claim after a release is not
    /// measured again.
    dispatched: Mutex<HashSet<(TaskId, u32)>>,
    /// The repositories claims and reports named: their series start at zero.
    repositories: Mutex<BTreeSet<String>>,
    /// The leases whose end was counted: a repeated report is not counted again.
    ended: Mutex<HashSet<LeaseToken>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every counter and histogram at zero, registered.
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            claims: Counter::default(),
            empty_polls: Counter::default(),
            heartbeats: Counter::default(),
            lease_lost: Counter::default(),
            http_errors: Family::default(),
            runs: Family::default(),
            finished: Family::default(),
            cost: Family::default(),
            tokens: Family::default(),
            run_duration: Family::new_with_constructor(run_histogram),
            queue_wait: wait_histogram(),
            dispatch_latency: Family::new_with_constructor(wait_histogram),
            github_requests: Family::new_with_constructor(request_histogram),
            github_points: Family::default(),
            follow_ups: Family::default(),
            webhooks: Mutex::new(HashMap::new()),
            dispatched: Mutex::new(HashSet::new()),
            ended: Mutex::new(HashSet::new()),
            repositories: Mutex::new(BTreeSet::new()),
        };
        let r = &mut m.registry;
        r.register("scrum_claims", "Tasks handed to workers", m.claims.clone());
        r.register(
            "scrum_empty_polls",
            "Requests for work that got none",
            m.empty_polls.clone(),
        );
        r.register("scrum_heartbeats", "Leases renewed", m.heartbeats.clone());
        r.register(
            "scrum_lease_lost",
            "Reports refused because the caller no longer held the lease",
            m.lease_lost.clone(),
        );
        r.register(
            "scrum_http_errors",
            "API responses with an error status, by class (4xx, 5xx)",
            m.http_errors.clone(),
        );
        r.register(
            "scrum_runs",
            "Attempts that ended, by repository and outcome (completed, failed, released, lost)",
            m.runs.clone(),
        );
        r.register(
            "scrum_tasks_finished",
            "Tasks that reached a final state through a worker's report or a lapsed lease, by repository and state (completed, failed, cancelled)",
            m.finished.clone(),
        );
        r.register_with_unit(
            "scrum_cost",
            "What finished runs cost (every attempt's report summed), as their workers reported it, by repository",
            Unit::Other("usd".into()),
            m.cost.clone(),
        );
        r.register(
            "scrum_tokens",
            "Model tokens finished runs used (every attempt's report summed), as their workers reported them, by repository",
            m.tokens.clone(),
        );
        r.register_with_unit(
            "scrum_run_duration",
            "How long attempts ran, from claim to their end, by outcome",
            Unit::Seconds,
            m.run_duration.clone(),
        );
        r.register_with_unit(
            "scrum_queue_wait",
            "How long tasks waited claimable before a worker claimed them",
            Unit::Seconds,
            m.queue_wait.clone(),
        );
        r.register_with_unit(
            "scrum_dispatch_latency",
            "From what made an issue ready (trigger: webhook, its ready label, or the poll that queued it) to a worker holding its task; first claim of each run",
            Unit::Seconds,
            m.dispatch_latency.clone(),
        );
        r.register_with_unit(
            "scrum_github_request_duration",
            "GitHub requests by kind and HTTP status (timeout or error when none came)",
            Unit::Seconds,
            m.github_requests.clone(),
        );
        r.register(
            "scrum_github_points",
            "Rate-limit points GitHub answers cost, by budget (rest: the primary REST limit; graphql: the GraphQL limit)",
            m.github_points.clone(),
        );
        r.register(
            "scrum_follow_ups",
            "Follow-ups of workers' pull requests, by cause (checks, conflicts, comments, changes-requested) and outcome (run: a follow-up run was queued; exhausted: FOLLOW_UP_ROUNDS were used up, left for people)",
            m.follow_ups.clone(),
        );
        for cause in scrum_core::follow_up::FollowUpCause::ALL {
            for outcome in ["run", "exhausted"] {
                let cause = cause.as_str();
                let _ = m.follow_ups.get_or_create(&FollowUp { cause, outcome });
            }
        }
        // Known label sets start at zero, so `rate()` sees their first increase.
        for budget in ["rest", "graphql"] {
            let _ = m.github_points.get_or_create(&Budget { budget });
        }
        for class in ["4xx", "5xx"] {
            let _ = m.http_errors.get_or_create(&Class { class });
        }
        for end in AttemptEnd::ALL {
            let _ = m.run_duration.get_or_create(&Outcome {
                outcome: end.as_str(),
            });
        }
        for trigger in ["webhook", "label", "poll"] {
            let _ = m.dispatch_latency.get_or_create(&Trigger { trigger });
        }
        m
    }

    /// Starts the per-repository counters of `repositories` at zero.
    fn know_repositories(&self, repositories: &BTreeSet<String>) {
        for repository in repositories {
            for end in AttemptEnd::ALL {
                let _ = self.runs.get_or_create(&RepoOutcome {
                    repository: repository.clone(),
                    outcome: end.as_str(),
                });
            }
            for state in FINISHED {
                let _ = self.finished.get_or_create(&RepoState {
                    repository: repository.clone(),
                    state: state.as_str(),
                });
            }
            let repo = Repo {
                repository: repository.clone(),
            };
            let _ = self.cost.get_or_create(&repo);
            let _ = self.tokens.get_or_create(&repo);
        }
    }

    /// Counts an API response with a 4xx or 5xx status.
    pub(crate) fn http_error(&self, status: axum::http::StatusCode) {
        let class = if status.is_server_error() {
            "5xx"
        } else {
            "4xx"
        };
        self.http_errors.get_or_create(&Class { class }).inc();
    }

    /// Remembers that a verified webhook about `task` arrived at `at` (the first
    /// one since the task was last claimed counts).
    pub(crate) fn webhook_arrived(&self, task: TaskId, at: Timestamp) {
        let mut w = lock(&self.webhooks);
        if w.len() >= REMEMBERED && !w.contains_key(&task) {
            w.clear();
        }
        w.entry(task).or_insert(at);
    }

    /// The exposition: what happened since start, then `scrape`'s gauges, in the
    /// Prometheus text format, or OpenMetrics when `openmetrics`.
    pub(crate) fn render(&self, scrape: &Scrape, openmetrics: bool) -> String {
        let mut repositories = scrape.repositories();
        repositories.extend(lock(&self.repositories).iter().cloned());
        self.know_repositories(&repositories);
        let gauges = scrape.registry(&repositories);
        let mut out = String::with_capacity(16 * 1024);
        if openmetrics {
            use prometheus_client::encoding::text;
            let _ = text::encode_registry(&mut out, &self.registry);
            let _ = text::encode_registry(&mut out, &gauges);
            let _ = text::encode_eof(&mut out);
        } else {
            use prometheus_client::encoding::prometheus_text;
            let _ = prometheus_text::encode(&mut out, &self.registry);
            let _ = prometheus_text::encode(&mut out, &gauges);
        }
        out
    }

    /// The start of `task`'s dispatch latency, and what it was.
    fn ready_at(&self, task: &Task) -> (Timestamp, &'static str) {
        let webhook = lock(&self.webhooks).remove(&task.id);
        if let Some(at) = webhook.filter(|at| task.enqueued_at().since(*at) <= WEBHOOK_LEADS_WITHIN)
        {
            return (at, "webhook");
        }
        let label = task.approval.as_ref().and_then(|a| a.at);
        if let Some(at) = label.filter(|at| task.enqueued_at().since(*at) <= LABEL_LEADS_WITHIN) {
            return (at.min(task.enqueued_at()), "label");
        }
        (task.enqueued_at(), "poll")
    }

    /// Remembers `task`'s repository (the configured ones are a bounded set).
    fn saw(&self, task: &Task) {
        let mut repos = lock(&self.repositories);
        if !repos.contains(task.id.repo()) {
            repos.insert(task.id.repo().to_string());
        }
    }
}

/// Adds `item` to `set` (which starts over past [`REMEMBERED`]); whether it was new.
fn remember<T: std::hash::Hash + Eq>(set: &Mutex<HashSet<T>>, item: T) -> bool {
    let mut s = lock(set);
    if s.len() >= REMEMBERED {
        s.clear();
    }
    s.insert(item)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Observer for Metrics {
    fn claimed(&self, task: &Task) {
        let Some(lease) = task.lease() else {
            return;
        };
        self.saw(task);
        let claimed = lease.claimed_at;
        // Since when it waited: its run's queueing, or the end of the attempt
        // before (and its backoff).
        let claimable = task
            .run
            .attempts
            .iter()
            .rev()
            .nth(1)
            .and_then(|a| a.ended_at)
            .map_or(task.enqueued_at(), |ended| ended.max(task.enqueued_at()));
        self.queue_wait.observe(seconds(claimed.since(claimable)));
        if task.attempts() <= 1 && remember(&self.dispatched, (task.id.clone(), task.run.number)) {
            let (ready, trigger) = self.ready_at(task);
            self.dispatch_latency
                .get_or_create(&Trigger { trigger })
                .observe(seconds(claimed.since(ready)));
        }
    }

    fn attempt_ended(&self, task: &Task, end: AttemptEnd, now: Timestamp) {
        let Some(attempt) = task.last_attempt() else {
            return;
        };
        if !remember(&self.ended, attempt.token) {
            return;
        }
        self.saw(task);
        let repository = task.id.repo().to_string();
        let outcome = end.as_str();
        self.runs
            .get_or_create(&RepoOutcome {
                repository: repository.clone(),
                outcome,
            })
            .inc();
        self.run_duration
            .get_or_create(&Outcome { outcome })
            .observe(seconds(now.since(attempt.started_at)));
        if task.state().is_terminal() {
            self.finished
                .get_or_create(&RepoState {
                    repository: repository.clone(),
                    state: task.state().as_str(),
                })
                .inc();
        }
        // A run's cost is counted once, when it ends: the task sums what each
        // attempt's report said (failures included).
        if task.state().is_terminal() {
            let repo = Repo { repository };
            let spend = task.spend();
            if let Some(usd) = spend.cost_usd.filter(|u| u.is_finite() && *u > 0.0) {
                self.cost.get_or_create(&repo).inc_by(usd);
            }
            if let Some(tokens) = spend.tokens {
                self.tokens.get_or_create(&repo).inc_by(tokens);
            }
        }
    }

    fn source_request(&self, kind: &'static str, status: &str, elapsed: Duration) {
        self.github_requests
            .get_or_create(&Request {
                kind,
                status: status.to_string(),
            })
            .observe(seconds(elapsed));
    }

    fn source_points(&self, budget: &'static str, points: u64) {
        self.github_points
            .get_or_create(&Budget { budget })
            .inc_by(points);
    }

    fn follow_up(
        &self,
        _task: &Task,
        cause: scrum_core::follow_up::FollowUpCause,
        exhausted: bool,
    ) {
        let outcome = if exhausted { "exhausted" } else { "run" };
        let cause = cause.as_str();
        self.follow_ups
            .get_or_create(&FollowUp { cause, outcome })
            .inc();
    }
}

/// The final states `scrum_tasks_finished_total` counts.
const FINISHED: [TaskState; 3] = [
    TaskState::Completed,
    TaskState::Failed,
    TaskState::Cancelled,
];
