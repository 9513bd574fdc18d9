//! The operations the queue is built from: reading a task with its version,
//! committing a step with the COMMIT script, retrying on a lost race.

use std::collections::HashMap;

use scrum_core::state::Step;
use scrum_core::store::{Version, Versioned, Written};
use scrum_core::{Error, ErrorKind, Result, Task, TaskId, TaskState, Timestamp};

use super::keys::{member, order_score, state_index};
use super::{RedisQueue, scripts};
use crate::logic::{self, Columns};

/// Maps a Redis error met while `doing` something, once, to the error callers see.
pub(super) fn redis_error(doing: &str, e: redis::RedisError) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        ErrorKind::Unavailable
    } else {
        match e.code() {
            Some("NOAUTH" | "WRONGPASS") => ErrorKind::Unauthorized,
            Some("NOPERM") => ErrorKind::Forbidden,
            Some("BUSY" | "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN") => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        }
    };
    Error::new(kind, format!("store: cannot {doing}")).with_source(e)
}

impl RedisQueue {
    /// The task `id` with its version.
    pub(super) async fn load(&self, id: &TaskId) -> Result<Option<Versioned>> {
        let mut con = self.con.clone();
        let (version, json): (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.task(&member(id)))
            .arg("v")
            .arg("json")
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read a task", e))?;
        versioned(version, json)
    }

    /// The locks in-progress tasks hold (member, lease expiry, keys), and the
    /// count of changes to them, read together.
    pub(super) async fn held_locks(&self) -> Result<(i64, Vec<(String, Timestamp, Vec<String>)>)> {
        let mut con = self.con.clone();
        let (seq, locked): (Option<i64>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&self.keys.locks_seq)
            .cmd("HGETALL")
            .arg(&self.keys.locked)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read the held locks", e))?;
        let held = locked
            .into_iter()
            .filter_map(|(m, entry)| {
                let mut lines = entry.lines();
                let expires_at = Timestamp(lines.next()?.parse().ok()?);
                Some((m, expires_at, lines.map(str::to_string).collect()))
            })
            .collect();
        Ok((seq.unwrap_or(0), held))
    }

    /// Writes `step` if the task is still at `version` (0: must not exist; `old` is
    /// the task as read at that version), and deletes the effect `ack` in the same
    /// script; a claim of a task with lock keys passes `locks_seq`, the count of
    /// lock changes its decision read, and is stored only while it holds.
    pub(super) async fn commit(
        &self,
        old: Option<&Task>,
        step: &Step,
        version: i64,
        ack: Option<u64>,
        locks_seq: Option<i64>,
    ) -> Result<Written> {
        let task = &step.task;
        let c = Columns::of(task);
        let json = logic::to_json(task)?;
        // Where the task goes. A pending task due later waits in `delayed`, which
        // claims move into `ready` when its time comes.
        let (index, index_score) = if c.claimable {
            if task
                .claimable_from()
                .is_some_and(|at| at <= task.updated_at)
            {
                ("ready", order_score(c.priority, c.created_at))
            } else {
                ("delayed", c.not_before)
            }
        } else if let Some(expires) = c.lease_expires_at {
            ("leases", expires)
        } else {
            ("", 0)
        };
        let order = order_score(c.priority, c.created_at);
        let (old_state, old_index, order_changed) = match old {
            None => (0, "", true),
            Some(o) => {
                let oc = (i16::from(o.issue.priority().rank()), o.issue.created_at.0);
                let old_index = match o.state() {
                    TaskState::Pending => "pending",
                    TaskState::InProgress => "leases",
                    _ => "",
                };
                (
                    state_index(o.state()),
                    old_index,
                    order_score(oc.0, oc.1) != order,
                )
            }
        };
        let k = &self.keys;
        let mut call = scripts::COMMIT.prepare_invoke();
        call.key(k.task(&member(&task.id)))
            .key(&k.all)
            .key(&k.ready)
            .key(&k.delayed)
            .key(&k.leases)
            .key(&k.claiming)
            .key(&k.rank)
            .key(&k.outbox)
            .key(&k.outbox_ids)
            .key(&k.outbox_seq)
            .key(&k.outbox_failures);
        for s in &k.states {
            call.key(s);
        }
        call.key(&k.lock_keys).key(&k.locked).key(&k.locks_seq);
        call.arg(member(&task.id))
            .arg(version)
            .arg(json)
            .arg(state_index(task.state()))
            .arg(index)
            .arg(index_score)
            .arg(order)
            .arg(ack.map(|id| id.to_string()).unwrap_or_default())
            .arg(old_state)
            .arg(u8::from(order_changed))
            .arg(old_index)
            .arg(task.locks.join("\n"))
            .arg(locks_seq.map(|s| s.to_string()).unwrap_or_default())
            .arg(u8::from(old.is_some_and(|o| !o.locks.is_empty())));
        for effect in &step.effects {
            call.arg(logic::to_json(effect)?);
        }
        let mut con = self.con.clone();
        let written: i64 = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("store a task", e))?;
        Ok(match written {
            -2 => Written::LockHeld,
            w if w < 0 => Written::Conflict,
            w => Written::Stored(Version::try_from(w).unwrap_or(0)),
        })
    }

    /// Reads the tasks `members` name, in that order (skipping any deleted since).
    pub(super) async fn tasks(&self, members: &[String]) -> Result<Vec<Task>> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for m in members {
            pipe.cmd("HGET").arg(self.keys.task(m)).arg("json");
        }
        let mut con = self.con.clone();
        let jsons: Vec<Option<String>> = pipe
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read tasks", e))?;
        jsons
            .into_iter()
            .flatten()
            .map(|j| logic::task_from_json(&j))
            .collect()
    }

    pub(super) async fn members(
        &self,
        set: &str,
        start: isize,
        stop: isize,
    ) -> Result<Vec<String>> {
        let mut con = self.con.clone();
        redis::cmd("ZRANGE")
            .arg(set)
            .arg(start)
            .arg(stop)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("list tasks", e))
    }
}

pub(super) fn versioned(version: Option<i64>, json: Option<String>) -> Result<Option<Versioned>> {
    match (version, json) {
        (Some(version), Some(json)) => Ok(Some(Versioned {
            task: logic::task_from_json(&json)?,
            version: Version::try_from(version).unwrap_or(0),
        })),
        _ => Ok(None),
    }
}

/// A `ZRANGE` stop index for `limit` items from `offset` (-1: to the end).
pub(super) fn stop_index(offset: usize, limit: Option<usize>) -> isize {
    match limit {
        Some(0) => -2,
        Some(l) => isize::try_from(offset.saturating_add(l) - 1).unwrap_or(isize::MAX),
        None => -1,
    }
}
