//! What is true at a scrape: read from the store and the engine by
//! [`Scrape::read`], registered fresh in a registry of its own at each scrape, so a
//! repository that no longer has tasks leaves no stale series behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use scrum_core::engine::{
    EngineStatus, Orchestrator, Scaling, WorkerInfo, WorkerStatus, WriteHealth,
};
use scrum_core::{QueueCounts, Task, TaskFilter, Timestamp};

use super::{Repo, RepoState};

/// The most outbox entries one scrape counts.
const OUTBOX_SCAN: usize = 100_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// Everything the gauges show, read once per scrape. A store that does not
/// answer leaves its parts empty (and `scrum_store_up` at 0).
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) now: Timestamp,
    pub(crate) counts: Option<QueueCounts>,
    /// The live tasks (pending and in progress).
    pub(crate) live: Option<Vec<Task>>,
    pub(crate) workers: Vec<WorkerInfo>,
    pub(crate) status: EngineStatus,
    pub(crate) writes: Option<WriteHealth>,
    /// Effects not yet applied (due, backing off or set aside).
    pub(crate) outbox: Option<usize>,
    /// The repositories whose monthly budget is spent.
    pub(crate) budget_spent: BTreeSet<String>,
    /// What `GET /scaling` answers.
    pub(crate) scaling: Option<Scaling>,
}

impl Scrape {
    /// Reads what the gauges show from `o`.
    pub(crate) async fn read(o: &Orchestrator) -> Scrape {
        let counts = o.reads().counts().await.ok();
        let live = o.reads().tasks(&TaskFilter::live()).await.ok();
        let writes = o.reads().write_health().await.ok();
        let outbox = o.reads().outbox_backlog(OUTBOX_SCAN).await.ok();
        let budget_spent = o
            .reads()
            .budget_holds()
            .into_iter()
            .map(|(repo, _)| repo)
            .collect();
        // A store that does not answer shows as no workers, as it shows as no counts.
        let workers = o.reads().workers().await;
        let scaling = match (&live, &workers) {
            (Some(live), Ok(workers)) => o.reads().scaling_of(live, workers).await.ok(),
            _ => None,
        };
        let workers = workers.unwrap_or_default();
        Scrape {
            now: o.now(),
            counts,
            live,
            workers,
            status: o.reads().status(),
            writes,
            outbox,
            budget_spent,
            scaling,
        }
    }

    /// The repositories the scrape knows of: those with live tasks or failing writes
    /// (the metrics add those claims and reports named).
    pub(crate) fn repositories(&self) -> BTreeSet<String> {
        let mut repos: BTreeSet<String> = self
            .live
            .iter()
            .flatten()
            .map(|t| t.id.repo().to_string())
            .collect();
        for r in self.writes.iter().flat_map(|w| &w.repositories) {
            repos.insert(r.repository.clone());
        }
        repos.extend(self.budget_spent.iter().cloned());
        repos
    }

