//! [`SqliteQueue`]: the embedded default store, one SQLite file one orchestrator owns.

mod schema;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use scrum_core::state::{self, Ctx, Event, Jitter, Policy, Step};
use scrum_core::{
    Completion, Enqueued, Failure, HeartbeatReply, LeaseKind, LeaseToken, OutboxEntry, QueueCounts,
    ReadyIssue, Result, Task, TaskFilter, TaskId, TaskState, Timestamp, WorkQueue, WorkerId,
    memory::heartbeat_reply,
};

use crate::logic::{self, Columns, from_json, number_column};
use crate::sql::db_error;

/// A [`WorkQueue`] in one SQLite file, for an orchestrator that runs alone.
///
/// - **Durable**: WAL journal with `synchronous = FULL`; every transition and the
///   GitHub effects it causes commit in one transaction (the outbox), so a crash
///   loses neither or both.
/// - **One owner**: the file is opened in exclusive locking mode and locked at open.
///   A second orchestrator on the same file gets an [`ErrorKind::Conflict`] error
///   that says so; several orchestrators share state through PostgreSQL or Redis.
/// - **Versioned**: the schema version lives in `PRAGMA user_version`; missing
///   migrations are applied at open, and a file from a newer build is refused with
///   [`ErrorKind::Corrupt`] instead of being misread.
///
/// All calls go through one connection in turn: SQLite has one writer anyway, and
/// one connection with no lock contention is the fastest way to use it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use scrum_core::{state::Policy, LeaseKind, ReadyIssue, Timestamp, WorkQueue, WorkerId};
/// use scrum_store::SqliteQueue;
///
/// let dir = std::env::temp_dir().join(format!("scrum-store-doc-{}", std::process::id()));
/// let path = dir.join("state.sqlite3");
/// # let _ = std::fs::remove_dir_all(&dir);
/// let queue = SqliteQueue::open(&path, Policy::default()).await.unwrap();
/// let issue = ReadyIssue {
///     id: "acme/widgets#1".parse().unwrap(),
///     title: "Add a widget".into(),
///     body: String::new(),
///     labels: vec!["ai-ready".into()],
///     created_at: Timestamp(0),
/// };
/// queue.enqueue(issue, Timestamp(1)).await.unwrap();
/// queue.close().await;
///
/// // The task survives the process: a new queue on the same file hands it out.
/// let queue = SqliteQueue::open(&path, Policy::default()).await.unwrap();
/// let worker = WorkerId::new("worker-1").unwrap();
/// let task = queue.claim(&worker, LeaseKind::Heartbeat, Timestamp(2)).await.unwrap().unwrap();
/// assert_eq!(task.id.to_string(), "acme/widgets#1");
/// # queue.close().await;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
///
/// [`ErrorKind::Conflict`]: scrum_core::ErrorKind::Conflict
/// [`ErrorKind::Corrupt`]: scrum_core::ErrorKind::Corrupt
pub struct SqliteQueue {
    policy: Policy,
    jitter: Jitter,
    path: PathBuf,
    // A tokio Mutex: calls hold it across the awaits of one transaction.
    conn: Mutex<SqliteConnection>,
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.path)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The schema version this build writes into SQLite files.
pub const SQLITE_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

impl SqliteQueue {
    /// Opens the store at `path` (creating the file and its directory if needed),
    /// with random backoff jitter.
    pub async fn open(path: impl AsRef<Path>, policy: Policy) -> Result<SqliteQueue> {
        SqliteQueue::open_with_jitter(path, policy, Jitter::random()).await
    }

