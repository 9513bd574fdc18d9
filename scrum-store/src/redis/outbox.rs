//! The outbox on Redis: effects in a hash by id, their order in a sorted set, and
//! the state of those that failed (count, next attempt, set aside, last error) as
//! JSON in a third hash. An effect with no state entry is due and never failed.

use scrum_core::{
    EffectFailure, EffectSelector, Error, ErrorKind, OutboxEntry, Result, Timestamp, backend,
};
use serde::{Deserialize, Serialize};

use super::{RedisQueue, redis_error, scripts};
use crate::logic::{from_json, to_json};

/// How many outbox ids one read takes.
const PAGE: usize = 500;

/// A failed effect's state, as stored. Builds before this file stored the bare
/// failure count, which still reads.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Failed {
    failures: u32,
    next_attempt_at: i64,
    dead: bool,
    refused: bool,
    last_error: Option<String>,
}

impl Failed {
    fn parse(text: &str) -> Result<Failed> {
        match text.parse::<u32>() {
            Ok(failures) => Ok(Failed {
                failures,
                ..Failed::default()
            }),
            Err(_) => from_json(text, "outbox state"),
        }
    }

    fn apply(self, entry: &mut OutboxEntry) {
        entry.failures = self.failures;
        entry.next_attempt_at = Timestamp(self.next_attempt_at);
        entry.dead = self.dead;
        entry.refused = self.refused;
        entry.last_error = self.last_error;
    }
}

impl RedisQueue {
    /// The entries of `ids`, in that order (ids acknowledged meanwhile are skipped).
    pub(super) async fn entries(&self, ids: &[String]) -> Result<Vec<OutboxEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.keys;
        let mut con = self.con.clone();
        let (effects, states): (Vec<Option<String>>, Vec<Option<String>>) = redis::pipe()
            .cmd("HMGET")
            .arg(&k.outbox)
            .arg(ids)
            .cmd("HMGET")
            .arg(&k.outbox_failures)
            .arg(ids)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read the outbox", e))?;
        let mut entries = Vec::with_capacity(ids.len());
        for ((id, effect), state) in ids.iter().zip(effects).zip(states) {
            // Acknowledged between the two reads.
            let Some(effect) = effect else { continue };
            let id = id
                .parse()
                .map_err(|_| Error::new(ErrorKind::Corrupt, format!("bad outbox id {id:?}")))?;
            let mut entry = OutboxEntry::new(id, from_json(&effect, "effect")?);
            if let Some(state) = state {
                Failed::parse(&state)?.apply(&mut entry);
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Up to `count` effects from position `start` of the outbox order.
    pub(super) async fn outbox_page(&self, start: usize, count: usize) -> Result<Vec<OutboxEntry>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let from = isize::try_from(start).unwrap_or(isize::MAX);
        let to = super::ops::stop_index(start, Some(count));
        let ids = self.members(&self.keys.outbox_ids, from, to).await?;
        self.entries(&ids).await
    }

    /// See `WorkQueue::due_effects`: reads the outbox in order, a page at a time,
    /// until `limit` are due or the outbox ends.
    pub(super) async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut read = Vec::new();
        loop {
            let page = self.outbox_page(read.len(), PAGE).await?;
            let last = page.len() < PAGE;
            read.extend(page);
            let due = backend::due_effects(&read, now, limit);
            if last || due.len() >= limit {
                return Ok(due);
            }
        }
    }

    /// See `WorkQueue::failing_effects`.
    pub(super) async fn failing(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut con = self.con.clone();
        let ids: Vec<String> = redis::cmd("HKEYS")
            .arg(&self.keys.outbox_failures)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("read the outbox", e))?;
        let mut ids: Vec<u64> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        ids.sort_unstable();
        ids.truncate(limit);
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let mut entries = self.entries(&ids).await?;
        entries.retain(|e| e.failures > 0);
        Ok(entries)
    }

    /// See `WorkQueue::nack_effect`. Only the leader records failures, so reading
    /// the old count before writing the new state races with no one.
    pub(super) async fn record_failure(&self, id: u64, failure: &EffectFailure) -> Result<()> {
        let Some(mut entry) = self.entries(&[id.to_string()]).await?.pop() else {
            return Ok(());
        };
        entry.record(failure);
        let state = Failed {
            failures: entry.failures,
            next_attempt_at: entry.next_attempt_at.0,
            dead: entry.dead,
            refused: entry.refused,
            last_error: entry.last_error,
        };
        let mut con = self.con.clone();
        let _: i64 = scripts::NACK
            .key(&self.keys.outbox)
            .key(&self.keys.outbox_failures)
            .arg(id)
            .arg(to_json(&state)?)
            .invoke_async(&mut con)
            .await
            .map_err(|e| redis_error("record a failed effect", e))?;
        Ok(())
    }

    /// See `WorkQueue::revive_effects`: a revived effect is one without a state
    /// entry, due at once.
    pub(super) async fn revive(&self, which: &EffectSelector) -> Result<usize> {
        let dead: Vec<u64> = self
            .failing(usize::MAX)
            .await?
            .into_iter()
            .filter(|e| which.selects(e))
            .map(|e| e.id)
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        let mut con = self.con.clone();
        let _: i64 = redis::cmd("HDEL")
            .arg(&self.keys.outbox_failures)
            .arg(&dead)
            .query_async(&mut con)
            .await
            .map_err(|e| redis_error("revive effects", e))?;
        Ok(dead.len())
    }
}
