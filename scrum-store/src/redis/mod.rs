//! [`RedisQueue`]: a store several orchestrators share through one Redis server.

mod keys;
mod ops;
mod outbox;
mod scripts;
mod workers;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use scrum_core::backend;
use scrum_core::state::{self, Event, Jitter, Policy, Refusal, Step};
use scrum_core::{
    EffectFailure, EffectSelector, Enqueued, Error, ErrorKind, Hold, LeaseKind, LeaseToken,
    OutboxEntry, QueueCounts, ReadyIssue, Result, Task, TaskFilter, TaskId, TaskState, Timestamp,
    WorkQueue, WorkerId,
};

use crate::last_written::LastWritten;
use crate::logic::{self, MAX_RETRIES, contention, from_json};
use crate::redact_url;
use crate::url::{take_durability, take_param};
use keys::{Keys, member_id};
use ops::{Committed, redis_error, stop_index, versioned};

/// The schema version this build writes into Redis (the `{prefix}:schema` key).
pub const REDIS_SCHEMA_VERSION: u32 = 1;

/// How long a claimer may take between reserving a task and storing its claim
/// before the reservation lapses and the task is handed out again (a claimer that
/// crashed in between).
const RESERVATION: Duration = Duration::from_secs(30);

/// A [`WorkQueue`] in Redis, shared by any number of orchestrators.
///
/// - **Atomic changes**: a change reads the task and its version,
///   [`scrum_core::state::transition`] decides in Rust, and one Lua script writes
///   the task (if its version is unchanged), its indexes and its outbox effects; a
///   lost race is retried on the new state. A task this process claimed is not
///   read again: its heartbeats and completion start from the task as written
///   and kept in memory, one script call each.
/// - **Claims never collide**: a script pops the first ready task (sorted by one
///   score: priority rank, then issue age; equal scores by id) into a short
///   reservation, so concurrent claimers each get a different task.
/// - **Leader lease** with expiry, taken over once it lapsed unrenewed.
/// - **Isolation**: every key lives under one prefix (default `scrum`), so several
///   queues share one server.
///
/// Durability is Redis's own: run it with `appendonly yes` (and `appendfsync
/// everysec` or `always`). A warning is logged at connect when persistence is off.
pub struct RedisQueue {
    policy: Policy,
    jitter: Jitter,
    con: ConnectionManager,
    keys: Keys,
    /// The tasks this process holds leases on, as it wrote them.
    last_written: LastWritten,
    /// The URL without its password, for messages.
    target: String,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("target", &self.target)
            .field("keys", &self.keys.all)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// Connects to `url` (`redis://[:password@]host:port/db`) under the key prefix
    /// the URL's `prefix=NAME` names (default `scrum`; see
    /// [`RedisQueue::connect_with_prefix`]), with random backoff jitter.
    pub async fn connect(url: &str, policy: Policy) -> Result<RedisQueue> {
        RedisQueue::connect_with_jitter(url, policy, Jitter::random()).await
    }

