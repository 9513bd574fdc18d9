//! The SQLite store's worker registry: the `workers` and `probes` tables
//! (migration 3 of `schema`; the workers' `sandbox` column, migration 7).
//!
//! Writes go through the connection thread like task writes, so a worker's call
//! commits in the same transaction as the claims and reports that arrive with it
//! (group commit), and a call returns once its write committed. Reads run after
//! every write sent before them.

use std::net::IpAddr;

use async_trait::async_trait;
use rusqlite::{Connection, Row};
use tokio::sync::oneshot;

use scrum_core::{
    AgentSandbox, Error, HostReport, Result, Sighting, Timestamp, WorkerId, WorkerRecord,
    WorkerRegistry,
};

use super::SqliteQueue;
use super::schema::db_error;
use crate::registry;

/// The columns a record is read from, in [`stored`]'s order.
const RECORD: &str = "id, address, first_seen, last_seen, completed, failed, draining, sandbox";

/// Marks a call at `?2` from `?3` (kept when NULL) and adds `?4` completions and
/// `?5` failures: the one upsert behind `worker_seen` (which adds [`RETURNING`])
/// and `worker_finished`.
const SEEN: &str = "INSERT INTO workers (id, first_seen, last_seen, address, completed, failed)
     VALUES (?1, ?2, ?2, ?3, ?4, ?5)
     ON CONFLICT (id) DO UPDATE SET
         first_seen = coalesce(workers.first_seen, excluded.first_seen),
         last_seen = max(coalesce(workers.last_seen, excluded.last_seen), excluded.last_seen),
         address = coalesce(excluded.address, workers.address),
         completed = workers.completed + excluded.completed,
         failed = workers.failed + excluded.failed";

/// What [`SEEN`] returns for `worker_seen`: the columns of [`RECORD`], in that order.
const RETURNING: &str =
    " RETURNING id, address, first_seen, last_seen, completed, failed, draining, sandbox";

/// A worker's row as read, before its columns are checked.
struct Stored {
    id: String,
    address: Option<String>,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    completed: i64,
    failed: i64,
    draining: bool,
    sandbox: Option<String>,
}

/// Reads a row of the columns [`RECORD`] names, in that order.
fn stored(row: &Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        id: row.get(0)?,
        address: row.get(1)?,
        first_seen: row.get(2)?,
        last_seen: row.get(3)?,
        completed: row.get(4)?,
        failed: row.get(5)?,
        draining: row.get(6)?,
        sandbox: row.get(7)?,
    })
}

impl Stored {
    fn record(self) -> Result<WorkerRecord> {
        Ok(WorkerRecord {
            id: registry::worker_id(&self.id)?,
            address: registry::address(self.address.as_deref())?,
            first_seen: registry::time(self.first_seen),
            last_seen: registry::time(self.last_seen),
            completed: registry::count(self.completed),
            failed: registry::count(self.failed),
            draining: self.draining,
            sandbox: registry::sandbox(self.sandbox.as_deref()),
        })
    }
}

impl SqliteQueue {
    /// Runs `run` as a write in the connection thread's next transaction and returns
    /// what it produced, once that transaction committed.
    async fn write_returning<R: Send + 'static>(
        &self,
        run: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        let write = self.writer.write(self.writer.generation(), move |conn| {
            let _ = tx.send(run(conn)?);
            Ok(())
        });
        write.committed().await?;
        rx.await
            .map_err(|_| Error::unavailable("store: the SQLite thread stopped"))
    }
}

#[async_trait]
impl WorkerRegistry for SqliteQueue {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord> {
        let id = worker.as_str().to_string();
        let address = address.map(|a| a.to_string());
        let row = self
            .write_returning(move |conn| {
                conn.prepare_cached(&format!("{SEEN}{RETURNING}"))
                    .and_then(|mut s| s.query_row((id, now.0, address, 0, 0), stored))
                    .map_err(|e| db_error("record a worker's call", e))
            })
            .await?;
        row.record()
    }

