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
use scrum_core::state::{self, Ctx, Event, Jitter, Policy, Refusal, Step};
use scrum_core::{
    EffectFailure, EffectSelector, Enqueued, Error, ErrorKind, Hold, LeaseKind, LeaseToken,
    OutboxEntry, QueueCounts, ReadyIssue, Result, Task, TaskFilter, TaskId, TaskState, Timestamp,
    WorkQueue, WorkerId,
};

use crate::last_written::{LastWritten, VersionedRows};
use crate::logic::{self, Columns, MAX_RETRIES, contention, from_json, number_column};
use crate::sql::db_error;
use crate::url::{take_durability, take_param};
use crate::{Durability, redact_url};

/// The schema version this build writes into PostgreSQL.
pub const POSTGRES_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

/// How long a claimer may take between reserving a task and storing its claim
/// before the reaper hands the task out again (a claimer that died in between).
const RESERVATION: Duration = Duration::from_secs(30);

/// A [`WorkQueue`] in a PostgreSQL database, shared by any number of orchestrators.
///
/// - **Claims never collide**: a claim reserves the first claimable row with one
///   `UPDATE … (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent claimers (in one
///   process or many) each take a different task without waiting on each other,
///   then stores the claim with a compare-and-set write. Only that write waits for
///   the WAL flush (see `claim`).
/// - **Every other change is a compare-and-set**: the task is read with its version,
///   [`scrum_core::state::transition`] decides in Rust, and one statement writes the
///   row (if its version is unchanged) together with the outbox rows; a lost race
///   is retried on the new state. A task this process claimed is not read again:
///   its heartbeats and completion start from the task as written
///   and kept in memory, one statement each.
/// - **Leader lease**: [`WorkQueue::lead`] keeps one row naming the leader and its
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
    last_written: LastWritten,
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
    /// the time when given) selects.
    async fn read_outbox(
        &self,
        filter: &'static str,
        limit: usize,
        now: Option<Timestamp>,
    ) -> Result<Vec<OutboxEntry>> {
        let sql = format!(
            "SELECT id, effect, failures, next_attempt_at, dead, refused, last_error
             FROM outbox o {filter}"
        );
        // `filter` is one of this file's constants, never input.
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(now) = now {
            query = query.bind(now.0);
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
            last_written: LastWritten::default(),
            target,
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx::sample(now, &self.policy, &self.jitter)
    }

    /// Stores a claim of a task that declares paths, unless an in-progress task
    /// with a live lease holds an overlapping lock: `None` then, otherwise whether
    /// the version was still `expected`. Claims of such tasks take one advisory
    /// lock per schema and commit under it, so each sees every earlier one's claim:
    /// two claimers that reserved overlapping tasks at once never both store.
    async fn claim_locked(
        &self,
        step: &Step,
        expected: i64,
        now: Timestamp,
    ) -> Result<Option<bool>> {
        let fail = |e| db_error("store a claim with locks", e);
        let task = &step.task;
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock(1396920910, hashtext(current_schema()))")
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let held: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM tasks h
                 WHERE cardinality(h.locks) > 0 AND h.lease_expires_at > $1
                   AND NOT (h.repo = $2 AND h.number = $3)
                   AND scrum_locks_overlap(h.locks, $4))",
        )
        .bind(now.0)
        .bind(task.id.repo())
        .bind(number_column(task.id.number())?)
        .bind(&task.locks)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?
        .get(0);
        if held {
            return Ok(None);
        }
        let written = write(&mut *tx, step, Some(expected)).await?;
        tx.commit().await.map_err(fail)?;
        Ok(Some(written))
    }

    /// Applies `event` to the task `id` and stores the result, retrying on the new
    /// state when another writer got there first. Starts from the task as this
    /// process last wrote it, if it did, and reads it only when that is out of date.
    async fn apply_event(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.ctx(now);
        self.last_written.apply(self, id, event, &ctx).await
    }
}

#[async_trait]
impl VersionedRows for PostgresQueue {
    async fn load_versioned(&self, id: &TaskId) -> Result<Option<(Task, i64)>> {
        load(&self.pool, id, false).await
    }