    /// [`RedisQueue::connect`] with a chosen jitter source.
    pub async fn connect_with_jitter(
        url: &str,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<RedisQueue> {
        let (url, prefix) = take_param(url, "prefix");
        let prefix = prefix.as_deref().unwrap_or("scrum");
        RedisQueue::connect_with_prefix(&url, prefix, policy, jitter).await
    }

    /// Connects to `url` and keeps every key under `prefix` (1-64 letters, digits,
    /// `_`, `-`, `.` or `:`): independent queues on one server.
    pub async fn connect_with_prefix(
        url: &str,
        prefix: &str,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<RedisQueue> {
        let target = redact_url(url);
        if !keys::valid_prefix(prefix) {
            return Err(Error::invalid(format!(
                "store: Redis key prefix {prefix:?} must be 1-64 letters, digits, '_', '-', '.' or ':'"
            )));
        }
        // Durability is the server's own configuration; the parameter is accepted
        // for a uniform DATABASE_URL and not passed on.
        let (url, _) = take_durability(url)?;
        let client = redis::Client::open(url.as_str()).map_err(|_| {
            Error::invalid(format!("DATABASE_URL {target} is not a valid Redis URL"))
        })?;
        let con = client.get_connection_manager().await.map_err(|e| {
            let mapped = redis_error("connect", e);
            let kind = mapped.kind();
            Error::new(kind, format!("store: cannot connect to {target}")).with_source(mapped)
        })?;
        let queue = RedisQueue {
            policy,
            jitter,
            con,
            keys: Keys::new(prefix),
            last_written: LastWritten::default(),
            target,
        };
        queue.check_schema().await?;
        queue.warn_without_persistence().await;
        tracing::debug!(target = %queue.target, prefix, "connected to the Redis store");
        Ok(queue)
    }

    /// Records this build's schema version in a new store; refuses a newer one.
    async fn check_schema(&self) -> Result<()> {
        let mut con = self.con.clone();
        let _: bool = redis::cmd("SET")
            .arg(&self.keys.schema)
            .arg(REDIS_SCHEMA_VERSION)
            .arg("NX")
            .query_async::<Option<String>>(&mut con)
            .await
            .map(|r| r.is_some())
            .map_err(|e| redis_error("read the store's schema version", e))?;
        let stored: String = redis::cmd("GET")
            .arg(&self.keys.schema)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read the store's schema version", e))?;
        match stored.parse::<u32>() {
            Ok(v) if v <= REDIS_SCHEMA_VERSION => Ok(()),
            Ok(v) => Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "store: {} has schema version {v}, written by a newer scrum-store (this \
                     build knows versions up to {REDIS_SCHEMA_VERSION}); upgrade every \
                     orchestrator that shares it",
                    self.target
                ),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Corrupt,
                format!("store: {} holds an unreadable schema version", self.target),
            )),
        }
    }

    /// Logs a warning when the server keeps nothing across its own restart.
    async fn warn_without_persistence(&self) {
        let mut con = self.con.clone();
        let answer: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut con)
            .await;
        // Managed servers may refuse CONFIG: then we cannot tell, and say nothing.
        if let Ok(pair) = answer
            && pair.get(1).map(String::as_str) == Some("no")
        {
            tracing::warn!(
                target = %self.target,
                "Redis runs without appendonly persistence: a Redis restart can lose queue state"
            );
        }
    }
}

