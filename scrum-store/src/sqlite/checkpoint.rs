//! Checkpoints beside the commits, not inside them.
//!
//! A checkpoint copies the pages the WAL holds into the database file, with a disk
//! flush of each. Run by SQLite's automatic checkpoints, it happens inside the
//! commit that crosses the threshold, and every write queued behind that commit
//! waits for it (10 to 25 ms under load: the HTTP API's p99). Here a thread of its
//! own, on a connection of its own, runs it beside the commits (WAL mode lets one
//! connection checkpoint while another commits): the writer's connection reports
//! the WAL's size after each commit (SQLite's WAL hook) and wakes this thread once
//! [`START_AT`] pages wait to be copied.
//!
//! The WAL starts again from its beginning only at a write that finds every page of
//! it copied; under writes that never pause, a checkpoint beside them may never
//! catch up the last few. Past [`WRITER_AT`] pages the writer therefore checkpoints
//! itself once, between two transactions, copying what is left (a short wait, once
//! in that many pages), so the WAL stays bounded.

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, MAIN_DB};

use scrum_core::{Error, Result};

use super::schema::{self, db_error};
use crate::Durability;

/// Pages waiting in the WAL before a checkpoint starts: SQLite's default
/// `wal_autocheckpoint`.
const START_AT: c_int = 1_000;

/// Pages in the WAL at which the writer checkpoints itself (about 40 MB).
const WRITER_AT: c_int = 10_000;

/// The checkpoint thread, and what the writer's connection tells it. Dropping it
/// stops the thread (after the checkpoint it is running, if any) and closes its
/// connection.
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    wal: Mutex<WalState>,
    wake: Condvar,
    /// Set by the WAL hook past [`WRITER_AT`] pages; taken by the writer.
    writer_turn: AtomicBool,
}

#[derive(Default)]
struct WalState {
    /// Pages in the WAL after the last commit.
    pages: c_int,
    /// Of those, the pages already copied into the database file.
    copied: c_int,
    /// How many times the WAL started again from its beginning.
    restarts: u64,
    stop: bool,
}

impl WalState {
    fn waiting(&self) -> c_int {
        self.pages - self.copied
    }
}

impl Checkpoints {
    /// Opens a second connection to the file at `path` and starts the thread that
    /// checkpoints on it, woken by the commits of `writer`.
    pub(super) fn start(
        path: &Path,
        durability: Durability,
        writer: &mut Connection,
    ) -> Result<Checkpoints> {
        let conn = schema::open_more(path, durability)?;
        let shared = Arc::new(Shared::default());
        let hooked = shared.clone();
        writer
            .wal_hook(Some(move |_: &mut Wal, pages: c_int| {
                hooked.committed(pages);
                Ok(())
            }))
            .map_err(|e| db_error("watch the WAL", e))?;
        let run = shared.clone();
        let thread = std::thread::Builder::new()
            .name("scrum-sqlite-checkpoint".into())
            .spawn(move || run.serve(&conn))
            .map_err(|e| {
                Error::unavailable("store: cannot start the SQLite checkpoint thread")
                    .with_source(e)
            })?;
        Ok(Checkpoints {
            shared,
            thread: Some(thread),
        })
    }

    /// Whether the writer should checkpoint now, between two transactions: the WAL
    /// grew past [`WRITER_AT`] pages. Asked after each commit; yes at most once per
    /// time it grew past.
    pub(super) fn writer_turn(&self) -> bool {
        self.shared.writer_turn.swap(false, Ordering::Relaxed)
    }

    /// The writer's own checkpoint, on its connection: copies what the thread has
    /// not, so the next write starts the WAL again.
    pub(super) fn run_on(&self, writer: &Connection) {
        let restarts = self.shared.restarts();
        match writer.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
            Ok((pages, copied)) => self.shared.copied(restarts, pages, copied),
            Err(e) => tracing::warn!(error = %e, "the writer's SQLite checkpoint failed"),
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, WalState> {
        self.wal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The WAL hook: a commit left `pages` pages in the WAL.
    fn committed(&self, pages: c_int) {
        let mut wal = self.lock();
        if pages < wal.pages {
            // The WAL started again from its beginning.
            wal.copied = 0;
            wal.restarts += 1;
        }
        wal.pages = pages;
        if pages >= WRITER_AT {
            self.writer_turn.store(true, Ordering::Relaxed);
        }
        if wal.waiting() >= START_AT {
            self.wake.notify_one();
        }
    }

    /// How many times the WAL started again so far: taken before a checkpoint.
    fn restarts(&self) -> u64 {
        self.lock().restarts
    }

    /// A checkpoint that began after `restarts` restarts found `pages` pages in the
    /// WAL and left `copied` of them copied (both -1 when it could not run).
    fn copied(&self, restarts: u64, pages: c_int, copied: c_int) {
        let mut wal = self.lock();
        if wal.restarts == restarts && copied >= 0 {
            // A later commit may have added pages the checkpoint did not see.
            wal.pages = wal.pages.max(pages);
            wal.copied = copied;
        }
    }

    /// The thread: a checkpoint each time [`START_AT`] pages wait, until stopped.
    fn serve(&self, conn: &Connection) {
        loop {
            let restarts = {
                let mut wal = self.lock();
                while !wal.stop && wal.waiting() < START_AT {
                    wal = self.wake.wait(wal).unwrap_or_else(PoisonError::into_inner);
                }
                if wal.stop {
                    return;
                }
                wal.restarts
            };
            match conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
                Ok((pages, copied)) => self.copied(restarts, pages, copied),
                Err(e) => {
                    tracing::warn!(error = %e, "a SQLite checkpoint failed; the next commits retry it");
                    // Wait for as many pages again rather than retry at each commit.
                    let mut wal = self.lock();
                    wal.copied = wal.pages;
                }
            }
        }
    }
}
