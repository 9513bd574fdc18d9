//! The statements the connection thread runs: storing a step, and every read.
//! Each takes the connection and maps its errors to what callers see.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Statement, ToSql};

use scrum_core::state::Effect;
use scrum_core::{
    EffectFailure, EffectSelector, Error, ErrorKind, OutboxEntry, QueueCounts, Result, Task,
    TaskFilter, TaskId, TaskState,
};

use super::cache::Stored;
use super::schema::db_error;
use crate::logic::{self, from_json, number_column};

/// A step as the file stores it.
pub(super) struct Row {
    /// The row's rowid: known for a stored task, chosen by the store for a new one.
    pub(super) rowid: i64,
    /// A new task: INSERT rather than UPDATE.
    pub(super) new: bool,
    pub(super) repo: String,
    pub(super) number: i64,
    pub(super) state: &'static str,
    /// While in progress: who holds it.
    pub(super) holder: Option<String>,
    /// The task, [encoded](encode_task).
    pub(super) task: Vec<u8>,
    /// Each effect the step caused, in order, [encoded](encode_effect).
    pub(super) effects: Vec<Vec<u8>>,
    /// An acknowledged effect to delete with the step.
    pub(super) ack: Option<i64>,
}

impl Row {
    /// The row `rowid` (`new`: not in the file yet) that stores `task`, with the
    /// `effects` its step caused.
    pub(super) fn of(
        task: &Task,
        (rowid, new): (i64, bool),
        effects: &[Effect],
        ack: Option<i64>,
    ) -> Result<Row> {
        Ok(Row {
            rowid,
            new,
            repo: task.id.repo().to_string(),
            number: number_column(task.id.number())?,
            state: task.state().as_str(),
            holder: task.holder().map(|w| w.as_str().to_string()),
            task: encode_task(task)?,
            effects: effects.iter().map(encode_effect).collect::<Result<_>>()?,
            ack,
        })
    }

    /// Writes the task (an UPDATE of its row, or an INSERT for a new one), then its
    /// effects and the deletion of the acknowledged effect, through `statements`,
    /// inside the transaction the write commits in.
    pub(super) fn store(&self, statements: &mut Statements<'_>) -> Result<()> {
        let task: [&dyn ToSql; 6] = [
            &self.repo,
            &self.number,
            &self.state,
            &self.holder,
            &self.task,
            &self.rowid,
        ];
        let mut stored = || -> rusqlite::Result<usize> {
            let conn = statements.conn;
            let written = if self.new {
                let sql = "INSERT INTO tasks (repo, number, state, holder, task, rowid)
                           VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
                prepared(conn, &mut statements.insert_task, sql)?.execute(&task[..])?
            } else {
                // The key is checked too: it costs no index, and a row that is not
                // where the memory copy has it fails the write (the copy is then
                // rebuilt from the file) instead of overwriting another task.
                let sql = "UPDATE tasks SET state = ?3, holder = ?4, task = ?5
                           WHERE rowid = ?6 AND repo = ?1 AND number = ?2";
                prepared(conn, &mut statements.update_task, sql)?.execute(&task[..])?
            };
            if !self.effects.is_empty() {
                let sql = "INSERT INTO outbox (repo, number, task, effect) VALUES (?1, ?2, ?3, ?4)";
                let insert = prepared(conn, &mut statements.insert_effect, sql)?;
                for effect in &self.effects {
                    insert.execute((&self.repo, self.number, self.rowid, effect))?;
                }
            }
            if let Some(id) = self.ack {
                let sql = "DELETE FROM outbox WHERE id = ?1";
                prepared(conn, &mut statements.delete_effect, sql)?.execute([id])?;
            }
            Ok(written)
        };
        match stored().map_err(|e| db_error("store a task", e))? {
            1 => Ok(()),
            _ => Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "store: the row of {}#{} is not where the store's memory has it",
                    self.repo, self.number
                ),
            )),
        }
    }
}

/// The statements [`Row::store`] runs, prepared once on the writer's connection
/// and kept for its life: taken from rusqlite's statement cache instead, each
/// cost a hash of its text and two cache updates (some 3,500 instructions per
/// claim+complete cycle).
pub(super) struct Statements<'c> {
    conn: &'c Connection,
    insert_task: Option<Statement<'c>>,
    update_task: Option<Statement<'c>>,
    insert_effect: Option<Statement<'c>>,
    delete_effect: Option<Statement<'c>>,
}