    async fn write_if_at(&self, _old: &Task, step: &Step, version: i64) -> Result<bool> {
        write(&self.pool, step, Some(version)).await
    }
}

/// The task `id` and its row version; `lock` takes the row lock (in a transaction).
async fn load<'c>(ex: impl PgExecutor<'c>, id: &TaskId, lock: bool) -> Result<Option<(Task, i64)>> {
    let sql = if lock {
        "SELECT task, version FROM tasks WHERE repo = $1 AND number = $2 FOR UPDATE"
    } else {
        "SELECT task, version FROM tasks WHERE repo = $1 AND number = $2"
    };
    let row = sqlx::query(sql)
        .bind(id.repo())
        .bind(number_column(id.number())?)
        .fetch_optional(ex)
        .await
        .map_err(|e| db_error("read a task", e))?;
    row.map(|r| task_and_version(&r)).transpose()
}

fn task_and_version(row: &PgRow) -> Result<(Task, i64)> {
    Ok((logic::task_from_json(row.get::<&str, _>(0))?, row.get(1)))
}

/// Writes a step's task and its effects in one statement: an insert when
/// `expected` is `None` (fails if the task exists), otherwise an update if the row
/// is still at version `expected`. Says whether it wrote.
async fn write<'c>(ex: impl PgExecutor<'c>, step: &Step, expected: Option<i64>) -> Result<bool> {
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
                WHERE EXISTS (SELECT 1 FROM t) ORDER BY i)
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
                WHERE EXISTS (SELECT 1 FROM t) ORDER BY i)
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
        .fetch_one(ex)
        .await
        .map_err(|e| db_error("store a task", e))?
        .get(0);
    Ok(written > 0)
}

