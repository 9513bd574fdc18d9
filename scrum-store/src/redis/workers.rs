//! The Redis store's worker registry, shared by every orchestrator on the prefix:
//! a hash per worker (`{prefix}:worker:ID`: `address`, `first_seen`, `last_seen`,
//! `completed`, `failed`, `draining`, `sandbox`), a sorted set of the worker ids scored by
//! last seen (`+inf` for a worker drained before it ever called), which forgetting
//! walks, and a hash of host to its latest probe report as JSON.
//!
//! A worker's call or report is one script call, atomic as Redis runs scripts.
//! The keys need no migration: a store written by an earlier build simply has no
//! workers yet, and a worker hash written before workers said their sandbox has
//! no `sandbox` field (read as none said).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use scrum_core::{
    AgentSandbox, Error, ErrorKind, HostReport, Result, Timestamp, WorkerId, WorkerRecord,
    WorkerRegistry,
};

use super::RedisQueue;
use super::ops::redis_error;
use crate::logic::{from_json, to_json};
use crate::registry;

/// Marks a call and optionally counts a report, and returns the worker's hash.
///
/// KEYS: 1 the worker's hash, 2 the workers set. ARGV: 1 id, 2 now, 3 address (or
/// empty: keep it), 4 the count to add one to (`completed`, `failed`, or empty).
static SEEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local h = KEYS[1]
redis.call('HSETNX', h, 'first_seen', ARGV[2])
local last = redis.call('HGET', h, 'last_seen')
if (not last) or tonumber(last) < tonumber(ARGV[2]) then
  redis.call('HSET', h, 'last_seen', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('HSET', h, 'address', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HINCRBY', h, ARGV[4], 1) end
return redis.call('HGETALL', h)
"#,
    )
});

/// Drops the workers named whose score is still below the cutoff (a worker seen
/// since the caller looked is kept). KEYS: 1 the workers set. ARGV: 1 cutoff,
/// 2 the worker hash key prefix, 3.. ids. Returns how many it dropped.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for i = 3, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) < tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('DEL', ARGV[2] .. ARGV[i])
    n = n + 1
  end
end
return n
"#,
    )
});

/// A record from the worker's hash (`None` when it is gone).
fn record(id: &str, fields: &HashMap<String, String>) -> Result<Option<WorkerRecord>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let number = |name: &str| -> Result<Option<i64>> {
        fields
            .get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!("worker {id:?} has an unreadable {name} {v:?}"),
                    )
                })
            })
            .transpose()
    };
    Ok(Some(WorkerRecord {
        id: registry::worker_id(id)?,
        address: registry::address(fields.get("address").map(String::as_str))?,
        first_seen: registry::time(number("first_seen")?),
        last_seen: registry::time(number("last_seen")?),
        completed: registry::count(number("completed")?.unwrap_or(0)),
        failed: registry::count(number("failed")?.unwrap_or(0)),
        draining: fields.get("draining").is_some_and(|v| v == "1"),
        sandbox: registry::sandbox(fields.get("sandbox").map(String::as_str)),
    }))
}

impl RedisQueue {
    /// Sets one field of `worker`'s hash, listing the worker (never seen) if it
    /// was not: what an operator's drain and a worker's sandbox write.
    async fn set_field(
        &self,
        worker: &WorkerId,
        field: &str,
        value: &str,
        what: &str,
    ) -> Result<()> {
        let k = &self.keys;
        let mut con = self.con.clone();
        let _: () = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(k.worker(worker.as_str()))
            .arg(field)
            .arg(value)
            .ignore()
            .cmd("ZADD")
            .arg(&k.workers)
            .arg("NX")
            .arg("+inf")
            .arg(worker.as_str())
            .ignore()
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error(what, e))?;
        Ok(())
    }

    async fn seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
        count: &str,
    ) -> Result<WorkerRecord> {
        let k = &self.keys;
        let mut con = self.con.clone();
        let fields: HashMap<String, String> = SEEN
            .key(k.worker(worker.as_str()))
            .key(&k.workers)
            .arg(worker.as_str())
            .arg(now.0)
            .arg(address.map(|a| a.to_string()).unwrap_or_default())
            .arg(count)
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("record a worker's call", e))?;
        record(worker.as_str(), &fields)?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "store: a worker's record vanished"))
    }

    /// The workers holding an in-progress task.
    async fn holders(&self) -> Result<HashSet<WorkerId>> {
        let k = &self.keys;
        let members = self
            .members(k.state(scrum_core::TaskState::InProgress), 0, -1)
            .await?;
        let tasks = self.tasks(&members).await?;
        Ok(tasks.iter().filter_map(|t| t.holder().cloned()).collect())
    }
}

