/**
 * The Lua scripts of the Redis run repository (run-repository-redis.ts), each run atomically by
 * EVALSHA on the replica's one connection. Keys a script derives from the prefix inside Lua
 * need one Redis (or a primary with replicas), not Redis Cluster.
 */

/**
 * Lua that evicts the oldest finished (or vanished) runs of KEYS[1] (and KEYS[2]) while the
 * set holds `max` or more, `prefix` naming their keys; leaves how many it still holds in `n`.
 * It reads the set from its oldest end 16 members at a time (a full set of finished runs costs
 * one read, not one of the whole set); live runs it passes stay where they are.
 */
const evictWhileFull = (max: string, prefix: string): string => `
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(${max})
local kept = 0
while n >= max do
  local ids = redis.call('ZRANGE', KEYS[1], kept, kept + 15)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if n < max then break end
    local key = ${prefix} .. 'run:' .. id
    local f = redis.call('HGET', key, 'finished')
    if (not f) or f ~= '' then
      redis.call('DEL', key, key .. ':ev', key .. ':lease')
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      n = n - 1
    else
      kept = kept + 1
    end
  end
end`;

// KEYS: all, live, counter, run, lease. ARGV: id, run, owner, node, max, status, expiry ms,
// lease ms, prefix. Evicts the oldest finished (or vanished) runs while full; 0 when every kept
// run is still running, else stores the run, its owner and this replica's lease: 1.
export const CREATE = `${evictWhileFull('ARGV[5]', 'ARGV[9]')}
if n >= max then return 0 end
local c = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], c, ARGV[1])
redis.call('ZADD', KEYS[2], c, ARGV[1])
redis.call('HSET', KEYS[4], 'run', ARGV[2], 'owner', ARGV[3], 'status', ARGV[6], 'finished', '', 'node', ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[8])
return 1
`;

/**
 * Lua that adds the (seq, type, data) triples from ARGV[first] on to the stream KEYS[6], skipping
 * those at or below its last entry (already there), capped at ARGV[max] entries; the stream
 * then expires after ARGV[7] ms. Leaves the stream's last seq in `last`.
 */
const appendNewEvents = (first: number, max: number): string => `
local last = 0
local top = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', 1)
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
for i = ${first}, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[${max}], seq .. '-0', 't', ARGV[i + 1], 'd', ARGV[i + 2])
    last = seq
  end
end
if last > 0 then redis.call('PEXPIRE', KEYS[6], ARGV[7]) end`;

// The executing replica writes what Redis lacks of its run, in one command. KEYS: all, live,
// counter, run, lease, events. ARGV: id, run JSON ('' to leave it), owner, node, status,
// finished, expiry ms, lease ms, held (1/0), upsert (1/0), max events, release (1/0: the run
// is over, let go of it as RELEASE does), RUNS_MAX, prefix, then (seq, type, data) per event.
// A run new to the set makes room as CREATE does, but is written even when every other kept run
// still runs (it has run already). Events at or below the stream's last one are already there
// and are skipped. -1: another replica took the run over; -2: the run is gone (Redis lost it:
// call again with upsert 1 to write it whole); else the stream's last sequence number.
export const FLUSH = `
local node = redis.call('HGET', KEYS[4], 'node')
if node and node ~= ARGV[4] then return -1 end
if (not node) and ARGV[10] ~= '1' then return -2 end
if ARGV[10] == '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  ${evictWhileFull('ARGV[13]', 'ARGV[14]')}
  local c = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], c, ARGV[1])
  if ARGV[9] == '1' then redis.call('ZADD', KEYS[2], c, ARGV[1]) end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[4], 'run', ARGV[2], 'owner', ARGV[3], 'status', ARGV[5], 'finished', ARGV[6], 'node', ARGV[4])
  if ARGV[6] ~= '' then redis.call('HDEL', KEYS[4], 'pause', 'ptoken') end
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
if ARGV[10] == '1' and ARGV[9] == '1' then redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[8]) end
${appendNewEvents(15, 11)}
if ARGV[12] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[5])
end
return last
`;

