//! [`SqliteQueue`]: the embedded default store, one SQLite file one orchestrator owns.

mod cache;
mod checkpoint;
mod rows;
mod schema;
mod workers;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard, oneshot};

use scrum_core::backend;
use scrum_core::state::{self, Ctx, Event, Jitter, Policy, Refusal, Step};
use scrum_core::{
    EffectFailure, EffectSelector, Enqueued, Hold, LeaseKind, LeaseToken, OutboxEntry, QueueCounts,
    ReadyIssue, Result, Task, TaskFilter, TaskId, TaskState, Timestamp, WorkQueue, WorkerId,
};

use crate::Durability;
use crate::logic::number_column;
use cache::{Live, Stored};
use rows::{OutboxRead, Row};
use writer::{Pending, Writer};

/// The schema version this build writes into SQLite files.
pub const SQLITE_SCHEMA_VERSION: usize = schema::SCHEMA_VERSION;

/// A [`WorkQueue`] in one SQLite file, for an orchestrator that runs alone.
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
}

/// A step on its way to the file: the task it stores, and the write to wait for.
struct Saved {
    task: Task,
    write: Option<Pending>,
}

impl Saved {
    /// The stored task, once its write committed.
    async fn committed(self) -> Result<Task> {
        if let Some(write) = self.write {
            write.committed().await?;
        }
        Ok(self.task)
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

    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx::sample(now, &self.policy, &self.jitter)
    }

    /// Locks the memory copy, (re)building it from the file first when it was never
    /// built or a write failed since.
    async fn memory(&self, now: Timestamp) -> Result<MutexGuard<'_, Memory>> {
        let mut memory = self.memory.lock().await;
        let generation = self.writer.generation();
        if memory.generation != Some(generation) {
            let (tasks, counts, last_row) = self
                .writer
                .read(|conn| {
                    let live = rows::read_live(conn)?;
                    Ok((live, rows::count_tasks(conn)?, rows::last_row(conn)?))
                })
                .await?;
            memory.live = Live::build(tasks, now);
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
            None => self.read_task(id).await,
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
    /// `ack`) and records the step in memory; `before` is the task's state and row
    /// before the step (`None` for a new task).
    fn save(
        &self,
        memory: &mut Memory,
        before: Option<(TaskState, i64)>,
        step: Step,
        ack: Option<i64>,
        now: Timestamp,
    ) -> Result<Saved> {
        if step.unchanged {
            return Ok(Saved {
                task: step.task,
                write: None,
            });
        }
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
        let stored = Stored {
            row: place.0,
            task: step.task.clone(),
        };
        memory.live.put(stored, now);
        Ok(Saved {
            task: step.task,
            write: Some(write),
        })
    }

    /// Applies `event` to the task `id` and stores the result.
    async fn apply_event(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        let ctx = self.ctx(now);
        let mut memory = self.memory(now).await?;
        let Stored { row, task } = self
            .task(&memory, id)
            .await?
            .ok_or_else(|| scrum_core::queue::unknown_task(id))?;
        let step = state::transition(&task, event, &ctx)?;
        let saved = self.save(&mut memory, Some((task.state(), row)), step, None, now)?;
        drop(memory);
        saved.committed().await
    }
}

#[async_trait]
impl WorkQueue for SqliteQueue {
    fn policy(&self) -> &Policy {
        &self.policy
    }

    async fn enqueue(&self, issue: ReadyIssue, observed_at: Timestamp) -> Result<Enqueued> {
        let ctx = self.ctx(observed_at);
        let mut memory = self.memory(observed_at).await?;
        let current = self.task(&memory, &issue.id).await?;
        let (step, answer) = backend::enqueue_step(current.as_ref().map(|s| &s.task), issue, &ctx)?;
        if let Some(step) = step {
            let before = current.map(|s| (s.task.state(), s.row));
            let saved = self.save(&mut memory, before, step, None, observed_at)?;
            drop(memory);
            saved.committed().await?;
        }
        Ok(answer)
    }

