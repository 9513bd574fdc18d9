//! The worker registry: who has called, from where, what they hold, and how their
//! hosts look to the probe.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{TaskId, Timestamp, WorkerId};
use crate::probe::{HostHealth, ProbeReport};

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
    /// The task it holds.
    pub current_task: Option<TaskId>,
    /// When it last called.
    pub last_seen: Option<Timestamp>,
    /// Its host's health from the probe, `unknown` without one.
    pub health: HostHealth,
    /// Why the host is not healthy.
    pub health_reason: Option<String>,
    /// Tasks it completed since the orchestrator started.
    pub completed: u64,
    /// Attempts it reported failed since the orchestrator started.
    pub failed: u64,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    address: Option<IpAddr>,
    last_seen: Option<Timestamp>,
    current_task: Option<TaskId>,
    draining: bool,
    completed: u64,
    failed: u64,
}

/// Workers by id and probe reports by host.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    workers: BTreeMap<WorkerId, Entry>,
    hosts: HashMap<String, ProbeReport>,
}

impl Registry {
    pub(crate) fn seen(&mut self, worker: &WorkerId, address: Option<IpAddr>, now: Timestamp) {
        let e = self.workers.entry(worker.clone()).or_default();
        e.last_seen = Some(now);
        if address.is_some() {
            e.address = address;
        }
    }

    pub(crate) fn holds(&mut self, worker: &WorkerId, task: Option<TaskId>) {
        self.workers.entry(worker.clone()).or_default().current_task = task;
    }

    /// Clears `task` from whoever holds it (after the reaper ended the lease).
    pub(crate) fn drop_task(&mut self, task: &TaskId) {
        for e in self.workers.values_mut() {
            if e.current_task.as_ref() == Some(task) {
                e.current_task = None;
            }
        }
    }

    pub(crate) fn finished(&mut self, worker: &WorkerId, success: bool) {
        let e = self.workers.entry(worker.clone()).or_default();
        e.current_task = None;
        if success {
            e.completed += 1;
        } else {
            e.failed += 1;
        }
    }

    pub(crate) fn set_draining(&mut self, worker: &WorkerId, draining: bool) {
        self.workers.entry(worker.clone()).or_default().draining = draining;
    }

    pub(crate) fn is_draining(&self, worker: &WorkerId) -> bool {
        self.workers.get(worker).is_some_and(|e| e.draining)
    }

    pub(crate) fn record_probe(&mut self, host: &str, report: ProbeReport) {
        self.hosts.insert(host.to_string(), report);
    }

    /// The address a worker last called from.
    pub(crate) fn address(&self, worker: &WorkerId) -> Option<IpAddr> {
        self.workers.get(worker).and_then(|e| e.address)
    }

    /// The task a worker last claimed here and has not finished.
    pub(crate) fn current_task(&self, worker: &WorkerId) -> Option<TaskId> {
        self.workers
            .get(worker)
            .and_then(|e| e.current_task.clone())
    }

    /// The configured host `worker` is on: the host of that name, or the one whose
    /// address the worker calls from.
    pub(crate) fn host_of<'h>(&self, worker: &str, hosts: &'h [String]) -> Option<&'h String> {
        if let Some(h) = hosts.iter().find(|h| h.as_str() == worker) {
            return Some(h);
        }
        let address = WorkerId::new(worker).ok().and_then(|w| self.address(&w))?;
        hosts.iter().find(|h| host_ip(h) == Some(address))
    }

    /// Every worker that called, then every configured host no worker calls from.
    /// A worker holding a task is never offline: a long task is not a dead worker.
    pub(crate) fn list(
        &self,
        hosts: &[String],
        now: Timestamp,
        stale_after: Duration,
    ) -> Vec<WorkerInfo> {
        let host_of =
            |addr: Option<IpAddr>| addr.and_then(|a| hosts.iter().find(|h| host_ip(h) == Some(a)));
        let mut out: Vec<WorkerInfo> = self
            .workers
            .iter()
            .map(|(id, e)| {
                let status = if e.draining {
                    WorkerStatus::Draining
                } else if e.current_task.is_some() {
                    WorkerStatus::Busy
                } else if e.last_seen.is_some_and(|t| now.since(t) <= stale_after) {
                    WorkerStatus::Idle
                } else {
                    WorkerStatus::Offline
                };
                let report = host_of(e.address).and_then(|h| self.hosts.get(h));
                WorkerInfo {
                    id: id.to_string(),
                    ip: e.address.map(|a| a.to_string()),
                    status,
                    current_task: e.current_task.clone(),
                    last_seen: e.last_seen,
                    health: report.map_or(HostHealth::Unknown, |r| r.health),
                    health_reason: report.and_then(|r| r.reason.clone()),
                    completed: e.completed,
                    failed: e.failed,
                }
            })
            .collect();
        for h in hosts {
            let claimed = self
                .workers
                .values()
                .any(|e| e.address.is_some() && e.address == host_ip(h));
            if !claimed {
                let report = self.hosts.get(h);
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
                });
            }
        }
        out
    }
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

    fn w(id: &str) -> WorkerId {
        WorkerId::new(id).unwrap()
    }

    #[test]
    fn hosts_match_workers_by_address_not_by_id() {
        let mut r = Registry::default();
        let hosts = vec!["10.0.0.1".to_string(), "10.0.0.2:2222".to_string()];
        r.seen(
            &w("worker-01"),
            Some("10.0.0.2".parse().unwrap()),
            Timestamp(0),
        );
        r.record_probe(
            "10.0.0.2:2222",
            ProbeReport {
                health: HostHealth::Degraded,
                rtt: None,
                reason: Some("ai-scrum-worker is inactive".into()),
            },
        );
        let list = r.list(&hosts, Timestamp(1000), Duration::from_secs(60));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "worker-01");
        assert_eq!(list[0].health, HostHealth::Degraded);
        assert_eq!(list[1].id, "10.0.0.1");
        assert_eq!(list[1].status, WorkerStatus::Offline);
    }

    #[test]
    fn busy_workers_stay_listed_however_long_the_task() {
        let mut r = Registry::default();
        r.seen(&w("a"), None, Timestamp(0));
        r.holds(&w("a"), Some("acme/widgets#1".parse().unwrap()));
        r.seen(&w("b"), None, Timestamp(0));
        let list = r.list(&[], Timestamp(10_000_000), Duration::from_secs(60));
        assert_eq!(list[0].status, WorkerStatus::Busy);
        assert_eq!(list[1].status, WorkerStatus::Offline);
    }
}
