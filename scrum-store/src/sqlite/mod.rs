//! [`SqliteQueue`]: the embedded default store, one SQLite file one orchestrator owns.

mod cache;
mod checkpoint;
mod rows;
mod schema;
mod workers;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard, oneshot};

use scrum_core::state::{Jitter, Policy, Step};
use scrum_core::store::{
    EffectQuery, Leader, Rules, Settle, Store, Version, Versioned, Write, Written,
};
use scrum_core::{
    OutboxEntry, QueueCounts, RepoHolds, Result, Task, TaskFilter, TaskId, Timestamp,
};

use crate::Durability;
use crate::logic::number_column;
use cache::{Live, Stored};
use rows::{OutboxRead, Row};
use writer::{Pending, Writer};

/// The schema version this build writes into SQLite files.
pub const SQLITE_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

/// A [`WorkQueue`](scrum_core::WorkQueue) in one SQLite file, for an orchestrator that runs alone.
///
/// - **Durable**: WAL journal; every transition and the GitHub effects it causes
///   are stored in one transaction (the outbox), so a crash keeps both or neither.
///   How far a commit is durable is a [`Durability`] choice: surviving a killed
///   process (the default) or a power loss too.
/// - **One owner**: the file is locked at open (an advisory lock of the operating
///   system, held until it is closed). A second orchestrator on the same file gets an [`ErrorKind::Conflict`] error
///   that says so; several orchestrators share state through PostgreSQL or Redis.
/// - **Versioned**: the schema version lives in `PRAGMA user_version`; missing
///   migrations are applied at open, and a file from a newer build is refused with
///   [`ErrorKind::Corrupt`] instead of being misread.
/// - **Fast**: because one process owns the file, the live (pending and in-progress)
///   tasks are also kept in memory with their claim and lease indexes; a claim or a
///   report then costs one write and no read. One thread owns the connection, and
///   writes that arrive together commit in one transaction (group commit). A call
///   returns only once its write committed; when a transaction fails, its calls
///   fail and the memory copy is rebuilt from the file.
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
    writer: Writer,
    /// Completes when the connection thread has closed the file.
    closed: oneshot::Receiver<()>,
    /// A tokio Mutex: a call that must read the file first holds it across that
    /// read. It is released before waiting for the commit, so that the writes of
    /// concurrent calls share transactions.
    memory: Mutex<Memory>,
    /// Taken by a write of a task that is not live, until it is sent (see `write`).
    creating: Mutex<()>,
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

/// The memory copy of the live tasks and of the counts by state, and the writer
/// generation they were built in.
#[derive(Default)]
struct Memory {
    live: Live,
    counts: QueueCounts,
    /// The largest rowid of the tasks table: a new task takes the next.
    last_row: i64,
    /// `None` until first built.
    generation: Option<u64>,
    /// The last version a write gave: every write takes the next.
    versions: Version,
    /// The tasks only the file has (terminal ones): a task neither live nor here
    /// does not exist, and no read asks the file.
    retired: HashSet<TaskId>,
}

/// How long a claim's reservation hides a task from other claims.
const RESERVATION: Duration = Duration::from_secs(30);

/// A step on its way to the file: the version it gave the task, and the write to
/// wait for.
struct Saved {
    version: Version,
    write: Option<Pending>,
}