// The run pauses for its caller: what Redis lacks of it (the run, the events up to and with
// `run.requires_action`) and the pause are written together, and the replica lets go of the run
// (no lease, not live: nobody takes a paused run over). KEYS: all, live, counter, run, lease,
// events, paused. ARGV: id, run JSON, owner ('' to keep), node ('' when this replica does not
// execute the run), pause JSON, pause token, expiry ms, max events, upsert (1/0), pause
// expiresAt, RUNS_MAX, prefix, then (seq, type, data) per event (a run new to the set makes
// room as in FLUSH). -1: another replica took the run over; -2: no such run; else 1.
// `runs:paused` orders paused runs by when their pause expires.
export const PAUSE = `
if ARGV[9] ~= '1' and redis.call('EXISTS', KEYS[4]) == 0 then return -2 end
local node = redis.call('HGET', KEYS[4], 'node')
if ARGV[4] ~= '' and node and node ~= ARGV[4] then return -1 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  ${evictWhileFull('ARGV[11]', 'ARGV[12]')}
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[3]), ARGV[1])
end
redis.call('HSET', KEYS[4], 'run', ARGV[2], 'status', 'requires_action', 'finished', '', 'pause', ARGV[5], 'ptoken', ARGV[6])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], 'owner', ARGV[3]) end
redis.call('PEXPIRE', KEYS[4], ARGV[7])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[5])
redis.call('ZADD', KEYS[7], ARGV[10], ARGV[1])
${appendNewEvents(13, 8)}
return 1
`;

// Takes the pause named by its token, in one step, so one caller gets it: the pause goes, and
// the claiming replica holds the run (its node, lease and place among the live runs). KEYS:
// live, counter, run, lease, events, paused. ARGV: id, token, node, lease ms. Nil when the
// pause is not (or no longer) there; else the run JSON, the pause JSON, the owner and the last
// event's seq.
export const CLAIM_PAUSE = `
if redis.call('HGET', KEYS[3], 'ptoken') ~= ARGV[2] then return nil end
local f = redis.call('HMGET', KEYS[3], 'run', 'pause', 'owner')
redis.call('HDEL', KEYS[3], 'pause', 'ptoken')
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[3], 'node', ARGV[3])
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
local last = 0
local top = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
return { f[1], f[2], f[3], tostring(last) }
`;

// KEYS: paused. ARGV: prefix, now. The paused runs whose pause expired, as id, token, id,
// token…; members whose pause went meanwhile (claimed, run ended or gone) are dropped.
export const DUE_PAUSES = `
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local token = redis.call('HGET', ARGV[1] .. 'run:' .. id, 'ptoken')
  if token then
    table.insert(out, id)
    table.insert(out, token)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

// KEYS: run, lease. ARGV: node, lease ms. 1 renewed, 0 held by another replica, -1 run gone.
export const RENEW = `
local node = redis.call('HGET', KEYS[1], 'node')
if not node then return -1 end
if node ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
`;

// KEYS: live. ARGV: prefix, node, lease ms. Takes every live run without a lease: the lease
// and the run's node become this replica's, in one step, so one replica gets each.
export const CLAIM_ORPHANS = `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'run:' .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('EXISTS', key .. ':lease') == 0 then
    redis.call('SET', key .. ':lease', ARGV[2], 'PX', ARGV[3])
    redis.call('HSET', key, 'node', ARGV[2])
    table.insert(out, id)
  end
end
return out
`;

// KEYS: live, run, lease. ARGV: id, node.
export const RELEASE = `
local node = redis.call('HGET', KEYS[2], 'node')
if node and node ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
`;

// A replica that does not execute the run appends to it (the terminal event of a run it took
// over). KEYS: run, events. ARGV: type, data, max events, expiry ms. 0: no such run.
export const APPEND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = 1
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then seq = tonumber(string.match(last[1][1], '^(%d+)')) + 1 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 't', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return seq
`;

// KEYS: run, events. ARGV: field, value, finished ('' to leave it; set, it also drops a pause),
// expiry ms ('' to leave it). 0: no such run.
export const SET_FIELD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HDEL', KEYS[1], 'pause', 'ptoken')
  if redis.call('HGET', KEYS[1], 'finished') == '' then
    redis.call('HSET', KEYS[1], 'finished', ARGV[3])
  end
end
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
`;

// KEYS: all, live. ARGV: prefix, now, ttl ms. Drops the runs finished past their TTL on the
// service's clock (and forgets those Redis already expired); returns how many.
export const EXPIRE = `
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'run:' .. id
  local f = redis.call('HGET', key, 'finished')
  if (not f) or (f ~= '' and tonumber(f) + tonumber(ARGV[3]) <= tonumber(ARGV[2])) then
    redis.call('DEL', key, key .. ':ev', key .. ':lease')
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    n = n + 1
  end
end
return n
`;
