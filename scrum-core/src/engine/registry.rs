//! What `/workers` shows, built from what the store keeps: the worker records and
//! probe reports ([`crate::WorkerRegistry`]) and the tasks in progress, matched
//! with the configured worker hosts by address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Task, TaskId, Timestamp, WorkerId};
use crate::probe::HostHealth;
use crate::workers::{AgentSandbox, HostReport, WorkerRecord};

/// What a worker is doing, as `/workers` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Holding a task.
    Busy,
    /// Seen recently, holding nothing.
    Idle,
    /// Told to take no new work (an operator action).
    Draining,
    /// Not seen for a while (or a configured host that never called).
    Offline,
}

/// One worker as `/workers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The worker's id, or the host address for a configured host that never called.
    pub id: String,
    /// The address it calls from (or the configured host).
    pub ip: Option<String>,
    /// What it is doing.
    pub status: WorkerStatus,
    /// The task it holds (the first by id, should it hold several).
    pub current_task: Option<TaskId>,
    /// When it last called.
    pub last_seen: Option<Timestamp>,
    /// Its host's health from the probe, `unknown` without one.
    pub health: HostHealth,
    /// Why the host is not healthy.
    pub health_reason: Option<String>,
    /// Tasks it completed, as the store counted them (across restarts).
    pub completed: u64,
    /// Attempts it reported failed, as the store counted them.
    pub failed: u64,
    /// The sandbox its agents run in, as it said; `None` when it never said (or a
    /// configured host no worker calls from).
    pub sandbox: Option<AgentSandbox>,
}

/// Every worker the store knows (and any worker holding a task without a record),
/// then every configured host no worker calls from.
///
/// A worker holding an in-progress task is never offline, however long since it
/// called: a long task is not a dead worker (the lease decides that).
pub(crate) fn list(
    records: Vec<WorkerRecord>,
    reports: &[HostReport],
    in_progress: &[Task],
    hosts: &[String],
    now: Timestamp,
    stale_after: Duration,
) -> Vec<WorkerInfo> {
    let mut held: HashMap<&WorkerId, &TaskId> = HashMap::new();
    for task in in_progress {
        if let Some(worker) = task.holder() {
            held.entry(worker)
                .and_modify(|id| *id = (*id).min(&task.id))
                .or_insert(&task.id);
        }
    }
    let mut by_id: BTreeMap<WorkerId, WorkerRecord> =
        records.into_iter().map(|r| (r.id.clone(), r)).collect();
    for worker in held.keys() {
        by_id
            .entry((*worker).clone())
            .or_insert_with(|| WorkerRecord::unseen((*worker).clone()));
    }
    let report_of = |host: &String| reports.iter().find(|r| &r.host == host);
    let mut out: Vec<WorkerInfo> = by_id
        .values()
        .map(|r| {
            let current_task = held.get(&r.id).map(|id| (*id).clone());
            let status = if r.draining {
                WorkerStatus::Draining
            } else if current_task.is_some() {
                WorkerStatus::Busy
            } else if r.last_seen.is_some_and(|t| now.since(t) <= stale_after) {
                WorkerStatus::Idle
            } else {
                WorkerStatus::Offline
            };
            let report = host_at(r.address, hosts).and_then(report_of);
            WorkerInfo {
                id: r.id.to_string(),
                ip: r.address.map(|a| a.to_string()),
                status,
                current_task,
                last_seen: r.last_seen,
                health: report.map_or(HostHealth::Unknown, |r| r.health),
                health_reason: report.and_then(|r| r.reason.clone()),
                completed: r.completed,
                failed: r.failed,
                sandbox: r.sandbox,
            }
        })
        .collect();
    for h in hosts {
        let claimed = by_id
            .values()
            .any(|r| r.address.is_some() && r.address == host_ip(h));
        if !claimed {
            let report = report_of(h);
            out.push(WorkerInfo {
                id: h.clone(),
                ip: Some(h.clone()),
                status: WorkerStatus::Offline,
                current_task: None,
                last_seen: None,
                health: report.map_or(HostHealth::Unknown, |r| r.health),
                health_reason: report.and_then(|r| r.reason.clone()),
                completed: 0,
                failed: 0,
                sandbox: None,
            });
        }
    }
    out
}