    /// The gauges, registered in a registry of their own.
    pub(crate) fn registry(&self, repositories: &BTreeSet<String>) -> Registry {
        let mut r = Registry::default();
        let one = |value: i64| {
            let g: Gauge = Gauge::default();
            g.set(value);
            g
        };
        let flag = |b: bool| one(i64::from(b));
        let count = |n: u64| one(i64::try_from(n).unwrap_or(i64::MAX));

        let info: Family<Version, Gauge> = Family::default();
        info.get_or_create(&Version {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        r.register(
            "scrum_build_info",
            "Always 1, labelled with the orchestrator's version",
            info,
        );
        r.register(
            "scrum_store_up",
            "Whether the queue's store answered this scrape",
            flag(self.counts.is_some()),
        );

        let totals: Family<State, Gauge> = Family::default();
        if let Some(c) = &self.counts {
            for (state, n) in [
                ("pending", c.pending),
                ("in_progress", c.in_progress),
                ("completed", c.completed),
                ("failed", c.failed),
                ("cancelled", c.cancelled),
                ("parked", c.parked),
            ] {
                totals.get_or_create(&State { state }).set(n as i64);
            }
        }
        r.register(
            "scrum_queue_tasks",
            "Tasks in each state, all repositories",
            totals,
        );
        self.register_live(&mut r, repositories);

        let workers: Family<Status, Gauge> = Family::default();
        for (status, s) in [
            ("busy", WorkerStatus::Busy),
            ("available", WorkerStatus::Idle),
            ("draining", WorkerStatus::Draining),
            ("offline", WorkerStatus::Offline),
        ] {
            let n = self.workers.iter().filter(|w| w.status == s).count();
            workers.get_or_create(&Status { status }).set(n as i64);
        }
        r.register("scrum_workers", "Workers in each status", workers);
        if let Some(s) = &self.scaling {
            r.register(
                "scrum_desired_workers",
                "How many workers the queue wants (GET /scaling): MIN_IDLE_WORKERS plus ready and running tasks, at most MAX_WORKERS",
                count(s.desired_workers),
            );
        }

        let s = &self.status;
        r.register(
            "scrum_leader",
            "Whether this orchestrator holds the leader lease",
            flag(s.leader),
        );
        r.register(
            "scrum_github_connected",
            "Whether GitHub answered the last request normally",
            flag(s.github_connected),
        );
        r.register(
            "scrum_dispatch_paused",
            "Whether an operator paused dispatch",
            flag(s.paused),
        );
        r.register(
            "scrum_effects_failing",
            "GitHub effects that failed in the last dispatch round",
            count(s.effects_failing),
        );
        if let Some(left) = s.rate_limit_remaining {
            r.register(
                "scrum_github_rate_limit_remaining",
                "GitHub's primary rate limit: points left, from its last answer",
                count(left),
            );
        }
        if let Some(reset) = s.rate_limit_reset {
            r.register_with_unit(
                "scrum_github_rate_limit_reset_timestamp",
                "When GitHub's primary rate limit resets (Unix time)",
                Unit::Seconds,
                one(reset.0 / 1000),
            );
        }
        if let Some(n) = self.outbox {
            r.register(
                "scrum_outbox_pending",
                "GitHub effects not yet applied: due, backing off or set aside",
                count(n as u64),
            );
        }
        self.register_writes(&mut r, repositories);
        r
    }

    /// Live tasks by repository and state, the oldest ready task's age, and the
    /// budget flag per repository.
    fn register_live(&self, r: &mut Registry, repositories: &BTreeSet<String>) {
        let by_repo: Family<RepoState, Gauge> = Family::default();
        let mut oldest: Option<Timestamp> = None;
        let mut seen: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
        for t in self.live.iter().flatten() {
            let state = live_state(t, self.now);
            if state == "ready" {
                let since = ready_since(t);
                oldest = Some(oldest.map_or(since, |o| o.min(since)));
            }
            *seen.entry((t.id.repo().to_string(), state)).or_default() += 1;
        }
        for repository in repositories {
            for state in LIVE_STATES {
                let n = seen.get(&(repository.clone(), state)).copied().unwrap_or(0);
                by_repo
                    .get_or_create(&RepoState {
                        repository: repository.clone(),
                        state,
                    })
                    .set(n);
            }
        }
        r.register(
            "scrum_tasks",
            "Live tasks by repository and state: ready (claimable now), waiting (backing off), held (for review or cancellation), blocked (by open dependencies), in_progress",
            by_repo,
        );
        let age: Gauge<f64, AtomicU64> = Gauge::default();
        age.set(oldest.map_or(0.0, |o| self.now.since(o).as_secs_f64()));
        r.register_with_unit(
            "scrum_oldest_ready_task_age",
            "How long the longest-waiting claimable task has waited (0 when none waits)",
            Unit::Seconds,
            age,
        );
        let budget: Family<Repo, Gauge> = Family::default();
        for repository in repositories {
            budget
                .get_or_create(&Repo {
                    repository: repository.clone(),
                })
                .set(i64::from(self.budget_spent.contains(repository)));
        }
        r.register(
            "scrum_budget_exhausted",
            "Whether the repository's monthly budget (REPO_MONTHLY_BUDGET_USD) is used up (1), which holds its tasks",
            budget,
        );
    }

    /// The outbox's failing and set-aside effects, and the repositories refusing
    /// writes, per repository.
    fn register_writes(&self, r: &mut Registry, repositories: &BTreeSet<String>) {
        let backing_off: Family<Repo, Gauge> = Family::default();
        let dead: Family<Repo, Gauge> = Family::default();
        let refused: Family<Repo, Gauge> = Family::default();
        for repository in repositories {
            let repo = Repo {
                repository: repository.clone(),
            };
            let _ = backing_off.get_or_create(&repo);
            let _ = dead.get_or_create(&repo);
            let _ = refused.get_or_create(&repo);
        }
        for w in self.writes.iter().flat_map(|w| &w.repositories) {
            let repo = Repo {
                repository: w.repository.clone(),
            };
            backing_off.get_or_create(&repo).set(w.failing as i64);
            dead.get_or_create(&repo).set(w.dead as i64);
            refused.get_or_create(&repo).set(i64::from(w.refused));
        }
        r.register(
            "scrum_outbox_backing_off",
            "GitHub effects backing off after a failure, by repository",
            backing_off,
        );
        r.register(
            "scrum_outbox_dead",
            "GitHub effects set aside until an operator retries them, by repository",
            dead,
        );
        r.register(
            "scrum_repository_writes_refused",
            "Whether GitHub refuses this orchestrator's writes to the repository",
            refused,
        );
    }
}

/// The `state` values of `scrum_tasks`.
const LIVE_STATES: [&str; 5] = ["ready", "waiting", "held", "blocked", "in_progress"];

/// Which of [`LIVE_STATES`] a live task is in at `now`.
fn live_state(t: &Task, now: Timestamp) -> &'static str {
    match &t.status {
        scrum_core::Status::Running { .. } => "in_progress",
        scrum_core::Status::Held(h) if h.review.is_some() => "held",
        scrum_core::Status::Held(_) => "blocked",
        scrum_core::Status::Scheduled { at } if *at > now => "waiting",
        _ => "ready",
    }
}

/// Since when a ready task has been claimable.
fn ready_since(t: &Task) -> Timestamp {
    match t.status {
        scrum_core::Status::Scheduled { at } => t.enqueued_at().max(at),
        _ => t.enqueued_at(),
    }
}
