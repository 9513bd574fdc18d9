//! [`SqliteQueue`]: the embedded default store, one SQLite file one orchestrator owns.

mod cache;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use scrum_core::state::{self, Ctx, Event, Jitter, Policy, Refusal, Step};
use scrum_core::{
    Enqueued, LeaseKind, LeaseToken, OutboxEntry, QueueCounts, ReadyIssue, Result, Task,
    TaskFilter, TaskId, TaskState, Timestamp, WorkQueue, WorkerId,
};

use crate::Durability;
use crate::logic::{self, Columns, from_json, number_column};
use crate::sql::db_error;
use cache::Live;

/// The schema version this build writes into SQLite files.
pub const SQLITE_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

/// A [`WorkQueue`] in one SQLite file, for an orchestrator that runs alone.
///
/// - **Durable**: WAL journal; every transition and the GitHub effects it causes
///   are stored by one statement, one transaction (the outbox), so a crash keeps
///   both or neither. How far a commit is durable is a [`Durability`] choice:
///   surviving a killed process (the default) or a power loss too.
/// - **One owner**: the file is opened in exclusive locking mode and locked at open.
///   A second orchestrator on the same file gets an [`ErrorKind::Conflict`] error
///   that says so; several orchestrators share state through PostgreSQL or Redis.
/// - **Versioned**: the schema version lives in `PRAGMA user_version`; missing
///   migrations are applied at open, and a file from a newer build is refused with
///   [`ErrorKind::Corrupt`] instead of being misread.
/// - **Fast**: because one process owns the file, the live (pending and in-progress)
///   tasks are also kept in memory with their claim and lease indexes; a claim or a
///   report then costs one write and no read. The memory copy changes only after
///   the file did, and is rebuilt from the file when a write's outcome is unknown.
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
    durability: Durability,
    // A tokio Mutex: calls hold it across the awaits of their statements. SQLite
    // has one writer anyway; one connection without lock contention is fastest.
    store: Mutex<Store>,
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The connection and the memory copy of the live tasks.
struct Store {
    conn: SqliteConnection,
    /// `None` until first used, and after a write whose outcome is unknown (the
    /// call was cancelled mid-statement): then rebuilt from the file.
    live: Option<Live>,
}

impl SqliteQueue {
    /// Opens the store at `path` (creating the file and its directory if needed),
    /// with the default [`Durability`] and random backoff jitter.
    pub async fn open(path: impl AsRef<Path>, policy: Policy) -> Result<SqliteQueue> {
        SqliteQueue::open_with(path, Durability::default(), policy, Jitter::random()).await
    }

    /// Opens the store at `path` with a chosen durability and jitter source.
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
        policy: Policy,
        jitter: Jitter,
    ) -> Result<SqliteQueue> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open(&path, durability).await?;
        tracing::debug!(path = %path.display(), ?durability, "opened the SQLite store");
        Ok(SqliteQueue {
            policy,
            jitter,
            path,
            durability,
            store: Mutex::new(Store { conn, live: None }),
        })
    }

    /// The file this queue stores into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file and releases its lock, so another process may open it.
    /// (Dropping the queue releases it too, a moment later.)
    pub async fn close(self) {
        if let Err(e) = self.store.into_inner().conn.close().await {
            tracing::warn!(error = %e, "closing the SQLite store failed");
        }
    }

    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx::sample(now, &self.policy, &self.jitter)
    }

    /// Applies `event` to the task `id` and stores the result.
    async fn apply_event(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.ctx(now);
        let mut store = self.store.lock().await;
        let task = store
            .task(id, now)
            .await?
            .ok_or_else(|| scrum_core::queue::unknown_task(id))?;
        let step = state::transition(&task, event, &ctx)?;
        store.save(step, None, now).await
    }
}