impl<'c> Statements<'c> {
    /// None prepared yet: each is prepared when first run.
    pub(super) fn new(conn: &'c Connection) -> Statements<'c> {
        Statements {
            conn,
            insert_task: None,
            update_task: None,
            insert_effect: None,
            delete_effect: None,
        }
    }
}

/// The statement in `slot`, prepared from `sql` on `conn` if it is not yet.
fn prepared<'s, 'c>(
    conn: &'c Connection,
    slot: &'s mut Option<Statement<'c>>,
    sql: &str,
) -> rusqlite::Result<&'s mut Statement<'c>> {
    match slot {
        Some(statement) => Ok(statement),
        None => Ok(slot.insert(conn.prepare(sql)?)),
    }
}

/// A task as the `task` column stores it: MessagePack, each struct as the array of
/// its fields in declaration order (no field names: half the bytes, and about half
/// the instructions of a write's encoding). The order is therefore part of the
/// file's format: a field added to [`Task`] (or to a struct inside it) goes last,
/// with `#[serde(default)]`, so that rows written before it read back with its
/// default; `tests::a_stored_task_reads_back_by_position` pins the order.
pub(super) fn encode_task(task: &Task) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(256 + task.issue.title.len() + task.issue.body.len());
    rmp_serde::encode::write(&mut bytes, task)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode a task").with_source(e))?;
    Ok(bytes)
}

/// A task read back from the `task` column: MessagePack by position (schema
/// version 5), MessagePack with field names (rows last written under version 4;
/// MessagePack marks a map apart from an array, and serde reads a struct from
/// either), or JSON text (rows last written before version 4).
///
/// A row written before schema version 6 holds the task as releases before named
/// states stored it ([`scrum_core::model::TaskV5`]); opening the file rewrites
/// them ([`super::schema`]), and a row read before that reads as the task it stood
/// for.
pub(super) fn decode_task(value: ValueRef<'_>) -> Result<Task> {
    decode(value, "task", "a task").or_else(|e| match decode(value, "task", "a task") {
        Ok(old) => Ok(Task::from_v5(old)),
        Err(_) => Err(e),
    })
}

/// A stored `what` (`a_what`, with its article) read back: MessagePack from a blob,
/// JSON from text (rows written before MessagePack).
fn decode<T: serde::de::DeserializeOwned>(
    value: ValueRef<'_>,
    what: &str,
    a_what: &str,
) -> Result<T> {
    match value {
        ValueRef::Blob(bytes) => rmp_serde::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("a stored {what} is unreadable (written by a newer version?)"),
            )
            .with_source(e)
        }),
        ValueRef::Text(text) => from_json(&String::from_utf8_lossy(text), what),
        _ => Err(Error::new(
            ErrorKind::Corrupt,
            format!("a stored {what} is not {a_what}"),
        )),
    }
}

/// Writes every task row again in this build's form: what opening a file of an
/// older schema version does, so that no row needs the old form's decoding after.
pub(super) fn rewrite_tasks(conn: &Connection) -> Result<()> {
    let doing = "rewrite the tasks in the new form";
    let rows = query_rows(conn, "SELECT rowid, task FROM tasks", [], doing, |r| {
        Ok(decode_task(r.get_ref(1)?).map(|t| (r.get::<_, i64>(0), t)))
    })?;
    let mut update = conn
        .prepare("UPDATE tasks SET task = ?1 WHERE rowid = ?2")
        .map_err(|e| db_error(doing, e))?;
    for (rowid, task) in rows {
        let rowid = rowid.map_err(|e| db_error(doing, e))?;
        update
            .execute(rusqlite::params![encode_task(&task)?, rowid])
            .map_err(|e| db_error(doing, e))?;
    }
    Ok(())
}

/// An effect as the `effect` column of the outbox stores it (from schema version
/// 5): MessagePack with field names, which encodes several times faster than JSON
/// and, by name, leaves the effect kinds free to change as JSON did.
fn encode_effect(effect: &Effect) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(128);
    rmp_serde::encode::write_named(&mut bytes, effect)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode an effect").with_source(e))?;
    Ok(bytes)
}

