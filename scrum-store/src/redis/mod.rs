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

use scrum_core::state::{Jitter, Policy};
use scrum_core::store::{
    EffectQuery, Leader, MAX_RETRIES, Remembered, Rules, Settle, Store, Versioned, Write, Written,
};
use scrum_core::{
    Error, ErrorKind, OutboxEntry, QueueCounts, RepoHolds, Result, Task, TaskFilter, TaskId,
    TaskState, Timestamp,
};

use crate::logic;
use crate::redact_url;
use crate::url::{take_durability, take_param};
use keys::{Keys, member, member_id};
use ops::{redis_error, stop_index, versioned};

/// The schema version this build writes into Redis (the `{prefix}:schema` key).
pub const REDIS_SCHEMA_VERSION: u32 = 1;

/// How long a claimer may take between reserving a task and storing its claim
/// before the reservation lapses and the task is handed out again (a claimer that
/// crashed in between).
const RESERVATION: Duration = Duration::from_secs(30);

/// A [`WorkQueue`](scrum_core::WorkQueue) in Redis, shared by any number of orchestrators.
///
/// - **Atomic changes**: one Lua script writes the task (if its version is
///   unchanged), its indexes and its outbox effects (the shared code of [`Store`]
///   reads, decides and retries). A task this process claimed is not read again:
///   its heartbeats and completion start from the task as written and kept in
///   memory ([`Remembered`]), one script call each.
/// - **Claims never collide**: a script pops the first ready task (sorted by one
///   score: priority rank, then issue age; equal scores by id) into a short
///   reservation, so concurrent claimers each get a different task. While
///   repositories are held or tasks hold locks, Rust chooses the task
///   ([`scrum_core::locks`]) and a script reserves it; a claim of a task with lock
///   keys is stored only while the held locks are the ones it decided on.
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
    remembered: Remembered,
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
    /// The first ready member a claim at `now` may take, chosen in Rust: not in a
    /// repository `hold` holds, and waiting for no lock
    /// ([`scrum_core::locks::lock_holder`]).
    async fn choose(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<String>> {
        const PAGE: isize = 256;
        let k = &self.keys;
        let (_, held) = self.held_locks().await?;
        let mut from = 0;
        loop {
            let batch = self.members(&k.ready, from, from + PAGE - 1).await?;
            if batch.is_empty() {
                return Ok(None);
            }
            let mut con = self.con.clone();
            let keys: Vec<Option<String>> = if held.is_empty() {
                vec![None; batch.len()]
            } else {
                redis::cmd("HMGET")
                    .arg(&k.lock_keys)
                    .arg(&batch)
                    .query_async(&mut con)
                    .await
                    .map_err(|e| redis_error("read lock keys", e))?
            };
            for (m, keys) in batch.iter().zip(keys) {
                if hold.holds(&member_id(m)?) {
                    continue;
                }
                let keys: Vec<String> = keys
                    .iter()
                    .flat_map(|k| k.lines())
                    .map(str::to_string)
                    .collect();
                let others = held.iter().filter(|(h, _, _)| h != m);
                let others = others.map(|(h, at, keys)| (h, *at, keys.as_slice()));
                if scrum_core::locks::lock_holder(&keys, others, now).is_none() {
                    return Ok(Some(m.clone()));
                }
            }
            from += PAGE;
        }
    }

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
            remembered: Remembered::default(),
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
impl Store for RedisQueue {
    fn rules(&self) -> Rules<'_> {
        Rules::new(&self.policy, &self.jitter)
    }

    async fn load(&self, id: &TaskId) -> Result<Option<Versioned>> {
        RedisQueue::load(self, id).await
    }

    async fn write(&self, write: Write<'_>) -> Result<Written> {
        let task = &write.step.task;
        let locks_seq = if write.claims_locks() {
            let (seq, held) = self.held_locks().await?;
            let me = member(&task.id);
            let others = held.iter().filter(|(m, _, _)| *m != me);
            let others = others.map(|(m, at, keys)| (m, *at, keys.as_slice()));
            if scrum_core::locks::lock_holder(&task.locks, others, write.now).is_some() {
                return Ok(Written::LockHeld);
            }
            Some(seq)
        } else {
            None
        };
        let version = write
            .old
            .map_or(0, |o| i64::try_from(o.version).unwrap_or(-1));
        let old = write.old.map(|o| &o.task);
        self.commit(old, write.step, version, write.ack, locks_seq)
            .await
    }

    async fn reserve(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<Versioned>> {
        let k = &self.keys;
        let until = now.plus(RESERVATION).0;
        for _ in 0..MAX_RETRIES {
            let mut con = self.con.clone();
            let popped: Option<Vec<Option<String>>> = scripts::RESERVE
                .key(&k.ready)
                .key(&k.delayed)
                .key(&k.claiming)
                .key(&k.rank)
                .key(&k.locked)
                .arg(now.0)
                .arg(until)
                .arg(&k.task_prefix)
                .arg(u8::from(!hold.repos.is_empty()))
                .invoke_async(&mut con)
                .await
                .map_err(|e| redis_error("find a task to claim", e))?;
            let reserved = match popped {
                None => return Ok(None),
                Some(r) if r.first().is_some_and(|m| m.as_deref() == Some("")) => {
                    let Some(m) = self.choose(now, hold).await? else {
                        return Ok(None);
                    };
                    let taken: Option<Vec<Option<String>>> = scripts::TAKE
                        .key(&k.ready)
                        .key(&k.claiming)
                        .arg(&m)
                        .arg(until)
                        .arg(&k.task_prefix)
                        .invoke_async(&mut con)
                        .await
                        .map_err(|e| redis_error("reserve a task", e))?;
                    // Another claimer took it first: choose again.
                    let Some(taken) = taken else { continue };
                    taken
                }
                Some(r) => r,
            };
            let mut fields = reserved.into_iter();
            let m = fields.next().flatten().unwrap_or_default();
            let version = fields.next().flatten().and_then(|v| v.parse().ok());
            match versioned(version, fields.next().flatten())? {
                Some(task) => return Ok(Some(task)),
                None => {
                    // An index entry whose task is gone: drop it.
                    let _: i64 = redis::cmd("ZREM")
                        .arg(&k.claiming)
                        .arg(&m)
                        .query_async(&mut con)
                        .await
                        .map_err(|e| redis_error("clean an index", e))?;
                    member_id(&m)?;
                }
            }
        }
        Err(Error::unavailable(
            "store: claims kept colliding with other writers; try again",
        ))
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
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

    async fn state_counts(&self) -> Result<QueueCounts> {
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

    async fn effects(&self, query: EffectQuery) -> Result<Vec<OutboxEntry>> {
        match query {
            EffectQuery::Pending(limit) => self.outbox_page(0, limit).await,
            EffectQuery::Due(now, limit) => self.due(now, limit).await,
            EffectQuery::Failing(limit) => self.failing(limit).await,
            EffectQuery::Id(id) => self.entries(&[id.to_string()]).await,
        }
    }

    async fn settle_effects(&self, settle: Settle<'_>) -> Result<usize> {
        match settle {
            Settle::Ack(id) => {
                let k = &self.keys;
                let mut con = self.con.clone();
                let _: i64 = scripts::ACK
                    .key(&k.outbox)
                    .key(&k.outbox_ids)
                    .key(&k.outbox_failures)
                    .arg(id)
                    .invoke_async(&mut con)
                    .await
                    .map_err(|e| redis_error("acknowledge an effect", e))?;
                Ok(1)
            }
            Settle::Fail(id, failure) => self.record_failure(id, failure).await.map(|()| 1),
            Settle::Revive(which, _) => self.revive(which).await,
        }
    }

    fn remembered(&self) -> Option<&Remembered> {
        Some(&self.remembered)
    }
}

#[async_trait]
impl Leader for RedisQueue {
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
