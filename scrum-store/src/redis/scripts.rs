//! The Lua scripts that make each Redis change atomic. Redis runs a script alone,
//! so a script's reads and writes see no other client in between.

use std::sync::LazyLock;

use redis::Script;

/// Writes a task decided in Rust, if its version is still the one read, together
/// with its indexes and effects, and optionally deletes an acknowledged effect.
/// Rust says where the task was indexed before, so the script touches only the
/// sets that change.
///
/// KEYS: 1 task hash, 2 all, 3 ready, 4 delayed, 5 leases, 6 claiming, 7 rank,
/// 8 outbox, 9 outbox ids, 10 outbox sequence, 11 outbox failures,
/// 12..17 the state sets (pending, in_progress, completed, failed, cancelled, parked),
/// 18 lock keys of live tasks, 19 locks held (member to `lease expiry` newline
/// `lock keys`), 20 the count of changes to 19.
/// ARGV: 1 member, 2 expected version (0: must not exist), 3 task JSON, 4 new state
/// set (1-6), 5 new index (`ready`, `delayed`, `leases` or empty), 6 its score,
/// 7 claim-order score (written when ARGV[10] is 1), 8 effect id to delete (or
/// empty), 9 old state set (0: new task), 10 whether the claim-order score changed,
/// 11 old index (`pending`, `leases` or empty), 12 the task's lock keys
/// (newline-separated, or empty), 13 the count of 20 the decision to claim a task
/// with keys read (otherwise empty), 14 whether the old version had lock keys
/// (`1`/`0`), 15.. effect JSONs.
/// Returns the new version, -1 when the version changed, or -2 when the held locks
/// changed since a claim's decision read them (nothing written).
pub(super) static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local m = ARGV[1]
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[2] then return -1 end
if ARGV[13] ~= '' and (redis.call('GET', KEYS[20]) or '0') ~= ARGV[13] then
  return -2
end
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', nv, 'json', ARGV[3])
if ARGV[2] == '0' then redis.call('ZADD', KEYS[2], 0, m) end
if ARGV[9] ~= ARGV[4] then
  if ARGV[9] ~= '0' then redis.call('ZREM', KEYS[11 + tonumber(ARGV[9])], m) end
  redis.call('ZADD', KEYS[11 + tonumber(ARGV[4])], 0, m)
end
if ARGV[11] == 'pending' then
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', KEYS[4], m)
  redis.call('ZREM', KEYS[6], m)
elseif ARGV[11] == 'leases' then
  redis.call('ZREM', KEYS[5], m)
end
if ARGV[10] == '1' then redis.call('HSET', KEYS[7], m, ARGV[7]) end
if ARGV[5] == 'ready' then redis.call('ZADD', KEYS[3], ARGV[6], m)
elseif ARGV[5] == 'delayed' then redis.call('ZADD', KEYS[4], ARGV[6], m)
elseif ARGV[5] == 'leases' then redis.call('ZADD', KEYS[5], ARGV[6], m) end
if ARGV[8] ~= '' then
  redis.call('HDEL', KEYS[8], ARGV[8])
  redis.call('ZREM', KEYS[9], ARGV[8])
  redis.call('HDEL', KEYS[11], ARGV[8])
end
if ARGV[12] ~= '' then
  if ARGV[4] == '1' or ARGV[4] == '2' then
    redis.call('HSET', KEYS[18], m, ARGV[12])
  else
    redis.call('HDEL', KEYS[18], m)
  end
  if ARGV[5] == 'leases' then
    redis.call('HSET', KEYS[19], m, ARGV[6] .. '\n' .. ARGV[12])
  else
    redis.call('HDEL', KEYS[19], m)
  end
  redis.call('INCR', KEYS[20])
elseif ARGV[14] == '1' then
  redis.call('HDEL', KEYS[18], m)
  redis.call('HDEL', KEYS[19], m)
  redis.call('INCR', KEYS[20])
end
for i = 15, #ARGV do
  local id = redis.call('INCR', KEYS[10])
  redis.call('HSET', KEYS[8], id, ARGV[i])
  redis.call('ZADD', KEYS[9], id, id)
end
return nv
"#,
    )
});

/// Moves backoffs that are due and reservations that lapsed back to the ready
/// set; then, when nothing needs choosing (no repository held, no lock held), pops
/// the first ready member into the claiming set until ARGV[2] and returns
/// `{member, version, json}`; `false` when none is ready, and `{''}` when the
/// caller must choose (in Rust: holds and locks are decided there) and [`TAKE`].
///
/// KEYS: 1 ready, 2 delayed, 3 claiming, 4 rank, 5 locks held. ARGV: 1 now,
/// 2 reservation end, 3 the task hash key prefix, 4 `1` when repositories are held.
pub(super) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for _, from in ipairs({KEYS[2], KEYS[3]}) do
  local due = redis.call('ZRANGEBYSCORE', from, '-inf', ARGV[1], 'LIMIT', 0, 256)
  for _, m in ipairs(due) do
    redis.call('ZREM', from, m)
    local score = redis.call('HGET', KEYS[4], m)
    if score then redis.call('ZADD', KEYS[1], score, m) end
  end
end
if ARGV[4] == '1' or redis.call('HLEN', KEYS[5]) > 0 then return {''} end
local top = redis.call('ZPOPMIN', KEYS[1])
if #top == 0 then return false end
local m = top[1]
redis.call('ZADD', KEYS[3], ARGV[2], m)
local t = redis.call('HMGET', ARGV[3] .. m, 'v', 'json')
return {m, t[1], t[2]}
"#,
    )
});

/// Reserves the ready member ARGV[1] the caller chose, if it is still ready:
/// moves it into the claiming set until ARGV[2] and returns `{member, version,
/// json}`; `false` when another claimer took it first.
///
/// KEYS: 1 ready, 2 claiming. ARGV: 1 member, 2 reservation end, 3 the task hash
/// key prefix.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local t = redis.call('HMGET', ARGV[3] .. ARGV[1], 'v', 'json')
return {ARGV[1], t[1], t[2]}
"#,
    )
});

/// Deletes an acknowledged effect. KEYS: 1 outbox, 2 outbox ids, 3 failures.
/// ARGV: 1 id.
pub(super) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"#,
    )
});

/// Stores the failure state of an effect still in the outbox. KEYS: 1 outbox,
/// 2 failures. ARGV: 1 id, 2 the state (JSON).
pub(super) static NACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
"#,
    )
});

/// Takes, renews or takes over the leader lease. KEYS: 1 leader hash.
/// ARGV: 1 holder, 2 new expiry, 3 now, 4 ttl in milliseconds.
/// Returns 1 when the holder leads.
pub(super) static LEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local h = redis.call('HMGET', KEYS[1], 'holder', 'expires_at')
if (not h[1]) or h[1] == ARGV[1] or tonumber(h[2]) <= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'expires_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
"#,
    )
});