/// An effect read back from the `effect` column: MessagePack, or JSON text in rows
/// written before schema version 5.
fn decode_effect(value: ValueRef<'_>) -> Result<Effect> {
    decode(value, "effect", "an effect")
}

/// What `read` makes of each row `sql` returns.
fn query_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    doing: &str,
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T>>,
) -> Result<Vec<T>> {
    let mut found = Vec::new();
    let run = || -> rusqlite::Result<Result<()>> {
        let mut statement = conn.prepare_cached(sql)?;
        let mut rows = statement.query(params)?;
        while let Some(row) = rows.next()? {
            match read(row)? {
                Ok(item) => found.push(item),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(()))
    };
    run().map_err(|e| db_error(doing, e))??;
    Ok(found)
}

/// The tasks in the first column of each row `sql` returns.
fn query_tasks(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    doing: &str,
) -> Result<Vec<Task>> {
    query_rows(conn, sql, params, doing, |r| Ok(decode_task(r.get_ref(0)?)))
}

/// The rowid and the task in the first two columns of each row `sql` returns.
fn query_stored(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    doing: &str,
) -> Result<Vec<Stored>> {
    query_rows(conn, sql, params, doing, |r| {
        let row = r.get(0)?;
        Ok(decode_task(r.get_ref(1)?).map(|task| Stored::new(row, task)))
    })
}

/// The live tasks as the file has them.
pub(super) fn read_live(conn: &Connection) -> Result<Vec<Stored>> {
    query_stored(
        conn,
        "SELECT rowid, task FROM tasks WHERE state IN ('pending', 'in_progress')",
        (),
        "read the live tasks",
    )
}

/// The ids of the tasks that are not live (terminal), as the file has them.
pub(super) fn read_retired(conn: &Connection) -> Result<Vec<TaskId>> {
    let sql = "SELECT repo, number FROM tasks WHERE state NOT IN ('pending', 'in_progress')";
    query_rows(conn, sql, (), "read the task ids", |r| {
        let number = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
        Ok(TaskId::new(&r.get::<_, String>(0)?, number))
    })
}

/// The largest rowid of the tasks table (0 when empty): new tasks take the next ones.
pub(super) fn last_row(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(rowid), 0) FROM tasks", [], |r| {
        r.get(0)
    })
    .map_err(|e| db_error("read the last task row", e))
}

