//! Opening the SQLite file: settings, the single-owner lock and versioned
//! migrations.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use scrum_core::{Error, ErrorKind, Result};

use crate::Durability;

/// Marks a file as a scrum-store database (`PRAGMA application_id`): "SCRM".
const APPLICATION_ID: i64 = 0x5343_524d;

/// The schema, one entry per version: version `n` is `MIGRATIONS[n - 1]`. Entries
/// are only ever appended; a file whose `user_version` is larger than this list is
/// from a newer build and is refused rather than misread.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: tasks (their JSON plus columns to query by), the outbox, and the `steps`
    // view a transition was written through (until 4).
    //
    // Claims and the reaper read the in-memory copy of the live tasks, so the only
    // index besides the keys is by state (counts, listing, loading the live tasks).
    "CREATE TABLE tasks (
        repo TEXT NOT NULL,
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        claimable INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        lease_expires_at INTEGER,
        holder TEXT,
        task TEXT NOT NULL,
        UNIQUE (repo, number)
    );
    CREATE INDEX tasks_state ON tasks (state);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo TEXT NOT NULL,
        number INTEGER NOT NULL,
        effect TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE VIEW steps AS
        SELECT repo, number, state, claimable, priority, created_at, not_before,
               lease_expires_at, holder, task, NULL AS effects, NULL AS ack
        FROM tasks;
    CREATE TRIGGER steps_insert INSTEAD OF INSERT ON steps BEGIN
        UPDATE tasks SET state = NEW.state, claimable = NEW.claimable,
                         priority = NEW.priority, created_at = NEW.created_at,
                         not_before = NEW.not_before,
                         lease_expires_at = NEW.lease_expires_at,
                         holder = NEW.holder, task = NEW.task
        WHERE repo = NEW.repo AND number = NEW.number;
        INSERT OR IGNORE INTO tasks (repo, number, state, claimable, priority, created_at,
                                     not_before, lease_expires_at, holder, task)
        VALUES (NEW.repo, NEW.number, NEW.state, NEW.claimable, NEW.priority,
                NEW.created_at, NEW.not_before, NEW.lease_expires_at, NEW.holder, NEW.task);
        INSERT INTO outbox (repo, number, effect)
            SELECT NEW.repo, NEW.number, value FROM json_each(NEW.effects) ORDER BY key;
        DELETE FROM outbox WHERE id = NEW.ack;
    END;",
    // 2: each effect's own retry schedule, so failing effects hold back only their
    // task's later effects; set-aside (dead) effects wait for an operator.
    "ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN dead INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN last_error TEXT;
    CREATE INDEX outbox_task ON outbox (repo, number, id);
    CREATE INDEX outbox_failing ON outbox (id) WHERE failures > 0;",
    // 3: the worker registry (`super::workers`): one row per worker that called (or
    // that an operator drained), and the leader's latest probe report per host.
    // No index on tasks is added: forgetting a worker looks for its in-progress
    // tasks through `tasks_state`, and task writes stay as cheap as they were.
    "CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        address TEXT,
        first_seen INTEGER,
        last_seen INTEGER,
        completed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        draining INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE probes (
        host TEXT PRIMARY KEY,
        health TEXT NOT NULL,
        reason TEXT,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 4: a step is written by plain statements (`rows::Row::store`) instead of
    // through the `steps` view, whose trigger's `json_each` sorted the effects in
    // a temporary table on every write. Tasks keep only the columns something
    // reads, and no index by state: claims and the reaper read the memory copy of
    // the live tasks, which also keeps the counts by state, so a step updates one
    // row and no index. A task is stored as MessagePack (`rows::encode_task`):
    // no escaping, so a long issue body costs a copy. Rows copied here keep their
    // JSON text until next written; reads take both.
    "DROP TRIGGER steps_insert;
    DROP VIEW steps;
    CREATE TABLE tasks_v4 (
        repo TEXT NOT NULL,
        number INTEGER NOT NULL,
        state TEXT NOT NULL,
        holder TEXT,
        task BLOB NOT NULL,
        UNIQUE (repo, number)
    );
    INSERT INTO tasks_v4 (repo, number, state, holder, task)
        SELECT repo, number, state, holder, task FROM tasks ORDER BY rowid;
    DROP TABLE tasks;
    ALTER TABLE tasks_v4 RENAME TO tasks;",
    // 5: a task is written as MessagePack by position, without field names
    // (`rows::encode_task`), and an effect as MessagePack with names
    // (`rows::encode_effect`) instead of JSON: rows keep the format they were
    // last written in until next written, and reads take every format. An effect
    // names its task's rowid (`task`; rowids of tasks never change, and a
    // migration that rebuilds the table keeps them), and the index that finds a
    // task's earlier effects is by that integer instead of the repository's name
    // and the number: each effect's insert compares integers down the index.
    "ALTER TABLE outbox ADD COLUMN task INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET task = coalesce(
        (SELECT t.rowid FROM tasks t WHERE t.repo = outbox.repo AND t.number = outbox.number),
        0);
    DROP INDEX outbox_task;
    CREATE INDEX outbox_task ON outbox (task, id);",
    // 6: a task is a named state with its data and a record of its run's attempts
    // (`scrum_core::model::Task`) instead of a state beside flags and the last
    // lease (`scrum_core::model::TaskV5`). The columns keep their meaning; opening
    // the file rewrites every task row in the new form (`rows::rewrite_tasks`), in
    // the transaction that sets this version.
    "",
    // 7: the sandbox each worker says its agents run in (`super::workers`); rows
    // of earlier versions have none (NULL: the worker never said).
    "ALTER TABLE workers ADD COLUMN sandbox TEXT;",
];