    async fn claim_where(
        &self,
        worker: &WorkerId,
        lease: LeaseKind,
        now: Timestamp,
        hold: &Hold,
    ) -> Result<Option<Task>> {
        let ctx = self.ctx(now);
        let mut memory = self.memory(now).await?;
        loop {
            let Some(Stored { row, task }) = memory.live.first_ready(now, hold).cloned() else {
                return Ok(None);
            };
            let event = Event::Claim {
                worker: worker.clone(),
                token: LeaseToken::random(),
                lease,
            };
            match state::transition(&task, event, &ctx) {
                Ok(step) => {
                    let saved =
                        self.save(&mut memory, Some((task.state(), row)), step, None, now)?;
                    drop(memory);
                    return saved.committed().await.map(Some);
                }
                // Indexed as ready at a later `now` than this call's: index it
                // again as of this call and look for another.
                Err(Refusal::NotClaimable) => memory.live.put(Stored { row, task }, now),
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn apply(&self, id: &TaskId, event: Event, now: Timestamp) -> Result<Task> {
        self.apply_event(id, event, now).await
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Task>> {
        let ctx = self.ctx(now);
        let mut memory = self.memory(now).await?;
        let lapsed = memory.live.lapsed(now);
        let mut saved = Vec::with_capacity(lapsed.len());
        for id in lapsed {
            let Some(Stored { row, task }) = memory.live.get(&id).cloned() else {
                continue;
            };
            let step = state::transition(&task, Event::Expire, &ctx)?;
            saved.push(self.save(&mut memory, Some((task.state(), row)), step, None, now)?);
        }
        drop(memory);
        let mut expired = Vec::with_capacity(saved.len());
        for s in saved {
            expired.push(s.committed().await?);
        }
        Ok(expired)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        if let Some(task) = self
            .in_memory(|m| m.live.get(id).map(|s| s.task.clone()))
            .await?
        {
            return Ok(Some(task));
        }
        Ok(self.read_task(id).await?.map(|s| s.task))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
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

    async fn counts(&self) -> Result<QueueCounts> {
        match self.in_memory(|m| Some(m.counts)).await? {
            Some(counts) => Ok(counts),
            None => self.writer.read(rows::count_tasks).await,
        }
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.writer
            .read(move |conn| rows::read_outbox(conn, OutboxRead::All, limit))
            .await
    }

    async fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.writer
            .read(move |conn| rows::read_outbox(conn, OutboxRead::Due(now.0), limit))
            .await
    }

    async fn failing_effects(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.writer
            .read(move |conn| rows::read_outbox(conn, OutboxRead::Failing, limit))
            .await
    }

    async fn ack_effect(&self, id: u64, now: Timestamp) -> Result<()> {
        let ctx = self.ctx(now);
        let id = i64::try_from(id).unwrap_or(-1);
        let mut memory = self.memory(now).await?;
        let effect = self
            .writer
            .read(move |conn| rows::read_effect(conn, id))
            .await?;
        let Some(effect) = effect else {
            return Ok(());
        };
        if effect.kind.is_terminal()
            && let Some(Stored { row, task }) = self.task(&memory, &effect.task).await?
            && let Some(step) = backend::ack_step(&task, &effect, &ctx)
        {
            // The labels-written time and the deletion in one statement.
            let before = Some((task.state(), row));
            let saved = self.save(&mut memory, before, step, Some(id), now)?;
            drop(memory);
            return saved.committed().await.map(drop);
        }
        let generation = memory.generation.unwrap_or_default();
        let write = self.writer.write(generation, move |conn| {
            let sql = "DELETE FROM outbox WHERE id = ?1";
            rows::change_effect(conn, sql, id, "acknowledge an effect")
        });
        drop(memory);
        write.committed().await
    }

    async fn nack_effect(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        let id = i64::try_from(id).unwrap_or(-1);
        let failure = failure.clone();
        let write = self.writer.write(self.writer.generation(), move |conn| {
            rows::record_failure(conn, id, &failure)
        });
        write.committed().await
    }

    async fn revive_effects(&self, which: &EffectSelector, now: Timestamp) -> Result<usize> {
        let revived = Arc::new(AtomicUsize::new(0));
        let (which, count) = (which.clone(), revived.clone());
        let write = self.writer.write(self.writer.generation(), move |conn| {
            count.store(rows::revive(conn, &which, now.0)?, Ordering::Relaxed);
            Ok(())
        });
        write.committed().await?;
        Ok(revived.load(Ordering::Relaxed))
    }

    /// One process owns this store: it always leads.
    async fn lead(&self, _holder: &str, _ttl: Duration, _now: Timestamp) -> Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