impl Store {
    /// The memory copy of the live tasks, read from the file if needed.
    async fn live(&mut self, now: Timestamp) -> Result<&mut Live> {
        if self.live.is_none() {
            let rows =
                sqlx::query("SELECT task FROM tasks WHERE state IN ('pending', 'in_progress')")
                    .fetch_all(&mut self.conn)
                    .await
                    .map_err(|e| db_error("read the live tasks", e))?;
            let tasks = rows
                .iter()
                .map(|r| from_json::<Task>(r.get::<&str, _>(0), "task"))
                .collect::<Result<Vec<_>>>()?;
            self.live = Some(Live::build(tasks, now));
        }
        Ok(self.live.as_mut().expect("just built"))
    }

    /// The task `id`: from memory when live, else from the file.
    async fn task(&mut self, id: &TaskId, now: Timestamp) -> Result<Option<Task>> {
        if let Some(task) = self.live(now).await?.get(id) {
            return Ok(Some(task.clone()));
        }
        let row = sqlx::query("SELECT task FROM tasks WHERE repo = ?1 AND number = ?2")
            .bind(id.repo())
            .bind(number_column(id.number())?)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| db_error("read a task", e))?;
        row.map(|r| from_json(r.get::<&str, _>(0), "task"))
            .transpose()
    }

    /// Stores a step (and deletes the acknowledged effect `ack`) in one statement,
    /// then updates the memory copy.
    async fn save(&mut self, step: Step, ack: Option<i64>, now: Timestamp) -> Result<Task> {
        if step.unchanged {
            return Ok(step.task);
        }
        let c = Columns::of(&step.task)?;
        // Taken out while the statement runs: if this call is cancelled mid-way the
        // copy is gone and the next call rebuilds it from the file.
        let live = self.live.take();
        // Most steps (claims, heartbeats) change only the task: a plain UPDATE.
        let updated = step.effects.is_empty()
            && ack.is_none()
            && sqlx::query(
                "UPDATE tasks SET state = ?3, claimable = ?4, priority = ?5, created_at = ?6,
                    not_before = ?7, lease_expires_at = ?8, holder = ?9, task = ?10
                 WHERE repo = ?1 AND number = ?2",
            )
            .bind(step.task.id.repo())
            .bind(number_column(step.task.id.number())?)
            .bind(c.state)
            .bind(c.claimable)
            .bind(c.priority)
            .bind(c.created_at)
            .bind(c.not_before)
            .bind(c.lease_expires_at)
            .bind(&c.holder)
            .bind(&c.json)
            .execute(&mut self.conn)
            .await
            .map_err(|e| db_error("store a task", e))?
            .rows_affected()
                == 1;
        if !updated {
            self.insert_step(&step, &c, ack).await?;
        }
        // A failed statement changed nothing, but the copy is rebuilt then anyway.
        if let Some(mut live) = live {
            live.put(step.task.clone(), now);
            self.live = Some(live);
        }
        Ok(step.task)
    }

    /// Writes a step through the `steps` view: the task, its effects and the
    /// deletion of `ack` in one statement.
    async fn insert_step(&mut self, step: &Step, c: &Columns, ack: Option<i64>) -> Result<()> {
        let effects = logic::to_json(&step.effects)?;
        sqlx::query(
            "INSERT INTO steps (repo, number, state, claimable, priority, created_at,
                                not_before, lease_expires_at, holder, task, effects, ack)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .bind(step.task.id.repo())
        .bind(number_column(step.task.id.number())?)
        .bind(c.state)
        .bind(c.claimable)
        .bind(c.priority)
        .bind(c.created_at)
        .bind(c.not_before)
        .bind(c.lease_expires_at)
        .bind(&c.holder)
        .bind(&c.json)
        .bind(effects)
        .bind(ack)
        .execute(&mut self.conn)
        .await
        .map_err(|e| db_error("store a task", e))?;
        Ok(())
    }
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
        let mut store = self.store.lock().await;
        let current = store.task(&issue.id, observed_at).await?;
        let (step, answer) = logic::enqueue_step(current.as_ref(), issue, &ctx)?;
        if let Some(step) = step {
            store.save(step, None, observed_at).await?;
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
        let mut store = self.store.lock().await;
        loop {
            let live = store.live(now).await?;
            let Some(task) = live.first_ready(now).cloned() else {
                return Ok(None);
            };
            let event = Event::Claim {
                worker: worker.clone(),
                token: LeaseToken::random(),
                lease,
            };
            match state::transition(&task, event, &ctx) {
                Ok(step) => return store.save(step, None, now).await.map(Some),
                // Indexed as ready at a later `now` than this call's: index it
                // again as of this call and look for another.
                Err(Refusal::NotClaimable) => live.put(task, now),
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        self.apply_event(id, event, now).await
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let ctx = self.ctx(now);
        let mut store = self.store.lock().await;
        let lapsed = store.live(now).await?.lapsed(now);
        let mut expired = Vec::with_capacity(lapsed.len());
        for id in lapsed {
            let Some(task) = store.task(&id, now).await? else {
                continue;
            };
            let step = state::transition(&task, Event::Expire, &ctx)?;
            expired.push(store.save(step, None, now).await?);
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        let mut store = self.store.lock().await;
        match store.live.as_ref().and_then(|l| l.get(id)) {
            Some(task) => Ok(Some(task.clone())),
            None => {
                let row = sqlx::query("SELECT task FROM tasks WHERE repo = ?1 AND number = ?2")
                    .bind(id.repo())
                    .bind(number_column(id.number())?)
                    .fetch_optional(&mut store.conn)
                    .await
                    .map_err(|e| db_error("read a task", e))?;
                row.map(|r| from_json(r.get::<&str, _>(0), "task"))
                    .transpose()
            }
        }
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let states: String = filter
            .states
            .iter()
            .map(|s| format!(",{},", s.as_str()))
            .collect();
        let mut store = self.store.lock().await;
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
        .fetch_all(&mut store.conn)
        .await
        .map_err(|e| db_error("list tasks", e))?;
        rows.iter()
            .map(|r| from_json(r.get::<&str, _>(0), "task"))
            .collect()
    }

    async fn counts(&self) -> Result<QueueCounts> {
        let mut store = self.store.lock().await;
        let rows = sqlx::query("SELECT state, count(*) FROM tasks GROUP BY state")
            .fetch_all(&mut store.conn)
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
        let mut store = self.store.lock().await;
        let rows = sqlx::query("SELECT id, effect, failures FROM outbox ORDER BY id LIMIT ?1")
            .bind(limit_column(Some(limit)))
            .fetch_all(&mut store.conn)
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
        let mut store = self.store.lock().await;
        let row = sqlx::query("SELECT effect FROM outbox WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut store.conn)
            .await
            .map_err(|e| db_error("acknowledge an effect", e))?;
        let Some(row) = row else {
            return Ok(());
        };
        let effect: state::Effect = from_json(row.get::<&str, _>(0), "effect")?;
        if effect.kind.is_terminal() {
            if let Some(task) = store.task(&effect.task, now).await? {
                if let Some(step) = logic::ack_step(&task, &effect, &ctx) {
                    // The labels-written time and the deletion in one statement.
                    store.save(step, Some(id), now).await?;
                    return Ok(());
                }
            }
        }
        sqlx::query("DELETE FROM outbox WHERE id = ?1")
            .bind(id)
            .execute(&mut store.conn)
            .await
            .map_err(|e| db_error("acknowledge an effect", e))?;
        Ok(())
    }

    async fn nack_effect(&self, id: u64) -> Result<()> {
        let id = i64::try_from(id).unwrap_or(-1);
        let mut store = self.store.lock().await;
        sqlx::query("UPDATE outbox SET failures = failures + 1 WHERE id = ?1")
            .bind(id)
            .execute(&mut store.conn)
            .await
            .map_err(|e| db_error("record a failed effect", e))?;
        Ok(())
    }
}