    async fn workers_seen(&self, seen: &[Sighting]) -> Result<Vec<WorkerRecord>> {
        let rows: Vec<_> = seen
            .iter()
            .map(|s| {
                let address = s.address.map(|a| a.to_string());
                (s.worker.as_str().to_string(), s.at.0, address)
            })
            .collect();
        // One write: the whole batch commits in one transaction.
        let stored = self
            .write_returning(move |conn| {
                let mut upsert = conn
                    .prepare_cached(&format!("{SEEN}{RETURNING}"))
                    .map_err(|e| db_error("record the workers' calls", e))?;
                rows.into_iter()
                    .map(|(id, at, address)| {
                        upsert
                            .query_row((id, at, address, 0, 0), stored)
                            .map_err(|e| db_error("record the workers' calls", e))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        stored.into_iter().map(Stored::record).collect()
    }

    async fn worker_finished(
        &self,
        worker: &WorkerId,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        let id = worker.as_str().to_string();
        let counts = if success { [1, 0] } else { [0, 1] };
        // Sent, not waited for: it commits with the next transaction. The engine
        // counts a report after answering it, so nobody waits for this anyway.
        let _ = self.writer.write(self.writer.generation(), move |conn| {
            conn.prepare_cached(SEEN)
                .and_then(|mut s| s.execute((id, now.0, None::<String>, counts[0], counts[1])))
                .map(drop)
                .map_err(|e| db_error("count a worker's report", e))
        });
        Ok(())
    }

    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()> {
        let id = worker.as_str().to_string();
        self.write_returning(move |conn| {
            conn.prepare_cached(
                "INSERT INTO workers (id, draining) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET draining = excluded.draining",
            )
            .and_then(|mut s| s.execute((id, draining)))
            .map(drop)
            .map_err(|e| db_error("drain a worker", e))
        })
        .await
    }

    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        let id = worker.as_str().to_string();
        self.write_returning(move |conn| {
            conn.prepare_cached(
                "INSERT INTO workers (id, sandbox) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET sandbox = excluded.sandbox",
            )
            .and_then(|mut s| s.execute((id, sandbox.as_str())))
            .map(drop)
            .map_err(|e| db_error("record a worker's sandbox", e))
        })
        .await
    }

    async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        let rows = self
            .writer
            .read(|conn| {
                let sql = format!("SELECT {RECORD} FROM workers ORDER BY id");
                let read = || -> rusqlite::Result<Vec<_>> {
                    conn.prepare_cached(&sql)?.query_map([], stored)?.collect()
                };
                read().map_err(|e| db_error("list workers", e))
            })
            .await?;
        rows.into_iter().map(Stored::record).collect()
    }

    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64> {
        // Who holds a task, from the memory copy (the tasks table has no index to
        // find them by). The copy is taken under its lock, so a claim after it
        // also marked its worker seen after `unseen_before`.
        let holders = {
            let memory = self.memory(unseen_before).await?;
            crate::logic::to_json(&memory.live.holders())?
        };
        self.write_returning(move |conn| {
            conn.prepare_cached(
                "DELETE FROM workers WHERE last_seen < ?1
                     AND id NOT IN (SELECT value FROM json_each(?2))",
            )
            .and_then(|mut s| s.execute((unseen_before.0, holders)))
            .map(|n| n as u64)
            .map_err(|e| db_error("forget workers", e))
        })
        .await
    }

    async fn record_probe(&self, report: HostReport) -> Result<()> {
        self.write_returning(move |conn| {
            conn.prepare_cached(
                "INSERT INTO probes (host, health, reason, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host) DO UPDATE SET health = excluded.health,
                     reason = excluded.reason, at = excluded.at",
            )
            .and_then(|mut s| {
                s.execute((
                    &report.host,
                    report.health.as_str(),
                    &report.reason,
                    report.at.0,
                ))
            })
            .map(drop)
            .map_err(|e| db_error("store a probe report", e))
        })
        .await
    }

    async fn probes(&self) -> Result<Vec<HostReport>> {
        let rows = self
            .writer
            .read(|conn| {
                let read = || -> rusqlite::Result<Vec<(String, String, Option<String>, i64)>> {
                    conn.prepare_cached(
                        "SELECT host, health, reason, at FROM probes ORDER BY host",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
                };
                read().map_err(|e| db_error("read probe reports", e))
            })
            .await?;
        rows.into_iter()
            .map(|(host, health, reason, at)| {
                Ok(HostReport {
                    host,
                    health: registry::health(&health)?,
                    reason,
                    at: Timestamp(at),
                })
            })
            .collect()
    }
}