/// The configured host `worker` is on: the host of that name, or the one whose
/// address the worker (as the store has it) calls from.
pub(crate) fn host_of<'h>(
    worker: &str,
    records: &[WorkerRecord],
    hosts: &'h [String],
) -> Option<&'h String> {
    if let Some(h) = hosts.iter().find(|h| h.as_str() == worker) {
        return Some(h);
    }
    let record = records.iter().find(|r| r.id.as_str() == worker)?;
    host_at(record.address, hosts)
}

/// The configured host at `address`.
fn host_at(address: Option<IpAddr>, hosts: &[String]) -> Option<&String> {
    let address = address?;
    hosts.iter().find(|h| host_ip(h) == Some(address))
}

/// The IP address of a configured host (`ip`, `ip:port` or `[v6]:port`).
fn host_ip(host: &str) -> Option<IpAddr> {
    host.parse()
        .ok()
        .or_else(|| host.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LeaseKind, LeaseToken, ReadyIssue};
    use crate::state::{self, Ctx, Event, Jitter, Policy};

    fn w(id: &str) -> WorkerId {
        WorkerId::new(id).unwrap()
    }

    fn seen(id: &str, address: Option<&str>, at: i64) -> WorkerRecord {
        let mut r = WorkerRecord::unseen(w(id));
        r.seen_at(address.map(|a| a.parse().unwrap()), Timestamp(at));
        r
    }

    /// Task `n` claimed by `worker`.
    fn held_by(worker: &str, n: u64) -> Task {
        let policy = Policy::default();
        let issue = ReadyIssue {
            id: TaskId::new("acme/widgets", n).unwrap(),
            title: "t".into(),
            body: String::new(),
            labels: vec![],
            created_at: Timestamp(0),
        };
        let pending = state::new_task(issue, Timestamp(0), &policy).task;
        let jitter = Jitter::fixed(0.5);
        let claim = Event::Claim {
            worker: w(worker),
            token: LeaseToken::random(),
            lease: LeaseKind::Heartbeat,
        };
        let ctx = Ctx::sample(Timestamp(0), &policy, &jitter);
        state::transition(&pending, claim, &ctx).unwrap().task
    }

    #[test]
    fn hosts_match_workers_by_address_not_by_id() {
        let hosts = vec!["10.0.0.1".to_string(), "10.0.0.2:2222".to_string()];
        let records = vec![seen("worker-01", Some("10.0.0.2"), 0)];
        let reports = vec![HostReport {
            host: "10.0.0.2:2222".into(),
            health: HostHealth::Degraded,
            reason: Some("ai-scrum-worker is inactive".into()),
            at: Timestamp(0),
        }];
        let list = list(
            records.clone(),
            &reports,
            &[],
            &hosts,
            Timestamp(1000),
            Duration::from_secs(60),
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "worker-01");
        assert_eq!(list[0].health, HostHealth::Degraded);
        assert_eq!(list[1].id, "10.0.0.1");
        assert_eq!(list[1].status, WorkerStatus::Offline);
        assert_eq!(host_of("worker-01", &records, &hosts), Some(&hosts[1]));
        assert_eq!(host_of("10.0.0.1", &records, &hosts), Some(&hosts[0]));
        assert_eq!(host_of("worker-02", &records, &hosts), None);
    }

    #[test]
    fn busy_workers_stay_listed_however_long_the_task() {
        let records = vec![seen("a", None, 0), seen("b", None, 0)];
        let held = [held_by("a", 2), held_by("a", 1)];
        let list = list(
            records,
            &[],
            &held,
            &[],
            Timestamp(10_000_000),
            Duration::from_secs(60),
        );
        assert_eq!(list[0].status, WorkerStatus::Busy);
        assert_eq!(
            list[0].current_task,
            Some(held[1].id.clone()),
            "the first by id"
        );
        assert_eq!(list[1].status, WorkerStatus::Offline);
    }

    #[test]
    fn a_holder_without_a_record_is_listed_busy() {
        let held = [held_by("from-before", 1)];
        let list = list(
            Vec::new(),
            &[],
            &held,
            &[],
            Timestamp(0),
            Duration::from_secs(60),
        );
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].id.as_str(), list[0].status),
            ("from-before", WorkerStatus::Busy)
        );
        assert_eq!(list[0].last_seen, None);
    }
}
