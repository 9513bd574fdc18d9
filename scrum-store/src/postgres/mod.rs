//! [`PostgresQueue`]: a store several orchestrators share through one PostgreSQL
//! database.

mod schema;
mod workers;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgExecutor, Row};

use scrum_core::backend;
use scrum_core::state::{Jitter, Policy, Step};
use scrum_core::store::{
    EffectQuery, Leader, Remembered, Rules, Settle, Store, Version, Versioned, Write, Written,
};
use scrum_core::{
    EffectSelector, Error, OutboxEntry, QueueCounts, RepoHolds, Result, Task, TaskFilter, TaskId,
    TaskState, Timestamp,
};

use crate::logic::{self, Columns, from_json, number_column};
use crate::sql::db_error;
use crate::url::{take_durability, take_param};
use crate::{Durability, redact_url};

/// The schema version this build writes into PostgreSQL.
pub const POSTGRES_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

/// How long a claimer may take between reserving a task and storing its claim
/// before the reaper hands the task out again (a claimer that died in between).
const RESERVATION: Duration = Duration::from_secs(30);

/// A [`WorkQueue`](scrum_core::WorkQueue) in a PostgreSQL database, shared by any number of orchestrators.
///
/// - **Claims never collide**: a claim reserves the first claimable row with one
///   `UPDATE … (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent claimers (in one
///   process or many) each take a different task without waiting on each other,
///   then stores the claim with a compare-and-set write. Only that write waits for
///   the WAL flush (see `reserve`). Claims of tasks with lock keys store under one
///   advisory lock per schema, after [`scrum_core::locks::lock_holder`] found their
///   paths free.
/// - **Every change is a compare-and-set**: one statement writes the row (if its
///   version is unchanged) together with the outbox rows (the shared code of
///   [`Store`] reads, decides and retries). A task this process claimed is not read
///   again: its heartbeats and completion start from the task as written and kept
///   in memory ([`Remembered`]), one statement each.
/// - **Leader lease**: [`Leader::lead`] keeps one row naming the leader and its
///   expiry; another orchestrator takes it over once it lapsed unrenewed.
/// - **Versioned schema**: migrations run at connect under an advisory lock; a
///   database from a newer build is refused.
/// - **Durability**: by default the server's own flush setting holds
///   ([`Durability::Power`]); `?synchronous=normal` in the URL lets the queue's
///   sessions commit without waiting for the WAL flush ([`Durability::Process`]),
///   faster, but a crash of the PostgreSQL server may undo the last commits.
///
/// Lease expiry compares the `now` the orchestrators pass, so their clocks should
/// agree (NTP) to well within a lease period.
pub struct PostgresQueue {
    policy: Policy,
    jitter: Jitter,
    pool: PgPool,
    /// The tasks this process holds leases on, as it wrote them.
    remembered: Remembered,
    /// The URL without its password, for messages.
    target: String,
}