    /// Opens the store at `path` with a chosen jitter source (deterministic tests).
    pub async fn open_with_jitter(
        path: impl AsRef<Path>,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<SqliteQueue> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open(&path).await?;
        tracing::debug!(path = %path.display(), "opened the SQLite store");
        Ok(SqliteQueue {
            policy,
            jitter,
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The file this queue stores into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file and releases its lock, so another process may open it.
    /// (Dropping the queue releases it too, a moment later.)
    pub async fn close(self) {
        if let Err(e) = self.conn.into_inner().close().await {
            tracing::warn!(error = %e, "closing the SQLite store failed");
        }
    }

    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx {
            now,
            policy: &self.policy,
            jitter: self.jitter.sample(),
        }
    }

    /// Applies `event` to the task `id` and stores the result.
    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.ctx(now);
        let mut conn = self.conn.lock().await;
        let task = load(&mut conn, id)
            .await?
            .ok_or_else(|| logic::not_found(id))?;
        let step = state::transition(&task, event, &ctx)?;
        persist(&mut conn, step).await
    }
}

/// The task `id`, read on `conn`.
async fn load(conn: &mut SqliteConnection, id: &TaskId) -> Result<Option<Task>> {
    let row = sqlx::query("SELECT task FROM tasks WHERE repo = ?1 AND number = ?2")
        .bind(id.repo())
        .bind(number_column(id.number())?)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error("read a task", e))?;
    row.map(|r| from_json(r.get::<&str, _>(0), "task"))
        .transpose()
}

/// Stores a step: the task and its effects in one transaction (one statement when
/// there are no effects).
async fn persist(conn: &mut SqliteConnection, step: Step) -> Result<Task> {
    if step.unchanged {
        return Ok(step.task);
    }
    if step.effects.is_empty() {
        upsert(conn, &step.task).await?;
        return Ok(step.task);
    }
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| db_error("begin a transaction", e))?;
    write_step(&mut tx, &step).await?;
    tx.commit()
        .await
        .map_err(|e| db_error("commit a transition", e))?;
    Ok(step.task)
}

/// Writes a step's task and effects on `conn` (inside the caller's transaction).
async fn write_step(conn: &mut SqliteConnection, step: &Step) -> Result<()> {
    upsert(conn, &step.task).await?;
    for effect in &step.effects {
        sqlx::query("INSERT INTO outbox (repo, number, effect) VALUES (?1, ?2, ?3)")
            .bind(effect.task.repo())
            .bind(number_column(effect.task.number())?)
            .bind(logic::to_json(effect)?)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("record an effect", e))?;
    }
    Ok(())
}

async fn upsert(conn: &mut SqliteConnection, task: &Task) -> Result<()> {
    let c = Columns::of(task)?;
    sqlx::query(
        "INSERT INTO tasks (repo, number, state, claimable, priority, created_at, not_before,
                            lease_expires_at, holder, task)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (repo, number) DO UPDATE SET
            state = excluded.state, claimable = excluded.claimable,
            priority = excluded.priority, created_at = excluded.created_at,
            not_before = excluded.not_before, lease_expires_at = excluded.lease_expires_at,
            holder = excluded.holder, task = excluded.task",
    )
    .bind(task.id.repo())
    .bind(number_column(task.id.number())?)
    .bind(c.state)
    .bind(c.claimable)
    .bind(c.priority)
    .bind(c.created_at)
    .bind(c.not_before)
    .bind(c.lease_expires_at)
    .bind(c.holder)
    .bind(c.json)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("store a task", e))?;
    Ok(())
}