#[async_trait]
impl WorkerRegistry for RedisQueue {
    async fn worker_seen(
        &self,
        worker: &WorkerId,
        address: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<WorkerRecord> {
        self.seen(worker, address, now, "").await
    }

    async fn worker_finished(
        &self,
        worker: &WorkerId,
        success: bool,
        now: Timestamp,
    ) -> Result<()> {
        let count = if success { "completed" } else { "failed" };
        self.seen(worker, None, now, count).await.map(drop)
    }

    async fn set_draining(&self, worker: &WorkerId, draining: bool) -> Result<()> {
        let value = if draining { "1" } else { "0" };
        self.set_field(worker, "draining", value, "drain a worker")
            .await
    }

    async fn set_sandbox(&self, worker: &WorkerId, sandbox: AgentSandbox) -> Result<()> {
        self.set_field(
            worker,
            "sandbox",
            sandbox.as_str(),
            "record a worker's sandbox",
        )
        .await
    }

    async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        let k = &self.keys;
        let mut ids = self.members(&k.workers, 0, -1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ids.sort_unstable();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(k.worker(id));
        }
        let mut con = self.con.clone();
        let hashes: Vec<HashMap<String, String>> = pipe
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("list workers", e))?;
        let mut records = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(&hashes) {
            // Forgotten between the two reads.
            if let Some(r) = record(id, fields)? {
                records.push(r);
            }
        }
        Ok(records)
    }

    async fn forget_workers(&self, unseen_before: Timestamp) -> Result<u64> {
        let k = &self.keys;
        let mut con = self.con.clone();
        let unseen: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&k.workers)
            .arg("-inf")
            .arg(format!("({}", unseen_before.0))
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("find unseen workers", e))?;
        if unseen.is_empty() {
            return Ok(0);
        }
        // A worker that claims after this read called first: its score is then
        // past the cutoff, and the script keeps it.
        let holders = self.holders().await?;
        let idle: Vec<&String> = unseen
            .iter()
            .filter(|id| !holders.iter().any(|h| h.as_str() == id.as_str()))
            .collect();
        if idle.is_empty() {
            return Ok(0);
        }
        let mut call = FORGET.prepare_invoke();
        call.key(&k.workers)
            .arg(unseen_before.0)
            .arg(&k.worker_prefix);
        for id in idle {
            call.arg(id);
        }
        let dropped: u64 = call
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("forget workers", e))?;
        Ok(dropped)
    }

    async fn record_probe(&self, report: HostReport) -> Result<()> {
        let mut con = self.con.clone();
        let _: () = redis::cmd("HSET")
            .arg(&self.keys.probes)
            .arg(&report.host)
            .arg(to_json(&report)?)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("store a probe report", e))?;
        Ok(())
    }

    async fn probes(&self) -> Result<Vec<HostReport>> {
        let mut con = self.con.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.keys.probes)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read probe reports", e))?;
        let mut reports = all
            .values()
            .map(|json| from_json::<HostReport>(json, "probe report"))
            .collect::<Result<Vec<_>>>()?;
        reports.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(reports)
    }
}