impl fmt::Debug for PostgresQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresQueue")
            .field("target", &self.target)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PostgresQueue {
    /// The outbox rows `filter` (a WHERE/ORDER/LIMIT tail: `$1` is `limit`, `$2`
    /// `param` when given) selects.
    async fn read_outbox(
        &self,
        filter: &'static str,
        limit: usize,
        param: Option<i64>,
    ) -> Result<Vec<OutboxEntry>> {
        let sql = format!(
            "SELECT id, effect, failures, next_attempt_at, dead, refused, last_error
             FROM outbox o {filter}"
        );
        // `filter` is one of this file's constants, never input.
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(param) = param {
            query = query.bind(param);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("read the outbox", e))?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    failures: u32::try_from(r.get::<i32, _>(2)).unwrap_or(0),
                    next_attempt_at: Timestamp(r.get(3)),
                    dead: r.get(4),
                    refused: r.get(5),
                    last_error: r.get(6),
                    ..OutboxEntry::new(
                        u64::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                        from_json(r.get::<&str, _>(1), "effect")?,
                    )
                })
            })
            .collect()
    }

    /// Connects to `url` (`postgres://user:password@host:port/db`, optionally with
    /// `synchronous=normal|full`, see [`Durability`], and `schema=NAME`, see
    /// [`PostgresQueue::connect_in_schema`]), working in the connection's current
    /// schema unless the URL names one, with random backoff jitter.
    pub async fn connect(url: &str, policy: Policy) -> Result<PostgresQueue> {
        PostgresQueue::connect_with_jitter(url, policy, Jitter::random()).await
    }

    /// [`PostgresQueue::connect`] with a chosen jitter source.
    pub async fn connect_with_jitter(
        url: &str,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<PostgresQueue> {
        match take_param(url, "schema") {
            (url, Some(schema)) => {
                PostgresQueue::connect_in_schema(&url, &schema, policy, jitter).await
            }
            (url, None) => PostgresQueue::connect_inner(&url, None, policy, jitter).await,
        }
    }

    /// Connects to `url` and works in `schema` (created if missing): several
    /// independent queues in one database, one per schema. The name is lower-case
    /// letters, digits and `_`.
    pub async fn connect_in_schema(
        url: &str,
        schema: &str,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<PostgresQueue> {
        if !schema::valid_schema_name(schema) {
            return Err(Error::invalid(format!(
                "store: schema name {schema:?} must be 1-63 lower-case letters, digits and '_'"
            )));
        }
        PostgresQueue::connect_inner(url, Some(schema), policy, jitter).await
    }

    async fn connect_inner(
        url: &str,
        schema: Option<&str>,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<PostgresQueue> {
        let target = redact_url(url);
        // PostgreSQL keeps the server's own flush setting unless the URL asks for
        // `synchronous=normal`: a shared database is infrastructure, and a server
        // crash must not undo acknowledged commits by default.
        let (url, durability) = take_durability(url)?;
        let durability = durability.unwrap_or(Durability::Power);
        let mut options = PgConnectOptions::from_str(&url).map_err(|_| {
            Error::invalid(format!(
                "DATABASE_URL {target} is not a valid PostgreSQL URL"
            ))
        })?;
        options = options.application_name("scrum-orchestrator");
        if let Some(schema) = schema {
            options = options.options([("search_path", schema)]);
        }
        if durability == Durability::Process {
            // Commits return before the WAL is flushed: see `Durability`.
            options = options.options([("synchronous_commit", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before every use: it doubles the round trips. A connection
            // that died fails its next statement with a retryable error instead.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| {
                let mapped = db_error("connect", e);
                let kind = mapped.kind();
                Error::new(kind, format!("store: cannot connect to {target}")).with_source(mapped)
            })?;
        schema::migrate(&pool, schema, &target).await?;
        tracing::debug!(target = %target, "connected to the PostgreSQL store");
        Ok(PostgresQueue {
            policy,
            jitter,
            pool,
            remembered: Remembered::default(),
            target,
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a claim of a task that declares paths, unless an in-progress task
    /// with a live lease holds an overlapping lock ([`scrum_core::locks`] decides).
    /// Claims of such tasks take one advisory lock per schema and commit under it,
    /// so each sees every earlier one's claim: two claimers that reserved
    /// overlapping tasks at once never both store.
    async fn claim_locked(&self, write: &Write<'_>) -> Result<Written> {
        let fail = |e| db_error("store a claim with locks", e);
        let task = &write.step.task;
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock(1396920910, hashtext(current_schema()))")
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let held = held_locks(&mut *tx, write.now).await?;
        let others = held.iter().filter(|(id, _, _)| *id != task.id);
        let others = others.map(|(id, at, keys)| (id, *at, keys.as_slice()));
        if scrum_core::locks::lock_holder(&task.locks, others, write.now).is_some() {
            return Ok(Written::LockHeld);
        }
        let written = store(&mut *tx, write).await?;
        tx.commit().await.map_err(fail)?;
        Ok(written)
    }

    /// Makes the rows whose reservation lapsed by `now` claimable again; returns
    /// how many.
    async fn end_lapsed_reservations(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE tasks SET claimable = true, reserved_until = NULL
             WHERE reserved_until <= $1 AND state = 'pending'",
        )
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("end lapsed reservations", e))?;
        Ok(done.rows_affected())
    }

    /// Reserves the first row in claim order that is claimable at `now`, not in a
    /// repository `hold` holds and none of `passed` (ids as `repo#number`).
    async fn reserve_row(
        &self,
        now: Timestamp,
        hold: &RepoHolds,
        passed: &[String],
    ) -> Result<Option<Versioned>> {
        // Reserve the first claimable row: SKIP LOCKED passes over rows other
        // claimers are reserving right now, and the reservation (claimable off
        // until `reserved_until`) hides it from later claims. One statement,
        // committed at once.
        //
        // The reservation commits without waiting for the WAL flush
        // (`set_config(…, true)` lasts for this statement's transaction only):
        // a server crash that loses it leaves the task claimable, as it was, and
        // nobody has been told of it. The claim's own write does wait, and its
        // flush covers the reservation's earlier WAL, so one flush per claim.
        let row = sqlx::query(
            "UPDATE tasks SET claimable = false, reserved_until = $2
             WHERE (repo, number) = (
                 SELECT repo, number FROM tasks c
                 WHERE claimable AND not_before <= $1 AND NOT (repo = ANY($3))
                   AND NOT (repo || '#' || number = ANY($4))
                 ORDER BY priority, created_at, repo, number
                 LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING task, version, set_config('synchronous_commit', 'off', true)",
        )
        .bind(now.0)
        .bind(now.plus(RESERVATION).0)
        .bind(&hold.repos)
        .bind(passed)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error("claim a task", e))?;
        row.map(|r| task_and_version(&r)).transpose()
    }
}

/// The lock keys in-progress tasks with a live lease at `now` hold: id, lease
/// expiry, keys.
async fn held_locks<'c>(
    ex: impl PgExecutor<'c>,
    now: Timestamp,
) -> Result<Vec<(TaskId, Timestamp, Vec<String>)>> {
    let rows = sqlx::query(
        "SELECT repo, number, lease_expires_at, locks FROM tasks
         WHERE cardinality(locks) > 0 AND lease_expires_at > $1",
    )
    .bind(now.0)
    .fetch_all(ex)
    .await
    .map_err(|e| db_error("read the held locks", e))?;
    rows.iter()
        .map(|r| {
            let number = u64::try_from(r.get::<i64, _>(1)).unwrap_or(0);
            let id = TaskId::new(r.get::<&str, _>(0), number)?;
            Ok((id, Timestamp(r.get(2)), r.get(3)))
        })
        .collect()
}

/// The task `id` and its row version.
async fn load<'c>(ex: impl PgExecutor<'c>, id: &TaskId) -> Result<Option<Versioned>> {
    let sql = "SELECT task, version FROM tasks WHERE repo = $1 AND number = $2";
    let row = sqlx::query(sql)
        .bind(id.repo())
        .bind(number_column(id.number())?)
        .fetch_optional(ex)
        .await
        .map_err(|e| db_error("read a task", e))?;
    row.map(|r| task_and_version(&r)).transpose()
}

fn task_and_version(row: &PgRow) -> Result<Versioned> {
    Ok(Versioned {
        task: logic::task_from_json(row.get::<&str, _>(0))?,
        version: Version::try_from(row.get::<i64, _>(1)).unwrap_or(0),
    })
}

/// Writes a step's task and its effects (and deletes the acknowledged effect) in
/// one statement: an insert when there is no old version (nothing is written if
/// the task exists), otherwise an update if the row is still at that version.
async fn store<'c>(ex: impl PgExecutor<'c>, write: &Write<'_>) -> Result<Written> {
    let step: &Step = write.step;
    let expected = write.old.map(|o| i64::try_from(o.version).unwrap_or(-1));
    let task = &step.task;
    let c = Columns::of(task);
    let json = logic::to_json(task)?;
    let effects = step
        .effects
        .iter()
        .map(logic::to_json)
        .collect::<Result<Vec<_>>>()?;
    let sql = match expected {
        None => {
            "WITH t AS (
                INSERT INTO tasks (repo, number, version, state, claimable, priority, created_at,
                                   not_before, lease_expires_at, holder, task, locks)
                VALUES ($1, $2, 1, $4, $5, $6, $7, $8, $9, $10, $11, $13)
                ON CONFLICT (repo, number) DO NOTHING
                RETURNING 1 AS written, $3::BIGINT AS unused),
             o AS (
                INSERT INTO outbox (repo, number, effect)
                SELECT $1, $2, e FROM unnest($12::TEXT[]) WITH ORDINALITY AS x(e, i)
                WHERE EXISTS (SELECT 1 FROM t) ORDER BY i),
             a AS (
                DELETE FROM outbox WHERE id = $14 AND EXISTS (SELECT 1 FROM t))
             SELECT count(*) FROM t"
        }
        Some(_) => {
            "WITH t AS (
                UPDATE tasks SET version = version + 1, state = $4, claimable = $5,
                    priority = $6, created_at = $7, not_before = $8, lease_expires_at = $9,
                    holder = $10, task = $11, reserved_until = NULL, locks = $13
                WHERE repo = $1 AND number = $2 AND version = $3
                RETURNING 1),
             o AS (
                INSERT INTO outbox (repo, number, effect)
                SELECT $1, $2, e FROM unnest($12::TEXT[]) WITH ORDINALITY AS x(e, i)
                WHERE EXISTS (SELECT 1 FROM t) ORDER BY i),
             a AS (
                DELETE FROM outbox WHERE id = $14 AND EXISTS (SELECT 1 FROM t))
             SELECT count(*) FROM t"
        }
    };
    let written: i64 = sqlx::query(sql)
        .bind(task.id.repo())
        .bind(number_column(task.id.number())?)
        .bind(expected.unwrap_or(0))
        .bind(c.state)
        .bind(c.claimable)
        .bind(c.priority)
        .bind(c.created_at)
        .bind(c.not_before)
        .bind(c.lease_expires_at)
        .bind(c.holder)
        .bind(json)
        .bind(effects)
        .bind(&task.locks)
        .bind(write.ack.map(|id| i64::try_from(id).unwrap_or(-1)))
        .fetch_one(ex)
        .await
        .map_err(|e| db_error("store a task", e))?
        .get(0);
    Ok(match written {
        0 => Written::Conflict,
        _ => Written::Stored(Version::try_from(expected.unwrap_or(0) + 1).unwrap_or(0)),
    })
}

