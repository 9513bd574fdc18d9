//! The operations the queue is built from: reading a task with its version,
//! committing a step with the COMMIT script, retrying on a lost race.

use async_trait::async_trait;
use scrum_core::state::{Ctx, Event, Step};
use scrum_core::{Error, ErrorKind, Result, Task, TaskId, TaskState, Timestamp};

use super::keys::{member, order_score, state_index};
use super::{RedisQueue, scripts};
use crate::last_written::VersionedRows;
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

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Committed {
    /// Stored.
    Written,
    /// Not stored: the task changed since it was read.
    Raced,
    /// Not stored: a claim whose lock keys overlap a lock another in-progress task
    /// holds.
    LockHeld,
}

/// A task read with the version its writes must match.
pub(super) struct Versioned {
    pub(super) task: Task,
    pub(super) version: i64,
}

impl RedisQueue {
    pub(super) fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx::sample(now, &self.policy, &self.jitter)
    }

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

    /// Writes `step` if the task is still at `version` (0: must not exist; `old` is
    /// the task as read at that version), and deletes the effect `ack` in the same
    /// script. Says whether it wrote.
    pub(super) async fn commit(
        &self,
        old: Option<&Task>,
        step: &Step,
        version: i64,
        ack: Option<u64>,
    ) -> Result<bool> {
        Ok(self.commit_checked(old, step, version, ack).await? == Committed::Written)
    }

    /// [`RedisQueue::commit`], telling a lost race from a claim refused because an
    /// in-progress task holds an overlapping lock.
    pub(super) async fn commit_checked(
        &self,
        old: Option<&Task>,
        step: &Step,
        version: i64,
        ack: Option<u64>,
    ) -> Result<Committed> {
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
        call.key(&k.lock_keys).key(&k.locked);
        let was_held = old.is_some_and(|o| o.state() == TaskState::InProgress);
        let check_locks =
            task.state() == TaskState::InProgress && !was_held && !task.locks.is_empty();
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
            .arg(if check_locks {
                task.updated_at.0.to_string()
            } else {
                String::new()
            })
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
            -2 => Committed::LockHeld,
            w if w < 0 => Committed::Raced,
            _ => Committed::Written,
        })
    }

    /// Applies `event` to the task `id` and stores the result, retrying on the new
    /// state when another writer got there first. Starts from the task as this
    /// process last wrote it, if it did, and reads it only when that is out of date.
    pub(super) async fn apply_event(
        &self,
        id: &TaskId,
        event: Event,
        now: Timestamp,
    ) -> Result<Task> {
        let ctx = self.ctx(now);
        self.last_written.apply(self, id, event, &ctx).await
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

#[async_trait]
impl VersionedRows for RedisQueue {
    async fn load_versioned(&self, id: &TaskId) -> Result<Option<(Task, i64)>> {
        Ok(self.load(id).await?.map(|c| (c.task, c.version)))
    }

    async fn write_if_at(&self, old: &Task, step: &Step, version: i64) -> Result<bool> {
        self.commit(Some(old), step, version, None).await
    }
}

pub(super) fn versioned(version: Option<i64>, json: Option<String>) -> Result<Option<Versioned>> {
    match (version, json) {
        (Some(version), Some(json)) => Ok(Some(Versioned {
            task: logic::task_from_json(&json)?,
            version,
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