#[async_trait]
impl WorkQueue for PostgresQueue {
    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.ctx(observed_at);
        for _ in 0..MAX_RETRIES {
            let current = load(&self.pool, &issue.id, false).await?;
            let (task, version) = match current {
                Some((t, v)) => (Some(t), Some(v)),
                None => (None, None),
            };
            let (step, answer) = backend::enqueue_step(task.as_ref(), issue.clone(), &ctx)?;
            let Some(step) = step else {
                return Ok(answer);
            };
            if write(&self.pool, &step, version).await? {
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
        for _ in 0..MAX_RETRIES {
            // Reserve the first claimable row: SKIP LOCKED passes over rows other
            // claimers are reserving right now, and the reservation (claimable off
            // until `reserved_until`) hides it from later claims. One statement,
            // committed at once; a claimer that dies before storing its claim leaves
            // a reservation the reaper (`expire`) undoes.
            //
            // The reservation commits without waiting for the WAL flush
            // (`set_config(…, true)` lasts for this statement's transaction only):
            // a server crash that loses it leaves the task claimable, as it was, and
            // nobody has been told of it. The claim's own write below does wait, and
            // its flush covers the reservation's earlier WAL, so one flush per claim.
            let row = sqlx::query(
                "UPDATE tasks SET claimable = false, reserved_until = $2
                 WHERE (repo, number) = (
                     SELECT repo, number FROM tasks c
                     WHERE claimable AND not_before <= $1 AND NOT (repo = ANY($3))
                       AND (cardinality(c.locks) = 0 OR NOT EXISTS (
                           SELECT 1 FROM tasks h
                           WHERE cardinality(h.locks) > 0 AND h.lease_expires_at > $1
                             AND scrum_locks_overlap(h.locks, c.locks)))
                     ORDER BY priority, created_at, repo, number
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING task, version, set_config('synchronous_commit', 'off', true)",
            )
            .bind(now.0)
            .bind(now.plus(RESERVATION).0)
            .bind(&hold.repos)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error("claim a task", e))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let (task, version) = task_and_version(&row)?;
            let event = Event::Claim {
                worker: worker.clone(),
                token: LeaseToken::random(),
                lease,
            };
            let step = match state::transition(&task, event, &ctx) {
                Ok(step) => step,
                // Reserved at a later `now` than this call's: store it back as it
                // was, which ends the reservation.
                Err(Refusal::NotClaimable) => Step::store(task.clone()),
                Err(e) => return Err(e.into()),
            };
            let claimed = step.task.state() == TaskState::InProgress;
            // The version is unchanged unless someone else wrote the task since the
            // reservation (a cancel, a refresh): then look again.
            let written = if claimed && !step.task.locks.is_empty() {
                match self.claim_locked(&step, version, now).await? {
                    Some(written) => written,
                    // Another claimer took an overlapping lock since the reservation
                    // looked: store the task back as it was, which ends the
                    // reservation, and look again (the reservation now skips it).
                    None => {
                        write(&self.pool, &Step::store(task), Some(version)).await?;
                        continue;
                    }
                }
            } else {
                write(&self.pool, &step, Some(version)).await?
            };
            if written && claimed {
                self.last_written.remember(&step.task, version + 1);
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
        // Reservations of claimers that died between reserving and claiming.
        sqlx::query(
            "UPDATE tasks SET claimable = true, reserved_until = NULL
             WHERE reserved_until <= $1 AND state = 'pending'",
        )
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("end lapsed reservations", e))?;
        let rows = sqlx::query(
            "SELECT repo, number FROM tasks WHERE lease_expires_at <= $1
             ORDER BY lease_expires_at, repo, number",
        )
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error("find lapsed leases", e))?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in rows {
            let number = u64::try_from(row.get::<i64, _>(1)).unwrap_or(0);
            let id = TaskId::new(row.get::<&str, _>(0), number)?;
            match self.apply(&id, Event::Expire, now).await {
                Ok(task) => expired.push(task),
                // Renewed, finished or expired by someone else since the scan.
                Err(e) if e.kind() == ErrorKind::InvalidTransition => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        Ok(load(&self.pool, id, false).await?.map(|(t, _)| t))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
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

    async fn counts(&self) -> Result<QueueCounts> {
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

    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.read_outbox("ORDER BY id LIMIT $1", limit, None).await
    }

    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        // Due, and no earlier effect of the same task still waiting.
        let filter = "WHERE NOT dead AND next_attempt_at <= $2 AND NOT EXISTS (
                SELECT 1 FROM outbox p WHERE p.repo = o.repo AND p.number = o.number
                AND p.id < o.id AND (p.dead OR p.next_attempt_at > $2))
            ORDER BY id LIMIT $1";
        self.read_outbox(filter, limit, Some(now)).await
    }

    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.read_outbox("WHERE failures > 0 ORDER BY id LIMIT $1", limit, None)
            .await
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let ctx = self.ctx(now);
        let fail = |e| db_error("acknowledge an effect", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = $1 RETURNING effect")
            .bind(i64::try_from(id).unwrap_or(-1))
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        if let Some(row) = row {
            let effect: state::Effect = from_json(row.get::<&str, _>(0), "effect")?;
            if effect.kind.is_terminal()
                && let Some((task, version)) = load(&mut *tx, &effect.task, true).await?
                && let Some(step) = backend::ack_step(&task, &effect, &ctx)
            {
                write(&mut *tx, &step, Some(version)).await?;
            }
        }
        tx.commit().await.map_err(fail)
    }

    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET failures = failures + 1, last_error = $2, refused = $3,
                    dead = ($4::BIGINT IS NULL),
                    next_attempt_at = COALESCE($4, next_attempt_at)
             WHERE id = $1",
        )
        .bind(i64::try_from(id).unwrap_or(-1))
        .bind(&failure.error)
        .bind(failure.refused)
        .bind(failure.retry_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("record a failed effect", e))?;
        Ok(())
    }

    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize> {
        macro_rules! revive {
            ($($and:literal)?) => {
                concat!(
                    "UPDATE outbox SET dead = FALSE, failures = 0, refused = FALSE, ",
                    "last_error = NULL, next_attempt_at = $1 WHERE dead",
                    $($and)?
                )
            };
        }
        let query = match which {
            EffectSelector::All => sqlx::query(revive!()).bind(now.0),
            EffectSelector::Repo(repo) => sqlx::query(revive!(" AND repo = $2"))
                .bind(now.0)
                .bind(repo.as_str()),
            EffectSelector::Id(id) => sqlx::query(revive!(" AND id = $2"))
                .bind(now.0)
                .bind(i64::try_from(*id).unwrap_or(-1)),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| db_error("revive effects", e))?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

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