#[async_trait]
impl WorkQueue for RedisQueue {
    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.ctx(observed_at);
        for _ in 0..MAX_RETRIES {
            let current = self.load(&issue.id).await?;
            let version = current.as_ref().map_or(0, |c| c.version);
            let task = current.map(|c| c.task);
            let (step, answer) = backend::enqueue_step(task.as_ref(), issue.clone(), &ctx)?;
            let Some(step) = step else {
                return Ok(answer);
            };
            if self.commit(task.as_ref(), &step, version, None).await? {
                return Ok(answer);
            }
        }
        Err(contention(&issue.id))
    }

    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &Hold,
    ) -> Result<Option<Task>> {
        let ctx = self.ctx(now);
        let k = &self.keys;
        for _ in 0..MAX_RETRIES {
            let mut con = self.con.clone();
            let reserved: Option<(String, Option<i64>, Option<String>)> = scripts::RESERVE
                .key(&k.ready)
                .key(&k.delayed)
                .key(&k.claiming)
                .key(&k.rank)
                .key(&k.lock_keys)
                .key(&k.locked)
                .arg(now.0)
                .arg(now.plus(RESERVATION).0)
                .arg(&k.task_prefix)
                .arg(&hold.repos)
                .invoke_async(&mut con)
                .await
                .map_err(|e| redis_error("find a task to claim", e))?;
            let Some((m, version, json)) = reserved else {
                return Ok(None);
            };
            let Some(current) = versioned(version, json)? else {
                // An index entry whose task is gone: drop it.
                let _: i64 = redis::cmd("ZREM")
                    .arg(&k.claiming)
                    .arg(&m)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| redis_error("clean an index", e))?;
                member_id(&m)?;
                continue;
            };
            let event = Event::Claim {
                worker: worker.clone(),
                token: LeaseToken::random(),
                lease,
            };
            let step = match state::transition(&current.task, event, &ctx) {
                Ok(step) => step,
                // Indexed as ready but not claimable: store it again to re-index.
                Err(Refusal::NotClaimable) => Step::store(current.task.clone()),
                Err(e) => return Err(e.into()),
            };
            let claimed = step.task.state() == TaskState::InProgress;
            let committed = self
                .commit_checked(Some(&current.task), &step, current.version, None)
                .await?;
            if committed == Committed::LockHeld {
                // Another claimer took an overlapping lock since the reservation
                // looked: store the task back as it was, which ends the reservation
                // (and the next one passes over it).
                let back = Step::store(current.task.clone());
                self.commit(Some(&current.task), &back, current.version, None)
                    .await?;
                continue;
            }
            if committed == Committed::Written && claimed {
                self.last_written.remember(&step.task, current.version + 1);
                return Ok(Some(step.task));
            }
        }
        Err(Error::unavailable(
            "store: claims kept colliding with other writers; try again",
        ))
    }

    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        self.apply_event(id, event, now).await
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let mut con = self.con.clone();
        let lapsed: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.keys.leases)
            .arg("-inf")
            .arg(now.0)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("find lapsed leases", e))?;
        let mut expired = Vec::with_capacity(lapsed.len());
        for m in lapsed {
            let id = member_id(&m)?;
            match self.apply(&id, Event::Expire, now).await {
                Ok(task) => expired.push(task),
                // Renewed, finished or expired by someone else since the scan.
                Err(e)
                    if matches!(e.kind(), ErrorKind::InvalidTransition | ErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.load(id).await?.map(|v| v.task))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let k = &self.keys;
        // One set and no holder condition: Redis pages it.
        if filter.worker.is_none() && filter.states.len() <= 1 {
            let set = filter
                .states
                .first()
                .map_or(k.all.as_str(), |s| k.state(*s));
            let start = isize::try_from(filter.offset).unwrap_or(isize::MAX);
            let members = self
                .members(set, start, stop_index(filter.offset, filter.limit))
                .await?;
            return self.tasks(&members).await;
        }
        let mut members = Vec::new();
        if filter.states.is_empty() {
            members = self.members(&k.all, 0, -1).await?;
        } else {
            for s in &filter.states {
                members.extend(self.members(k.state(*s), 0, -1).await?);
            }
            members.sort_unstable();
            members.dedup();
        }
        let tasks = self.tasks(&members).await?;
        Ok(tasks
            .into_iter()
            .filter(|t| filter.matches(t))
            .skip(filter.offset)
            .take(filter.limit.unwrap_or(usize::MAX))
            .collect())
    }

    async fn counts(&self) -> Result<QueueCounts> {
        let mut pipe = redis::pipe();
        for s in &self.keys.states {
            pipe.cmd("ZCARD").arg(s);
        }
        let mut con = self.con.clone();
        let n: Vec<i64> = pipe
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("count tasks", e))?;
        let mut counts = QueueCounts::default();
        for (state, n) in TaskState::ALL.into_iter().zip(n) {
            logic::set_count(&mut counts, state, n);
        }
        Ok(counts)
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_page(0, limit).await
    }

    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.due(now, limit).await
    }

    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.failing(limit).await
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let ctx = self.ctx(now);
        let k = &self.keys;
        let mut con = self.con.clone();
        let effect: Option<String> = redis::cmd("HGET")
            .arg(&k.outbox)
            .arg(id)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("acknowledge an effect", e))?;
        let Some(effect) = effect else {
            return Ok(());
        };
        let effect: state::Effect = from_json(&effect, "effect")?;
        if effect.kind.is_terminal() {
            for _ in 0..MAX_RETRIES {
                let Some(current) = self.load(&effect.task).await? else {
                    break;
                };
                let Some(step) = backend::ack_step(&current.task, &effect, &ctx) else {
                    break;
                };
                // The task's new state and the effect's deletion in one script.
                if self
                    .commit(Some(&current.task), &step, current.version, Some(id))
                    .await?
                {
                    return Ok(());
                }
            }
        }
        let _: i64 = scripts::ACK
            .key(&k.outbox)
            .key(&k.outbox_ids)
            .key(&k.outbox_failures)
            .arg(id)
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("acknowledge an effect", e))?;
        Ok(())
    }

    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        self.record_failure(id, failure).await
    }

    async fn revive_effects(&self, which: &EffectSelector, _now: Timestamp) -> Result<usize> {
        self.revive(which).await
    }

    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool> {
        let mut con = self.con.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let led: i64 = scripts::LEAD
            .key(&self.keys.leader)
            .arg(holder)
            .arg(now.plus(ttl).0)
            .arg(now.0)
            .arg(ttl_ms)
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("take the leader lease", e))?;
        Ok(led == 1)
    }
}