impl Saved {
    /// The task's new version, once its write committed.
    async fn committed(self) -> Result<Version> {
        if let Some(write) = self.write {
            write.committed().await?;
        }
        Ok(self.version)
    }
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
        let (writer, closed) = Writer::start(&path, durability).await?;
        tracing::debug!(path = %path.display(), ?durability, "opened the SQLite store");
        Ok(SqliteQueue {
            policy,
            jitter,
            path,
            durability,
            writer,
            closed,
            memory: Mutex::default(),
            creating: Mutex::default(),
        })
    }

    /// The file this queue stores into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file and releases its lock, so another process may open it.
    /// (Dropping the queue releases it too, a moment later.)
    pub async fn close(self) {
        let SqliteQueue { writer, closed, .. } = self;
        drop(writer);
        let _ = closed.await;
    }

    /// Locks the memory copy, (re)building it from the file first when it was never
    /// built or a write failed since.
    async fn memory(&self, now: Timestamp) -> Result<MutexGuard<'_, Memory>> {
        let mut memory = self.memory.lock().await;
        let generation = self.writer.generation();
        if memory.generation != Some(generation) {
            let (tasks, retired, counts, last_row) = self
                .writer
                .read(|conn| {
                    let live = rows::read_live(conn)?;
                    let retired = rows::read_retired(conn)?;
                    let counts = rows::count_tasks(conn)?;
                    Ok((live, retired, counts, rows::last_row(conn)?))
                })
                .await?;
            memory.retired = retired.into_iter().collect();
            let versions = &mut memory.versions;
            let live = Live::build(tasks, now, || {
                *versions += 1;
                *versions
            });
            memory.live = live;
            memory.counts = counts;
            memory.last_row = last_row;
            memory.generation = Some(generation);
        }
        Ok(memory)
    }

    /// What `look` finds in the memory copy, as the file has it: once the writes
    /// that made the copy committed. `None` when it finds nothing, or when the copy
    /// is not built or a write failed since (read the file then).
    async fn in_memory<T>(&self, look: impl FnOnce(&Memory) -> Option<T>) -> Result<Option<T>> {
        let (found, generation, sent) = {
            let memory = self.memory.lock().await;
            (look(&memory), memory.generation, self.writer.last_sent())
        };
        let Some(found) = found else {
            return Ok(None);
        };
        self.writer.settled(sent).await?;
        Ok((generation == Some(self.writer.generation())).then_some(found))
    }

    /// The task `id` and its row: from memory when live, else from the file.
    async fn task(&self, memory: &Memory, id: &TaskId) -> Result<Option<Stored>> {
        match memory.live.get(id) {
            Some(stored) => Ok(Some(stored.clone())),
            None if memory.retired.contains(id) => self.read_task(id).await,
            None => Ok(None),
        }
    }

    /// The task `id` as the file has it, with its row.
    async fn read_task(&self, id: &TaskId) -> Result<Option<Stored>> {
        let repo = id.repo().to_string();
        let number = number_column(id.number())?;
        self.writer
            .read(move |conn| rows::read_task(conn, &repo, number))
            .await
    }

    /// Sends the write of `step` (and of the deletion of the acknowledged effect
    /// `ack`) and records the step in memory with the next version; `before` is the
    /// task's state and row before the step (`None` for a new task).
    fn save(
        &self,
        memory: &mut Memory,
        before: Option<&Stored>,
        step: &Step,
        ack: Option<i64>,
        now: Timestamp,
    ) -> Result<Saved> {
        let before = before.map(|s| (s.task.state(), s.row));
        let place = match before {
            Some((_, rowid)) => (rowid, false),
            None => (memory.last_row + 1, true),
        };
        let row = Row::of(&step.task, place, &step.effects, ack)?;
        let generation = memory.generation.unwrap_or_default();
        let write = self.writer.store(generation, row);
        memory.last_row = memory.last_row.max(place.0);
        memory
            .counts
            .moved(before.map(|(state, _)| state), step.task.state());
        memory.versions += 1;
        let stored = Stored {
            row: place.0,
            task: step.task.clone(),
            version: memory.versions,
        };
        if step.task.state().is_terminal() {
            memory.retired.insert(step.task.id.clone());
        } else if before.is_some() {
            memory.retired.remove(&step.task.id);
        }
        memory.live.put(stored, now);
        Ok(Saved {
            version: memory.versions,
            write: Some(write),
        })
    }
}

