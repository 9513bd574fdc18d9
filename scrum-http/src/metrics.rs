//! `/metrics`: counters kept by the API and gauges read at scrape time, written in
//! the Prometheus text format (version 0.0.4) by hand, to keep the build lean.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use scrum_core::QueueCounts;
use scrum_core::engine::{EngineStatus, RepoWrites, WorkerInfo, WorkerStatus, WriteHealth};

/// Counters of what the API did since start.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) claims: AtomicU64,
    pub(crate) empty_polls: AtomicU64,
    pub(crate) completions: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) releases: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) client_errors: AtomicU64,
    pub(crate) server_errors: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: counters, then the queue, worker and engine gauges.
    pub(crate) fn render(
        &self,
        counts: Option<QueueCounts>,
        workers: &[WorkerInfo],
        status: &EngineStatus,
        writes: Option<&WriteHealth>,
    ) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "scrum_claims_total",
                "Tasks handed to workers.",
                &self.claims,
            ),
            (
                "scrum_empty_polls_total",
                "Requests for work that got none.",
                &self.empty_polls,
            ),
            (
                "scrum_completions_total",
                "Successful completions reported.",
                &self.completions,
            ),
            (
                "scrum_failures_total",
                "Failed attempts reported.",
                &self.failures,
            ),
            (
                "scrum_releases_total",
                "Tasks handed back without spending an attempt.",
                &self.releases,
            ),
            (
                "scrum_heartbeats_total",
                "Leases renewed.",
                &self.heartbeats,
            ),
            (
                "scrum_lease_lost_total",
                "Reports refused because the caller no longer held the lease.",
                &self.lease_lost,
            ),
            (
                "scrum_http_client_errors_total",
                "Requests answered with a 4xx status.",
                &self.client_errors,
            ),
            (
                "scrum_http_server_errors_total",
                "Requests answered with a 5xx status.",
                &self.server_errors,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }

        let _ = writeln!(
            out,
            "# HELP scrum_queue_tasks Tasks in each state.\n# TYPE scrum_queue_tasks gauge"
        );
        if let Some(c) = counts {
            for (state, n) in [
                ("pending", c.pending),
                ("in_progress", c.in_progress),
                ("completed", c.completed),
                ("failed", c.failed),
                ("cancelled", c.cancelled),
            ] {
                let _ = writeln!(out, "scrum_queue_tasks{{state=\"{state}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP scrum_store_up Whether the queue's store answered this scrape.\n# TYPE scrum_store_up gauge\nscrum_store_up {}",
            u8::from(counts.is_some())
        );

        let _ = writeln!(
            out,
            "# HELP scrum_workers Workers in each status.\n# TYPE scrum_workers gauge"
        );
        for (label, status) in [
            ("busy", WorkerStatus::Busy),
            ("available", WorkerStatus::Idle),
            ("draining", WorkerStatus::Draining),
            ("offline", WorkerStatus::Offline),
        ] {
            let n = workers.iter().filter(|w| w.status == status).count();
            let _ = writeln!(out, "scrum_workers{{status=\"{label}\"}} {n}");
        }

        for (name, help, v) in [
            (
                "scrum_github_connected",
                "Whether the last GitHub poll succeeded.",
                status.github_connected,
            ),
            (
                "scrum_dispatch_paused",
                "Whether an operator paused dispatch.",
                status.paused,
            ),
            (
                "scrum_leader",
                "Whether this orchestrator holds the leader lease.",
                status.leader,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                u8::from(v)
            );
        }
        let _ = writeln!(
            out,
            "# HELP scrum_effects_failing GitHub effects that failed in the last dispatch round.\n# TYPE scrum_effects_failing gauge\nscrum_effects_failing {}",
            status.effects_failing
        );
        if let Some(writes) = writes {
            render_writes(&mut out, writes);
        }
        out
    }
}

/// The outbox's failing and set-aside effects, and the repositories refusing
/// writes, per repository (a bounded label set: the configured repositories).
fn render_writes(out: &mut String, writes: &WriteHealth) {
    type Gauge = (&'static str, &'static str, fn(&RepoWrites) -> u64);
    let gauges: [Gauge; 3] = [
        (
            "scrum_outbox_backing_off",
            "GitHub effects backing off after a failure, by repository.",
            |r| r.failing,
        ),
        (
            "scrum_outbox_dead",
            "GitHub effects set aside until an operator retries them, by repository.",
            |r| r.dead,
        ),
        (
            "scrum_repository_writes_refused",
            "Whether GitHub refuses this orchestrator's writes to the repository.",
            |r| u64::from(r.refused),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &writes.repositories {
            let _ = writeln!(
                out,
                "{name}{{repository=\"{}\"}} {}",
                r.repository,
                value(r)
            );
        }
    }
}