#[async_trait]
impl Store for PostgresQueue {
    fn rules(&self) -> Rules<'_> {
        Rules::new(&self.policy, &self.jitter)
    }

    async fn load(&self, id: &TaskId) -> Result<Option<Versioned>> {
        load(&self.pool, id).await
    }

    async fn write(&self, write: Write<'_>) -> Result<Written> {
        if write.claims_locks() {
            return self.claim_locked(&write).await;
        }
        store(&self.pool, &write).await
    }

    async fn reserve(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<Versioned>> {
        // Tasks that wait for a lock are passed over: [`backend::admits`] decides,
        // on the locks held when the first of them is met.
        let mut held = None;
        let mut passed = Vec::new();
        let mut ended = false;
        loop {
            let Some(reserved) = self.reserve_row(now, hold, &passed).await? else {
                // Nothing claimable: end the reservations of claimers that died
                // before storing their claim, and look again if there were any.
                if ended || self.end_lapsed_reservations(now).await? == 0 {
                    return Ok(None);
                }
                ended = true;
                continue;
            };
            if reserved.task.locks.is_empty() {
                return Ok(Some(reserved));
            }
            let held = match &mut held {
                Some(held) => held,
                None => held.insert(held_locks(&self.pool, now).await?),
            };
            let locks = held.iter().map(|(id, at, keys)| (id, *at, keys.as_slice()));
            if backend::admits(&reserved.task, now, hold, locks) {
                return Ok(Some(reserved));
            }
            // Claimable again, unchanged, for the claims after this one.
            sqlx::query(
                "UPDATE tasks SET claimable = true, reserved_until = NULL
                 WHERE repo = $1 AND number = $2 AND version = $3",
            )
            .bind(reserved.task.id.repo())
            .bind(number_column(reserved.task.id.number())?)
            .bind(i64::try_from(reserved.version).unwrap_or(-1))
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("pass over a task", e))?;
            passed.push(reserved.task.id.to_string());
        }
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT task FROM tasks
             WHERE (cardinality($1::TEXT[]) = 0 OR state = ANY($1))
               AND ($2::TEXT IS NULL OR holder = $2)
             ORDER BY repo, number LIMIT $3 OFFSET $4",
        )
        .bind(states)
        .bind(filter.worker.as_ref().map(|w| w.as_str()))
        .bind(filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)))
        .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error("list tasks", e))?;
        rows.iter()
            .map(|r| logic::task_from_json(r.get::<&str, _>(0)))
            .collect()
    }

    async fn state_counts(&self) -> Result<QueueCounts> {
        let rows = sqlx::query("SELECT state, count(*) FROM tasks GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("count tasks", e))?;
        let mut counts = QueueCounts::default();
        for row in rows {
            let state: TaskState = row.get::<&str, _>(0).parse()?;
            logic::set_count(&mut counts, state, row.get::<i64, _>(1));
        }
        Ok(counts)
    }

    async fn effects(&self, query: EffectQuery) -> Result<Vec<OutboxEntry>> {
        match query {
            EffectQuery::Pending(limit) => {
                self.read_outbox("ORDER BY id LIMIT $1", limit, None).await
            }
            EffectQuery::Due(now, limit) => {
                // Due, and no earlier effect of the same task still waiting.
                let filter = "WHERE NOT dead AND next_attempt_at <= $2 AND NOT EXISTS (
                        SELECT 1 FROM outbox p WHERE p.repo = o.repo AND p.number = o.number
                        AND p.id < o.id AND (p.dead OR p.next_attempt_at > $2))
                    ORDER BY id LIMIT $1";
                self.read_outbox(filter, limit, Some(now.0)).await
            }
            EffectQuery::Failing(limit) => {
                self.read_outbox("WHERE failures > 0 ORDER BY id LIMIT $1", limit, None)
                    .await
            }
            EffectQuery::Id(id) => {
                let id = i64::try_from(id).unwrap_or(-1);
                self.read_outbox("WHERE id = $2 LIMIT $1", 1, Some(id))
                    .await
            }
        }
    }

    async fn settle_effects(&self, settle: Settle<'_>) -> Result<usize> {
        let query = match settle {
            Settle::Ack(id) => sqlx::query("DELETE FROM outbox WHERE id = $1")
                .bind(i64::try_from(id).unwrap_or(-1)),
            Settle::Fail(id, failure) => sqlx::query(
                "UPDATE outbox SET failures = failures + 1, last_error = $2, refused = $3,
                        dead = ($4::BIGINT IS NULL),
                        next_attempt_at = COALESCE($4, next_attempt_at)
                 WHERE id = $1",
            )
            .bind(i64::try_from(id).unwrap_or(-1))
            .bind(&failure.error)
            .bind(failure.refused)
            .bind(failure.retry_at.map(|t| t.0)),
            Settle::Revive(which, now) => revive(which, now),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("change the outbox", e))?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    fn remembered(&self) -> Option<&Remembered> {
        Some(&self.remembered)
    }
}