/// A limit as SQLite takes it: -1 for none.
fn limit_column(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

/// The task `repo#number` and its row, if the file has it.
pub(super) fn read_task(conn: &Connection, repo: &str, number: i64) -> Result<Option<Stored>> {
    let sql = "SELECT rowid, task FROM tasks WHERE repo = ?1 AND number = ?2";
    Ok(query_stored(conn, sql, (repo, number), "read a task")?.pop())
}

/// The tasks that pass `filter`, ordered by id.
pub(super) fn list_tasks(conn: &Connection, filter: &TaskFilter) -> Result<Vec<Task>> {
    let states: String = filter
        .states
        .iter()
        .map(|s| format!(",{},", s.as_str()))
        .collect();
    let holder = filter.worker.as_ref().map(|w| w.as_str().to_string());
    let limit = limit_column(filter.limit);
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    query_tasks(
        conn,
        "SELECT task FROM tasks
         WHERE (?1 = '' OR instr(?1, ',' || state || ',') > 0)
           AND (?2 IS NULL OR holder = ?2)
         ORDER BY repo, number LIMIT ?3 OFFSET ?4",
        (states, holder, limit, offset),
        "list tasks",
    )
}

/// How many tasks are in each state.
pub(super) fn count_tasks(conn: &Connection) -> Result<QueueCounts> {
    let read = || -> rusqlite::Result<Vec<(String, i64)>> {
        conn.prepare_cached("SELECT state, count(*) FROM tasks GROUP BY state")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    let mut counts = QueueCounts::default();
    for (state, n) in read().map_err(|e| db_error("count tasks", e))? {
        logic::set_count(&mut counts, state.parse::<TaskState>()?, n);
    }
    Ok(counts)
}

/// Which effects [`read_outbox`] reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum OutboxRead {
    /// Every effect.
    All,
    /// Effects that failed at least once.
    Failing,
    /// Effects due at this time (see `WorkQueue::due_effects`).
    Due(i64),
}

/// An outbox row as read.
type RawEffect = (i64, Result<Effect>, i64, i64, bool, bool, Option<String>);

/// Up to `limit` effects of the outbox, oldest first.
pub(super) fn read_outbox(
    conn: &Connection,
    which: OutboxRead,
    limit: usize,
) -> Result<Vec<OutboxEntry>> {
    const SELECT: &str =
        "SELECT id, effect, failures, next_attempt_at, dead, refused, last_error FROM outbox o";
    let limit = limit_column(Some(limit));
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<RawEffect> {
        Ok((
            r.get(0)?,
            decode_effect(r.get_ref(1)?),
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    };
    let read = || -> rusqlite::Result<Vec<RawEffect>> {
        match which {
            OutboxRead::All => conn
                .prepare_cached(&format!("{SELECT} ORDER BY id LIMIT ?1"))?
                .query_map([limit], row)?
                .collect(),
            OutboxRead::Failing => conn
                .prepare_cached(&format!("{SELECT} WHERE failures > 0 ORDER BY id LIMIT ?1"))?
                .query_map([limit], row)?
                .collect(),
            // Due, and no earlier effect of the same task still waiting.
            OutboxRead::Due(now) => conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE dead = 0 AND next_attempt_at <= ?2 AND NOT EXISTS (
                        SELECT 1 FROM outbox p WHERE p.task = o.task AND p.id < o.id AND (p.dead = 1 OR p.next_attempt_at > ?2))
                    ORDER BY id LIMIT ?1"
                ))?
                .query_map([limit, now], row)?
                .collect(),
        }
    };
    read()
        .map_err(|e| db_error("read the outbox", e))?
        .into_iter()
        .map(|(id, effect, failures, next, dead, refused, last_error)| {
            Ok(OutboxEntry {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                next_attempt_at: scrum_core::Timestamp(next),
                dead,
                refused,
                last_error,
                ..OutboxEntry::new(u64::try_from(id).unwrap_or(0), effect?)
            })
        })
        .collect()
}

/// Records a failed attempt of effect `id`.
pub(super) fn record_failure(conn: &Connection, id: i64, f: &EffectFailure) -> Result<()> {
    let retry_at = f.retry_at.map(|t| t.0);
    conn.prepare_cached(
        "UPDATE outbox SET failures = failures + 1, last_error = ?2, refused = ?3,
                dead = CASE WHEN ?4 IS NULL THEN 1 ELSE 0 END,
                next_attempt_at = COALESCE(?4, next_attempt_at)
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute((id, &f.error, f.refused, retry_at)))
    .map(drop)
    .map_err(|e| db_error("record a failed effect", e))
}

/// Makes the dead effects `which` names due at `now`; returns how many.
pub(super) fn revive(conn: &Connection, which: &EffectSelector, now: i64) -> Result<usize> {
    const SET: &str = "UPDATE outbox SET dead = 0, failures = 0, refused = 0, last_error = NULL,
                       next_attempt_at = ?1 WHERE dead = 1";
    let changed = match which {
        EffectSelector::All => conn.prepare_cached(SET).and_then(|mut s| s.execute([now])),
        EffectSelector::Repo(repo) => conn
            .prepare_cached(&format!("{SET} AND repo = ?2"))
            .and_then(|mut s| s.execute((now, repo))),
        EffectSelector::Id(id) => conn
            .prepare_cached(&format!("{SET} AND id = ?2"))
            .and_then(|mut s| s.execute((now, i64::try_from(*id).unwrap_or(-1)))),
    };
    changed.map_err(|e| db_error("revive effects", e))
}

/// The effect `id` of the outbox, if it is still there.
pub(super) fn read_effect(conn: &Connection, id: i64) -> Result<Option<Effect>> {
    conn.prepare_cached("SELECT effect FROM outbox WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| Ok(decode_effect(r.get_ref(0)?)))
                .optional()
        })
        .map_err(|e| db_error("acknowledge an effect", e))?
        .transpose()
}

/// Runs `sql`, an outbox change, on the effect `id`.
pub(super) fn change_effect(conn: &Connection, sql: &str, id: i64, doing: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([id]))
        .map(drop)
        .map_err(|e| db_error(doing, e))
}
