/**
 * The Lua script of the Redis admission (see admission-redis.ts), one string so the build ships it.
 */
export const ADMISSION_SCRIPT = String.raw`-- The admission of one Ollama backend shared by every replica (services/ollama/admission-redis.ts).
-- One script, several operations, so each runs atomically against the same state:
--   holders  ZSET  slot id -> lease expiry (ms)      hkey  HASH slot id -> key
--   kin      HASH  key -> slots it holds
--   waiters  ZSET  waiter id -> lease expiry        wtime ZSET waiter id -> enqueued at
--   winfo    HASH  waiter id -> "class\nkey"        wpar  HASH waiter id -> "cap weight"
--   q:<class>\n<key>  ZSET waiter id -> arrival sequence (the key's FIFO within its class)
--   flows:<class>     ZSET key -> virtual time of its next turn (stride scheduling)
--   vtime    HASH  class -> the class's virtual time (the pass of the last grant)
--   refused  ZSET  waiter id -> expiry: waiters pushed out of a full queue, until told
-- Time is Redis' own (TIME), so replicas' clocks never disagree about a lease. The channel
-- <P>granted carries grants (waiter ids), refusals ("!" and the id) and "?" (a waiter was queued).
-- KEYS[1]: the backend's key prefix. ARGV: op, maxConcurrency, leaseMs, then per op.
-- Returns { status, inFlight, queued, oldest waiter's enqueue time or -1, now }.
local P = KEYS[1]
local op = ARGV[1]
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local CLASSES = { 'interactive', 'standard', 'batch' }

local function drop_waiter(id)
  local info = redis.call('HGET', P .. 'winfo', id)
  if not info then
    return false
  end
  redis.call('HDEL', P .. 'winfo', id)
  redis.call('HDEL', P .. 'wpar', id)
  redis.call('ZREM', P .. 'waiters', id)
  redis.call('ZREM', P .. 'wtime', id)
  redis.call('ZREM', P .. 'q:' .. info, id)
  return true
end

local function add_holder(id, key)
  if redis.call('ZADD', P .. 'holders', now + lease, id) == 1 then
    redis.call('HSET', P .. 'hkey', id, key)
    redis.call('HINCRBY', P .. 'kin', key, 1)
  end
end

local function drop_holder(id)
  if redis.call('ZREM', P .. 'holders', id) == 0 then
    return false
  end
  local key = redis.call('HGET', P .. 'hkey', id)
  redis.call('HDEL', P .. 'hkey', id)
  if key and redis.call('HINCRBY', P .. 'kin', key, -1) <= 0 then
    redis.call('HDEL', P .. 'kin', key)
  end
  return true
end

-- Leases that ran out: their replica died or lost Redis for longer than a lease.
local function purge()
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'holders', '-inf', now)) do
    drop_holder(id)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'waiters', '-inf', now)) do
    drop_waiter(id)
  end
  redis.call('ZREMRANGEBYSCORE', P .. 'refused', '-inf', now)
end

-- How many requests of key wait, over every class.
local function waiting_of(key)
  local n = 0
  for _, class in ipairs(CLASSES) do
    n = n + redis.call('ZCARD', P .. 'q:' .. class .. '\n' .. key)
  end
  return n
end

-- The queue is full: the newest waiter of the key with the most waiting, if that key has more
-- waiting than key (whose newcomer then takes its place); nil: the newcomer is refused.
local function evict_for(key)
  local most = waiting_of(key)
  local victim = nil
  local seen = { [key] = true }
  for _, class in ipairs(CLASSES) do
    for _, other in ipairs(redis.call('ZRANGE', P .. 'flows:' .. class, 0, -1)) do
      if not seen[other] then
        seen[other] = true
        local n = waiting_of(other)
        if n > most then
          most = n
          victim = other
        end
      end
    end
  end
  if not victim then
    return nil
  end
  -- Its newest request, from its lowest class that has one.
  for i = #CLASSES, 1, -1 do
    local newest = redis.call('ZRANGE', P .. 'q:' .. CLASSES[i] .. '\n' .. victim, -1, -1)[1]
    if newest then
      return newest
    end
  end
  return nil
end

-- Hands free slots out: the highest class with an eligible key (waiting, below its cap);
-- within it the key with the lowest virtual time, which then advances by 1/weight. Grants
-- are published on the backend's channel, so each waiter's replica wakes at once.
local function dispatch()
  local granted = {}
  local inflight = redis.call('ZCARD', P .. 'holders')
  while inflight < max do
    local best = nil
    for _, class in ipairs(CLASSES) do
      local fset = P .. 'flows:' .. class
      local vt = tonumber(redis.call('HGET', P .. 'vtime', class) or '0')
      local flows = redis.call('ZRANGE', fset, 0, -1, 'WITHSCORES')
      for i = 1, #flows, 2 do
        local key = flows[i]
        local pass = tonumber(flows[i + 1])
        local head = redis.call('ZRANGE', P .. 'q:' .. class .. '\n' .. key, 0, 0)[1]
        if not head then
          -- Idle with no credit left over: forgotten (it comes back at the class's time).
          if pass <= vt then
            redis.call('ZREM', fset, key)
          end
        else
          local par = redis.call('HGET', P .. 'wpar', head) or ''
          local cap = tonumber(string.match(par, '^(%S+)') or max)
          local held = tonumber(redis.call('HGET', P .. 'kin', key) or '0')
          if held < cap then
            best = { class, key, pass, head, tonumber(string.match(par, ' (%S+)$') or '1') }
            break
          end
        end
      end
      if best then
        break
      end
    end
    if not best then
      break
    end
    local class, key, pass, id, weight = best[1], best[2], best[3], best[4], best[5]
    drop_waiter(id)
    add_holder(id, key)
    redis.call('HSET', P .. 'vtime', class, pass)
    redis.call('ZADD', P .. 'flows:' .. class, pass + 1 / weight, key)
    granted[#granted + 1] = id
    inflight = inflight + 1
  end
  if #granted > 0 then
    redis.call('PUBLISH', P .. 'granted', table.concat(granted, ' '))
  end
end

local function reply(status)
  local oldest = redis.call('ZRANGE', P .. 'wtime', 0, 0, 'WITHSCORES')
  return {
    status,
    redis.call('ZCARD', P .. 'holders'),
    redis.call('ZCARD', P .. 'waiters'),
    tonumber(oldest[2] or '-1'),
    now,
  }
end

purge()

if op == 'acquire' then
  -- ARGV[4..9]: waiter id, key, class, cap, weight, maxQueue
  local id, key, class = ARGV[4], ARGV[5], ARGV[6]
  local fset = P .. 'flows:' .. class
  local q = P .. 'q:' .. class .. '\n' .. key
  if redis.call('ZCARD', q) == 0 then
    local vt = tonumber(redis.call('HGET', P .. 'vtime', class) or '0')
    local pass = tonumber(redis.call('ZSCORE', fset, key) or vt)
    if pass < vt then
      pass = vt
    end
    redis.call('ZADD', fset, pass, key)
  end
  redis.call('ZADD', q, redis.call('INCR', P .. 'seq'), id)
  redis.call('ZADD', P .. 'waiters', now + lease, id)
  redis.call('ZADD', P .. 'wtime', now, id)
  redis.call('HSET', P .. 'winfo', id, class .. '\n' .. key)
  redis.call('HSET', P .. 'wpar', id, ARGV[7] .. ' ' .. ARGV[8])
  dispatch()
  if redis.call('ZSCORE', P .. 'holders', id) then
    return reply('granted')
  end
  if redis.call('ZCARD', P .. 'waiters') > tonumber(ARGV[9]) then
    local victim = evict_for(key)
    if not victim then
      drop_waiter(id)
      return reply('full')
    end
    -- Refused after all: its replica learns it from the channel, or from its next renewal.
    drop_waiter(victim)
    redis.call('ZADD', P .. 'refused', now + lease, victim)
    redis.call('PUBLISH', P .. 'granted', '!' .. victim)
  end
  -- Replicas that keep released slots for their own next request hand them back now.
  redis.call('PUBLISH', P .. 'granted', '?')
  return reply('queued')
elseif op == 'release' then
  -- ARGV[4]: slot id
  drop_holder(ARGV[4])
  dispatch()
  return reply('released')
elseif op == 'leave' then
  -- ARGV[4]: waiter id. A waiter granted meanwhile gives its slot back.
  local status = 'gone'
  if drop_waiter(ARGV[4]) then
    status = 'left'
  elseif drop_holder(ARGV[4]) then
    status = 'released'
  end
  dispatch()
  return reply(status)
elseif op == 'refresh' then
  -- ARGV[4]: n; then n pairs (slot id, key) this replica holds; then its waiter ids.
  -- Held slots are renewed (and re-added after Redis lost them); each waiter is renewed and
  -- reported: w still waiting, g granted, f refused (the queue was full), x unknown (to be
  -- queued again).
  local n = tonumber(ARGV[4])
  for i = 0, n - 1 do
    add_holder(ARGV[5 + 2 * i], ARGV[6 + 2 * i])
  end
  local states = {}
  for i = 5 + 2 * n, #ARGV do
    local id = ARGV[i]
    if redis.call('ZSCORE', P .. 'waiters', id) then
      redis.call('ZADD', P .. 'waiters', 'XX', now + lease, id)
      states[#states + 1] = 'w'
    elseif redis.call('ZSCORE', P .. 'holders', id) then
      states[#states + 1] = 'g'
    elseif redis.call('ZREM', P .. 'refused', id) == 1 then
      states[#states + 1] = 'f'
    else
      states[#states + 1] = 'x'
    end
  end
  dispatch()
  return reply(states)
end
return redis.error_reply('unknown admission operation ' .. tostring(op))
`;