/// The statement reviving the dead effects `which` names, due at `now`.
fn revive(
    which: &EffectSelector,
    now: Timestamp,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    macro_rules! revive {
        ($($and:literal)?) => {
            concat!(
                "UPDATE outbox SET dead = FALSE, failures = 0, refused = FALSE, ",
                "last_error = NULL, next_attempt_at = $1 WHERE dead",
                $($and)?
            )
        };
    }
    match which {
        EffectSelector::All => sqlx::query(revive!()).bind(now.0),
        EffectSelector::Repo(repo) => sqlx::query(revive!(" AND repo = $2"))
            .bind(now.0)
            .bind(repo.as_str()),
        EffectSelector::Id(id) => sqlx::query(revive!(" AND id = $2"))
            .bind(now.0)
            .bind(i64::try_from(*id).unwrap_or(-1)),
    }
}

#[async_trait]
impl Leader for PostgresQueue {
    async fn lead(&self, holder: &str, ttl: Duration, now: Timestamp) -> Result<bool> {
        // Take the lease if nobody holds it, renew it if `holder` does, take it over
        // if it lapsed; otherwise the row stays and no row comes back.
        let row = sqlx::query(
            "INSERT INTO leader (id, holder, expires_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder,
                                            expires_at = EXCLUDED.expires_at
             WHERE leader.holder = EXCLUDED.holder OR leader.expires_at <= $3
             RETURNING holder",
        )
        .bind(holder)
        .bind(now.plus(ttl).0)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error("take the leader lease", e))?;
        Ok(row.is_some())
    }
}
