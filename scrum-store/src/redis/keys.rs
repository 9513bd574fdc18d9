//! The keys one queue uses, all under one prefix in a `{hash tag}` so that a Redis
//! Cluster keeps them in one slot (scripts touch several at once).

use scrum_core::{Error, Result, TaskId, TaskState};

/// The key names of one queue.
#[derive(Debug)]
pub(super) struct Keys {
    /// `{prefix}:task:` + member: a hash of `v` (version) and `json`.
    pub(super) task_prefix: String,
    pub(super) all: String,
    pub(super) ready: String,
    pub(super) delayed: String,
    pub(super) leases: String,
    pub(super) claiming: String,
    pub(super) rank: String,
    pub(super) outbox: String,
    pub(super) outbox_ids: String,
    pub(super) outbox_seq: String,
    pub(super) outbox_failures: String,
    /// Member to lock keys (newline-separated), for live tasks that declare paths.
    pub(super) lock_keys: String,
    /// Member to `lease expiry` newline `lock keys`, for in-progress tasks that
    /// declare paths: the locks held.
    pub(super) locked: String,
    /// Counts the changes of `locked`: a claim of a task with lock keys is stored
    /// only while the count is the one its decision read.
    pub(super) locks_seq: String,
    /// One sorted set per state, in `TaskState::ALL` order.
    pub(super) states: [String; TaskState::ALL.len()],
    pub(super) leader: String,
    pub(super) schema: String,
    /// `{prefix}:worker:` + worker id: a hash of one worker's record (`workers.rs`).
    pub(super) worker_prefix: String,
    /// The worker ids, scored by last seen (`+inf`: never seen).
    pub(super) workers: String,
    /// Host to its latest probe report (JSON).
    pub(super) probes: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Keys {
        let k = |name: &str| format!("{{{prefix}}}:{name}");
        Keys {
            task_prefix: k("task:"),
            all: k("all"),
            ready: k("ready"),
            delayed: k("delayed"),
            leases: k("leases"),
            claiming: k("claiming"),
            rank: k("rank"),
            outbox: k("outbox"),
            outbox_ids: k("outbox:ids"),
            outbox_seq: k("outbox:seq"),
            outbox_failures: k("outbox:failures"),
            lock_keys: k("lock-keys"),
            locked: k("locked"),
            locks_seq: k("locks:seq"),
            states: TaskState::ALL.map(|s| k(&format!("state:{}", s.as_str()))),
            leader: k("leader"),
            schema: k("schema"),
            worker_prefix: k("worker:"),
            workers: k("workers"),
            probes: k("probes"),
        }
    }

    pub(super) fn task(&self, member: &str) -> String {
        format!("{}{member}", self.task_prefix)
    }

    pub(super) fn worker(&self, id: &str) -> String {
        format!("{}{id}", self.worker_prefix)
    }

    pub(super) fn state(&self, state: TaskState) -> &str {
        &self.states[state_index(state) - 1]
    }
}

/// 1 to 6: the state's place in `TaskState::ALL` (and in the COMMIT script's keys).
pub(super) fn state_index(state: TaskState) -> usize {
    TaskState::ALL
        .iter()
        .position(|s| *s == state)
        .map_or(1, |i| i + 1)
}

/// Whether `prefix` is a key prefix this crate accepts: 1-64 letters, digits, `_`,
/// `-`, `.` or `:`.
pub(super) fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// A task's member in the sorted sets: `owner/repo#` and the number zero-padded to
/// 20 digits, so that byte order (what Redis sorts equal scores by) is id order.
/// `#` sorts before every character a repository name may hold, so a shorter
/// repository name sorts first, as in `TaskId`'s order.
pub(super) fn member(id: &TaskId) -> String {
    format!("{}#{:020}", id.repo(), id.number())
}

/// The id a member names.
pub(super) fn member_id(member: &str) -> Result<TaskId> {
    member.parse::<TaskId>().map_err(|e| {
        Error::new(
            scrum_core::ErrorKind::Corrupt,
            format!("bad member {member:?}"),
        )
        .with_source(e)
    })
}

/// The claim order as one exact score: priority rank, then issue age in
/// milliseconds (2^45 ms reaches the year 3084), below 2^53 so a double holds it.
pub(super) fn order_score(rank: i16, created_at: i64) -> i64 {
    const SPAN: i64 = 1 << 45;
    i64::from(rank.clamp(0, 15)) * SPAN + created_at.clamp(0, SPAN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_like_task_ids() {
        let ids: Vec<TaskId> = ["a/b#9", "a/b#10", "a/b#100", "a/bc#1", "a/b-c#2", "a-b/c#1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut by_id = ids.clone();
        by_id.sort();
        let mut by_member = ids.clone();
        by_member.sort_by_key(member);
        assert_eq!(by_member, by_id);
        for id in ids {
            assert_eq!(member_id(&member(&id)).unwrap(), id);
        }
    }

    #[test]
    fn order_scores_rank_before_age() {
        assert!(order_score(0, 1 << 44) < order_score(1, 0));
        assert!(order_score(2, 5) < order_score(2, 6));
        assert!(order_score(4, i64::MAX) < 1 << 53);
    }
}