#[async_trait]
impl Store for SqliteQueue {
    fn rules(&self) -> Rules<'_> {
        Rules::new(&self.policy, &self.jitter)
    }

    /// From the memory copy when live (a write in flight included), else from the
    /// file (at version 0: a task only the file has is checked by its value).
    async fn load(&self, id: &TaskId) -> Result<Option<Versioned>> {
        let memory = self.memory(Timestamp(0)).await?;
        Ok(self.task(&memory, id).await?.map(|s| s.versioned()))
    }

    async fn write(&self, write: Write<'_>) -> Result<Written> {
        // A task that is not live (a new one, or one only the file has) is written
        // once earlier writes committed, one at a time, as a read of it from the
        // file would wait: concurrent enqueues of new issues then commit apart, and
        // a full disk fails only those that do not fit.
        let _one_at_a_time = match write.old.is_none_or(|o| o.version == 0) {
            true => {
                let turn = self.creating.lock().await;
                self.writer.settled(self.writer.last_sent()).await?;
                Some(turn)
            }
            false => None,
        };
        let mut memory = self.memory(write.now).await?;
        let id = &write.step.task.id;
        let current = self.task(&memory, id).await?;
        let holds = match (&current, write.old) {
            (None, None) => true,
            (Some(c), Some(old)) => {
                c.version == old.version && (c.version != 0 || c.task == old.task)
            }
            _ => false,
        };
        if !holds {
            return Ok(Written::Conflict);
        }
        if write.claims_locks() && memory.live.locked(&write.step.task.locks, write.now) {
            return Ok(Written::LockHeld);
        }
        let ack = write.ack.map(|id| i64::try_from(id).unwrap_or(-1));
        let saved = self.save(&mut memory, current.as_ref(), write.step, ack, write.now)?;
        drop(memory);
        saved.committed().await.map(Written::Stored)
    }

    async fn reserve(&self, now: Timestamp, hold: &RepoHolds) -> Result<Option<Versioned>> {
        let mut memory = self.memory(now).await?;
        let until = now.plus(RESERVATION);
        Ok(memory.live.reserve(now, until, hold).map(Stored::versioned))
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        // Only live tasks (the poll's question): the memory copy has every one, and
        // the file has no index by state.
        let live_only = !filter.states.is_empty() && filter.states.iter().all(|s| !s.is_terminal());
        if live_only && let Some(tasks) = self.in_memory(|m| Some(m.live.matching(filter))).await? {
            return Ok(tasks);
        }
        let filter = filter.clone();
        self.writer
            .read(move |conn| rows::list_tasks(conn, &filter))
            .await
    }

    async fn state_counts(&self) -> Result<QueueCounts> {
        match self.in_memory(|m| Some(m.counts)).await? {
            Some(counts) => Ok(counts),
            None => self.writer.read(rows::count_tasks).await,
        }
    }

    async fn effects(&self, query: EffectQuery) -> Result<Vec<OutboxEntry>> {
        let (read, limit) = match query {
            EffectQuery::Pending(limit) => (OutboxRead::All, limit),
            EffectQuery::Due(now, limit) => (OutboxRead::Due(now.0), limit),
            EffectQuery::Failing(limit) => (OutboxRead::Failing, limit),
            EffectQuery::Id(id) => {
                let row = i64::try_from(id).unwrap_or(-1);
                let effect = self
                    .writer
                    .read(move |conn| rows::read_effect(conn, row))
                    .await?;
                return Ok(effect
                    .map(|e| OutboxEntry::new(id, e))
                    .into_iter()
                    .collect());
            }
        };
        self.writer
            .read(move |conn| rows::read_outbox(conn, read, limit))
            .await
    }

    async fn settle_effects(&self, settle: Settle<'_>) -> Result<usize> {
        let changed = Arc::new(AtomicUsize::new(0));
        let count = changed.clone();
        let generation = self.writer.generation();
        let write = match settle {
            Settle::Ack(id) => {
                let id = i64::try_from(id).unwrap_or(-1);
                self.writer.write(generation, move |conn| {
                    let sql = "DELETE FROM outbox WHERE id = ?1";
                    rows::change_effect(conn, sql, id, "acknowledge an effect")
                })
            }
            Settle::Fail(id, failure) => {
                let id = i64::try_from(id).unwrap_or(-1);
                let failure = failure.clone();
                self.writer.write(generation, move |conn| {
                    rows::record_failure(conn, id, &failure)
                })
            }
            Settle::Revive(which, now) => {
                let which = which.clone();
                self.writer.write(generation, move |conn| {
                    count.store(rows::revive(conn, &which, now.0)?, Ordering::Relaxed);
                    Ok(())
                })
            }
        };
        write.committed().await?;
        Ok(changed.load(Ordering::Relaxed))
    }
}

#[async_trait]
impl Leader for SqliteQueue {
    /// One process owns this store: it always leads.
    async fn lead(&self, _holder: &str, _ttl: Duration, _now: Timestamp) -> Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