/// The first version whose task rows are written in the named-state form.
const NAMED_STATES: usize = 6;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The `synchronous` setting that gives `durability`.
fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    }
}

/// The store file, open: the connection that writes, and the lock that makes this
/// process its one owner. Drop the connection (and every other one on the file)
/// before the lock: closing the lock's file descriptor while SQLite still holds
/// its own locks on the file would release those (POSIX record locks are per
/// process and file).
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    /// Held for its lock, released when it is dropped.
    #[expect(dead_code, reason = "held for its lock only")]
    pub(crate) owner: File,
}

/// Opens (creating if needed) the store file at `path`, takes the single-owner lock
/// and brings the schema up to [`SCHEMA_VERSION`].
pub(crate) fn open(path: &Path, durability: Durability) -> Result<Opened> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::unavailable(format!("store: cannot create {}", dir.display())).with_source(e)
        })?;
    }
    let owner = lock(path)?;
    let mut conn = connect(path, durability)?;
    migrate(&mut conn, path)?;
    Ok(Opened { conn, owner })
}

/// A second connection to the file [`open`] opened, for the checkpoints
/// (`super::checkpoint`): in WAL mode, with the normal locking mode, SQLite lets
/// one connection checkpoint while another commits.
pub(crate) fn open_more(path: &Path, durability: Durability) -> Result<Connection> {
    connect(path, durability)
}

/// Takes the single-owner lock on the file at `path` (an advisory lock of the
/// operating system on the file itself, held until the returned file is closed),
/// so that a second orchestrator on the same file fails at start instead of
/// corrupting the queue's semantics: the memory copy of the live tasks is right
/// only while one process writes.
fn lock(path: &Path) -> Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            Error::unavailable(format!("store: cannot open {}", path.display())).with_source(e)
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::new(ErrorKind::Conflict, in_use(path))),
        Err(TryLockError::Error(e)) => {
            Err(Error::unavailable(format!("store: cannot lock {}", path.display())).with_source(e))
        }
    }
}

/// A connection to the file at `path` with the store's settings.
fn connect(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    let settings = || -> rusqlite::Result<()> {
        // Never wait for another owner: say so at once.
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous(durability))?;
        // Checkpoints (copying the WAL into the file, with two fsyncs) do not run
        // inside a commit, where they held up every write queued behind it (10 to
        // 25 ms, at the HTTP API's p99): `super::checkpoint` runs them on their own
        // connection and thread, beside the commits. The WAL is truncated back to
        // 64 MiB after each.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 67_108_864)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(())
    };
    settings().map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// What a second orchestrator on the file at `path` is told.
fn in_use(path: &Path) -> String {
    format!(
        "store: {} is in use by another orchestrator (one process owns a SQLite \
         store; share state through PostgreSQL or Redis instead)",
        path.display()
    )
}

/// Explains a failure to open the file.
fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    let mapped = db_error("open the SQLite store", e);
    let message = match mapped.kind() {
        ErrorKind::Conflict => in_use(path),
        ErrorKind::Corrupt => format!(
            "store: {} is not a scrum-store SQLite database",
            path.display()
        ),
        _ => format!("store: cannot open {}", path.display()),
    };
    let kind = mapped.kind();
    Error::new(kind, message).with_source(mapped)
}

/// Applies the migrations the file lacks, in one transaction with the version bump.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    // BEGIN IMMEDIATE: a process that does not take the owner lock (an older
    // build, which held SQLite's own exclusive lock instead) is met here.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| open_error(path, e))?;
    let read = |sql: &str| -> Result<i64> {
        tx.query_row(sql, [], |r| r.get(0))
            .map_err(|e| open_error(path, e))
    };
    let app = read("PRAGMA application_id")?;
    let version = read("PRAGMA user_version")?;
    let tables = read("SELECT count(*) FROM sqlite_schema")?;
    if app != APPLICATION_ID && (app != 0 || tables != 0) {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "store: {} is a SQLite database of another application",
                path.display()
            ),
        ));
    }
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "store: {} has schema version {version}, written by a newer scrum-store \
                 (this build knows versions up to {SCHEMA_VERSION}); upgrade the orchestrator",
                path.display()
            ),
        ));
    }
    let migrated = || -> rusqlite::Result<()> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
        }
        if app != APPLICATION_ID {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        Ok(())
    };
    migrated().map_err(|e| db_error("migrate the SQLite store", e))?;
    if version < NAMED_STATES {
        super::rows::rewrite_tasks(&tx)?;
    }
    tx.commit()
        .map_err(|e| db_error("migrate the SQLite store", e))
}

/// Maps a SQLite error met while `doing` something to the error callers see.
pub(super) fn db_error(doing: &str, e: rusqlite::Error) -> Error {
    let kind = match e.sqlite_error_code() {
        // Another process holds the file.
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Conflict,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ErrorKind::Corrupt,
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => ErrorKind::Unavailable,
        Some(_) => ErrorKind::Internal,
        // A stored value of the wrong type.
        None if matches!(
            e,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
        ) =>
        {
            ErrorKind::Corrupt
        }
        None => ErrorKind::Internal,
    };
    Error::new(kind, format!("store: cannot {doing}")).with_source(e)
}