fn limit_column(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

#[async_trait]
impl WorkQueue for SqliteQueue {
    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.ctx(observed_at);
        let mut conn = self.conn.lock().await;
        let current = load(&mut conn, &issue.id).await?;
        let (step, answer) = logic::enqueue_step(current.as_ref(), issue, &ctx)?;
        if let Some(step) = step {
            persist(&mut conn, step).await?;
        }
        Ok(answer)
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
    ) -> Result<Option<Task>> {
        let ctx = self.ctx(now);
        let mut conn = self.conn.lock().await;
        let row = sqlx::query(
            "SELECT task FROM tasks WHERE claimable = 1 AND not_before <= ?1
             ORDER BY priority, created_at, repo, number LIMIT 1",
        )
        .bind(now.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error("find a task to claim", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let task: Task = from_json(row.get::<&str, _>(0), "task")?;
        let event = Event::Claim {
            worker: worker.clone(),
            token: LeaseToken::random(),
            lease,
        };
        let step = state::transition(&task, event, &ctx)?;
        persist(&mut conn, step).await.map(Some)
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: LeaseToken,
        now: Timestamp,
    ) -> Result<HeartbeatReply> {
        let task = self.apply(id, Event::Heartbeat { token }, now).await?;
        Ok(heartbeat_reply(&task))
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: LeaseToken,
        completion: Completion,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Complete { token, completion }, now)
            .await
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: LeaseToken,
        failure: Failure,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Fail { token, failure }, now).await
    }

    async fn release(
        &self,
        id: &TaskId,
        token: LeaseToken,
        reason: String,
        now: Timestamp,
    ) -> Result<Task> {
        self.apply(id, Event::Release { token, reason }, now).await
    }

    async fn cancel(&self, id: &TaskId, reason: String, now: Timestamp) -> Result<Option<Task>> {
        logic::cancel_result(self.apply(id, Event::Cancel { reason }, now).await)
    }

    async fn retry(&self, id: &TaskId, now: Timestamp) -> Result<Task> {
        self.apply(id, Event::Retry, now).await
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let ctx = self.ctx(now);
        let mut conn = self.conn.lock().await;
        let rows = sqlx::query(
            "SELECT task FROM tasks WHERE lease_expires_at <= ?1
             ORDER BY lease_expires_at, repo, number",
        )
        .bind(now.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_error("find lapsed leases", e))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| db_error("begin a transaction", e))?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in rows {
            let task: Task = from_json(row.get::<&str, _>(0), "task")?;
            let step = state::transition(&task, Event::Expire, &ctx)?;
            write_step(&mut tx, &step).await?;
            expired.push(step.task);
        }
        tx.commit()
            .await
            .map_err(|e| db_error("commit lapsed leases", e))?;
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        load(&mut *self.conn.lock().await, id).await
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let states: String = filter
            .states
            .iter()
            .map(|s| format!(",{},", s.as_str()))
            .collect();
        let mut conn = self.conn.lock().await;
        let rows = sqlx::query(
            "SELECT task FROM tasks
             WHERE (?1 = '' OR instr(?1, ',' || state || ',') > 0)
               AND (?2 IS NULL OR holder = ?2)
             ORDER BY repo, number LIMIT ?3 OFFSET ?4",
        )
        .bind(states)
        .bind(filter.worker.as_ref().map(|w| w.as_str().to_string()))
        .bind(limit_column(filter.limit))
        .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_error("list tasks", e))?;
        rows.iter()
            .map(|r| from_json(r.get::<&str, _>(0), "task"))
            .collect()
    }

    async fn counts(&self) -> Result<QueueCounts> {
        let mut conn = self.conn.lock().await;
        let rows = sqlx::query("SELECT state, count(*) FROM tasks GROUP BY state")
            .fetch_all(&mut *conn)
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
        let mut conn = self.conn.lock().await;
        let rows = sqlx::query("SELECT id, effect, failures FROM outbox ORDER BY id LIMIT ?1")
            .bind(limit_column(Some(limit)))
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_error("read the outbox", e))?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    id: u64::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                    effect: from_json(r.get::<&str, _>(1), "effect")?,
                    failures: u32::try_from(r.get::<i64, _>(2)).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let ctx = self.ctx(now);
        let id = i64::try_from(id).unwrap_or(-1);
        let mut conn = self.conn.lock().await;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| db_error("begin a transaction", e))?;
        let row = sqlx::query("DELETE FROM outbox WHERE id = ?1 RETURNING effect")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db_error("acknowledge an effect", e))?;
        if let Some(row) = row {
            let effect: state::Effect = from_json(row.get::<&str, _>(0), "effect")?;
            if effect.kind.is_terminal() {
                if let Some(task) = load(&mut tx, &effect.task).await? {
                    if let Some(step) = logic::ack_step(&task, &effect, &ctx) {
                        write_step(&mut tx, &step).await?;
                    }
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_error("acknowledge an effect", e))?;
        Ok(())
    }

    async fn nack_effect(&self, id: u64) -> Result<()> {
        let id = i64::try_from(id).unwrap_or(-1);
        sqlx::query("UPDATE outbox SET failures = failures + 1 WHERE id = ?1")
            .bind(id)
            .execute(&mut *self.conn.lock().await)
            .await
            .map_err(|e| db_error("record a failed effect", e))?;
        Ok(())
    }
}
