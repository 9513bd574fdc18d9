//! The one thread that owns the SQLite connection.
//!
//! Callers hand it jobs through a channel. Writes that arrive while it is busy
//! commit together, in one transaction (group commit): a commit costs the same for
//! one write or two hundred, so many concurrent workers cost little more than one.
//! A write's caller hears back only after its transaction committed.
//!
//! Writes are derived from the queue's memory copy of the live tasks, which runs
//! ahead of the file by the writes in flight. When a transaction fails (a full
//! disk, an I/O error) its writes are rolled back, so the copy no longer matches
//! the file: the writer then starts a new [`generation`](Writer::generation), refuses
//! every write derived from an older one, and the queue rebuilds its copy.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use scrum_core::{Error, Result};

use super::checkpoint::Checkpoints;
use super::rows::{Row, Statements};
use super::schema::{self, db_error};
use crate::Durability;

/// The most writes one transaction takes, so the first of them waits a bounded time.
const MAX_BATCH: usize = 256;

type WriteFn = Box<dyn FnOnce(&Connection) -> Result<()> + Send>;
type ReadFn = Box<dyn FnOnce(&Connection) + Send>;

/// What a write does.
enum Run {
    /// Stores a step, through the statements the thread keeps prepared (most
    /// writes: one per claim, report or enqueue).
    Row(Row),
    /// Anything else.
    Fn(WriteFn),
}

enum Job {
    /// Runs in the current transaction; answered when it commits or fails.
    Write {
        seq: u64,
        generation: u64,
        run: Run,
        done: oneshot::Sender<Result<()>>,
    },
    /// Runs after every earlier write has committed or failed; answers itself.
    Read(ReadFn),
}

/// The handle callers send jobs through. Dropping the last one stops the thread,
/// which closes the file and releases its lock.
#[derive(Debug)]
pub(super) struct Writer {
    /// The sender and the sequence number of the last write sent, locked together
    /// so that sequence numbers follow the channel's order.
    jobs: Mutex<(u64, mpsc::UnboundedSender<Job>)>,
    /// Bumped by the thread when a transaction fails.
    generation: Arc<AtomicU64>,
    /// The sequence number up to which writes have committed or failed.
    settled: watch::Receiver<u64>,
}

/// A write on its way to the file.
#[derive(Debug)]
pub(super) struct Pending(oneshot::Receiver<Result<()>>);

