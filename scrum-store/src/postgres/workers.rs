//! The PostgreSQL store's worker registry: the `workers` and `probes` tables
//! (migration 3 of `schema`; the workers' `sandbox` column, migration 6), shared
//! by every orchestrator on the schema.
//!
//! A worker's call or report is one upsert that commits without waiting for the
//! WAL flush (`synchronous_commit` off for that statement's transaction only): a
//! crash of the PostgreSQL server may lose the last moments of last-seen times and
//! counts, never a task, and the registry costs a worker's call one round trip.

use std::net::IpAddr;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use scrum_core::{
    AgentSandbox, HostReport, Result, Sighting, Timestamp, WorkerId, WorkerRecord, WorkerRegistry,
};

use super::PostgresQueue;
use crate::registry;
use crate::sql::db_error;

/// Marks a call at `$2` from `$3` (kept when NULL) and adds `$4` completions and `$5`
/// failures: the one upsert behind `worker_seen` and `worker_finished`.
const SEEN: &str = "INSERT INTO workers (id, first_seen, last_seen, address, completed, failed)
     VALUES ($1, $2, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET
         first_seen = coalesce(workers.first_seen, EXCLUDED.first_seen),
         last_seen = greatest(workers.last_seen, EXCLUDED.last_seen),
         address = coalesce(EXCLUDED.address, workers.address),
         completed = workers.completed + EXCLUDED.completed,
         failed = workers.failed + EXCLUDED.failed
     RETURNING id, address, first_seen, last_seen, completed, failed, draining, sandbox,
               set_config('synchronous_commit', 'off', true)";

/// [`SEEN`] for a batch of calls: `$1` ids, `$2` times, `$3` addresses (one
/// element per worker, each worker once).
const SEEN_MANY: &str =
    "INSERT INTO workers (id, first_seen, last_seen, address, completed, failed)
     SELECT id, at, at, address, 0, 0
     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS seen (id, at, address)
     ON CONFLICT (id) DO UPDATE SET
         first_seen = coalesce(workers.first_seen, EXCLUDED.first_seen),
         last_seen = greatest(workers.last_seen, EXCLUDED.last_seen),
         address = coalesce(EXCLUDED.address, workers.address)
     RETURNING id, address, first_seen, last_seen, completed, failed, draining, sandbox,
               set_config('synchronous_commit', 'off', true)";

/// A record from a row of `id, address, first_seen, last_seen, completed, failed,
/// draining, sandbox`.
fn record(row: &PgRow) -> Result<WorkerRecord> {
    Ok(WorkerRecord {
        id: registry::worker_id(row.get::<&str, _>(0))?,
        address: registry::address(row.get::<Option<&str>, _>(1))?,
        first_seen: registry::time(row.get(2)),
        last_seen: registry::time(row.get(3)),
        completed: registry::count(row.get(4)),
        failed: registry::count(row.get(5)),
        draining: row.get(6),
        sandbox: registry::sandbox(row.get::<Option<&str>, _>(7)),
    })
}

impl PostgresQueue {
    async fn seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
        counts: [i64; 2],
    ) -> Result<WorkerRecord> {
        let row = sqlx::query(SEEN)
            .bind(worker.as_str())
            .bind(now.0)
            .bind(address.map(|a| a.to_string()))
            .bind(counts[0])
            .bind(counts[1])
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error("record a worker's call", e))?;
        record(&row)
    }
}

#[async_trait]
impl WorkerRegistry for PostgresQueue {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord> {
        self.seen(worker, address, now, [0, 0]).await
    }

    async fn workers_seen(&self, seen: &[Sighting]) -> Result<Vec<WorkerRecord>> {
        let mut once = std::collections::HashSet::new();
        if !seen.iter().all(|s| once.insert(&s.worker)) {
            // One statement may not upsert a row twice: one call at a time.
            let mut records = Vec::with_capacity(seen.len());
            for s in seen {
                records.push(self.worker_seen(&s.worker, s.address, s.at).await?);
            }
            return Ok(records);
        }
        let ids: Vec<&str> = seen.iter().map(|s| s.worker.as_str()).collect();
        let times: Vec<i64> = seen.iter().map(|s| s.at.0).collect();
        let addresses: Vec<Option<String>> = seen
            .iter()
            .map(|s| s.address.map(|a| a.to_string()))
            .collect();
        let rows = sqlx::query(SEEN_MANY)
            .bind(ids)
            .bind(times)
            .bind(addresses)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("record the workers' calls", e))?;
        rows.iter().map(record).collect()
    }

    async fn worker_finished(
        &self,
        worker: &WorkerId,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        let counts = if success { [1, 0] } else { [0, 1] };
        self.seen(worker, None, now, counts).await.map(drop)
    }

    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, draining) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET draining = EXCLUDED.draining",
        )
        .bind(worker.as_str())
        .bind(draining)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("drain a worker", e))?;
        Ok(())
    }

    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, sandbox) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET sandbox = EXCLUDED.sandbox",
        )
        .bind(worker.as_str())
        .bind(sandbox.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("record a worker's sandbox", e))?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(
            "SELECT id, address, first_seen, last_seen, completed, failed, draining, sandbox
             FROM workers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error("list workers", e))?;
        rows.iter().map(record).collect()
    }

    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM workers WHERE last_seen < $1 AND NOT EXISTS (
                 SELECT 1 FROM tasks WHERE state = 'in_progress' AND holder = workers.id)",
        )
        .bind(unseen_before.0)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("forget workers", e))?;
        Ok(done.rows_affected())
    }

    async fn record_probe(&self, report: HostReport) -> Result<()> {
        sqlx::query(
            "INSERT INTO probes (host, health, reason, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (host) DO UPDATE SET health = EXCLUDED.health,
                 reason = EXCLUDED.reason, at = EXCLUDED.at",
        )
        .bind(&report.host)
        .bind(report.health.as_str())
        .bind(&report.reason)
        .bind(report.at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error("store a probe report", e))?;
        Ok(())
    }

    async fn probes(&self) -> Result<Vec<HostReport>> {
        let rows = sqlx::query("SELECT host, health, reason, at FROM probes ORDER BY host")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("read probe reports", e))?;
        rows.iter()
            .map(|r| {
                Ok(HostReport {
                    host: r.get(0),
                    health: registry::health(r.get::<&str, _>(1))?,
                    reason: r.get(2),
                    at: Timestamp(r.get(3)),
                })
            })
            .collect()
    }
}