impl Pending {
    /// Waits until the write committed.
    pub(super) async fn committed(self) -> Result<()> {
        self.0.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Writer {
    /// Starts the thread, which opens `path` and then serves jobs. Returns once the
    /// file is open, with a receiver that completes when the thread has closed it.
    pub(super) async fn start(
        path: &Path,
        durability: Durability,
    ) -> Result<(Writer, oneshot::Receiver<()>)> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (opened, is_open) = oneshot::channel();
        let (closed, on_close) = oneshot::channel();
        let (settle, settled) = watch::channel(0);
        let generation = Arc::new(AtomicU64::new(0));
        let thread = Thread {
            generation: generation.clone(),
            settled: settle,
            waiting: Vec::new(),
            last_seq: 0,
        };
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("scrum-sqlite".into())
            .spawn(move || match open(&path, durability) {
                Ok((file, checkpoints)) => {
                    let _ = opened.send(Ok(()));
                    thread.serve(&file.conn, &checkpoints, rx);
                    // The checkpoints' connection, then the writer's, then the lock.
                    drop(checkpoints);
                    drop(file);
                    let _ = closed.send(());
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            })
            .map_err(|e| {
                Error::unavailable("store: cannot start the SQLite thread").with_source(e)
            })?;
        is_open.await.unwrap_or_else(|_| Err(stopped()))?;
        let writer = Writer {
            jobs: Mutex::new((0, jobs)),
            generation,
            settled,
        };
        Ok((writer, on_close))
    }

    /// The current generation: memory copies built from the file now belong to it.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Sends a write derived from memory of `generation`; the answer comes once it
    /// committed. Writes reach the file in the order they are sent.
    pub(super) fn write(
        &self,
        generation: u64,
        run: impl FnOnce(&Connection) -> Result<()> + Send + 'static,
    ) -> Pending {
        self.send(generation, Run::Fn(Box::new(run)))
    }

    /// Sends the write of a step's `row`, as [`write`](Writer::write) does.
    pub(super) fn store(&self, generation: u64, row: Row) -> Pending {
        self.send(generation, Run::Row(row))
    }

    fn send(&self, generation: u64, run: Run) -> Pending {
        let (done, answer) = oneshot::channel();
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.0 += 1;
        let job = Job::Write {
            seq: jobs.0,
            generation,
            run,
            done,
        };
        // A stopped thread drops the job, and with it `done`: `committed` says so.
        let _ = jobs.1.send(job);
        Pending(answer)
    }

    /// The sequence number of the last write sent.
    pub(super) fn last_sent(&self) -> u64 {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    /// Waits until every write up to `seq` has committed or failed.
    pub(super) async fn settled(&self, seq: u64) -> Result<()> {
        let mut settled = self.settled.clone();
        settled
            .wait_for(|s| *s >= seq)
            .await
            .map(|_| ())
            .map_err(|_| stopped())
    }

    /// Runs `run` on the connection after every write sent before it has committed
    /// or failed.
    pub(super) async fn read<R: Send + 'static>(
        &self,
        run: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (done, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |conn| {
            let _ = done.send(run(conn));
        }));
        let sent = {
            let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.1.send(job).is_ok()
        };
        if !sent {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The thread's side.
struct Thread {
    generation: Arc<AtomicU64>,
    settled: watch::Sender<u64>,
    /// The writes of the open transaction, waiting for its commit.
    waiting: Vec<oneshot::Sender<Result<()>>>,
    /// The sequence number of the last write taken from the channel.
    last_seq: u64,
}

impl Thread {
    /// Serves jobs until every [`Writer`] is gone.
    fn serve(
        mut self,
        conn: &Connection,
        checkpoints: &Checkpoints,
        mut jobs: mpsc::UnboundedReceiver<Job>,
    ) {
        let mut statements = Statements::new(conn);
        while let Some(first) = next_job(&mut jobs) {
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write {
                        seq,
                        generation,
                        run,
                        done,
                    } => {
                        self.last_seq = seq;
                        self.write(conn, &mut statements, generation, run, done);
                    }
                    Job::Read(run) => {
                        self.commit(conn);
                        run(conn);
                    }
                }
                if self.waiting.len() < MAX_BATCH {
                    next = jobs.try_recv().ok();
                }
            }
            self.commit(conn);
            if checkpoints.writer_turn() {
                checkpoints.run_on(conn);
            }
        }
    }

    fn write(
        &mut self,
        conn: &Connection,
        statements: &mut Statements<'_>,
        generation: u64,
        run: Run,
        done: oneshot::Sender<Result<()>>,
    ) {
        if generation != self.generation.load(Ordering::Acquire) {
            let _ = done.send(Err(Error::unavailable(
                "store: an earlier write failed and was rolled back; try again",
            )));
            // Inside an open transaction, its commit settles this one too.
            if self.waiting.is_empty() {
                self.settle();
            }
            return;
        }
        let begun = if self.waiting.is_empty() {
            run_cached(conn, "BEGIN").map_err(|e| db_error("begin a transaction", e))
        } else {
            Ok(())
        };
        self.waiting.push(done);
        let ran = begun.and_then(|()| match run {
            Run::Row(row) => row.store(statements),
            Run::Fn(run) => run(conn),
        });
        if let Err(e) = ran {
            self.fail(conn, &e);
        }
    }

    /// Commits the open transaction, if any, and answers its writes.
    fn commit(&mut self, conn: &Connection) {
        if self.waiting.is_empty() {
            return;
        }
        match run_cached(conn, "COMMIT") {
            Ok(()) => {
                for done in self.waiting.drain(..) {
                    let _ = done.send(Ok(()));
                }
                self.settle();
            }
            Err(e) => self.fail(conn, &db_error("commit", e)),
        }
    }

    /// Rolls the open transaction back, fails its writes with `e`, and starts a new
    /// generation.
    fn fail(&mut self, conn: &Connection, e: &Error) {
        tracing::error!(error = %e, writes = self.waiting.len(), "a SQLite transaction failed and was rolled back");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        for done in self.waiting.drain(..) {
            let _ = done.send(Err(Error::new(e.kind(), e.message())));
        }
        self.settle();
    }

    fn settle(&self) {
        self.settled.send_replace(self.last_seq);
    }
}

/// Opens the file and starts its checkpoints.
fn open(path: &Path, durability: Durability) -> Result<(schema::Opened, Checkpoints)> {
    let mut file = schema::open(path, durability)?;
    let checkpoints = Checkpoints::start(path, durability, &mut file.conn)?;
    Ok((file, checkpoints))
}

/// Runs `sql`, a statement without parameters, prepared once per connection.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The next job: a caller that is waiting for its last write often sends its next
/// one within microseconds, so look for it briefly before sleeping (waking a
/// sleeping thread costs more than the wait).
fn next_job(jobs: &mut mpsc::UnboundedReceiver<Job>) -> Option<Job> {
    let spin_until = std::time::Instant::now() + Duration::from_micros(50);
    while std::time::Instant::now() < spin_until {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
        }
    }
    jobs.blocking_recv()
}

/// The error when the thread is gone (it panicked, or the file could not be opened).
fn stopped() -> Error {
    Error::unavailable("store: the SQLite thread stopped")
}
