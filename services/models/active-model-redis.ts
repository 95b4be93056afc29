import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '../../src/clock';
import type { Logger } from '../../src/logger';
import {
  createRedisScript,
  type RedisClient,
  type RedisConnection,
  type RedisReply,
  type RedisScript,
} from '../stores';
import {
  createAppliedListeners,
  switchInProgress,
  type ActiveModelRecord,
  type ActiveModelStore,
  type AppliedResult,
  type SwitchLock,
} from './active-model-store';

export interface RedisActiveModelStoreOptions {
  redis: RedisConnection;
  /** OLLAMA_MODEL: the active model until the store names one. */
  initialModel: string;
  clock: Clock;
  logger: Logger;
  /** This replica's name in the store (default: host name and a random suffix). */
  replicaId?: string;
  /** Life of the switch lock; the holder renews it every third of it (default 10 s). */
  lockTtlMs?: number;
  /** How often a replica renews its presence and re-reads the stored model (default 1 s). */
  heartbeatMs?: number;
  /** A replica whose presence is not renewed for this long counts as gone (default 5 s). */
  presenceTtlMs?: number;
  /** Longest wait for every replica to apply a switch (default presence TTL + 2 heartbeats). */
  appliedTimeoutMs?: number;
  /** Interval of the checks while waiting for replicas (default 25 ms). */
  appliedPollMs?: number;
  /** Longest wait at start for the connection before the first read (default 2 s). */
  startWaitMs?: number;
}

/** The metrics group of every command this store sends. */
const GROUP = 'model';

/**
 * Commits a switch when the caller still holds the lock: the generation is Redis' clock in ms,
 * above the stored one and the caller's, so it grows even across a Redis that lost its data.
 * KEYS: lock, active. ARGV: lock value, model, replica, caller's generation, channel.
 */
const COMMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local t = redis.call('TIME')
local gen = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('GET', KEYS[2])
if cur then
  local ok, prev = pcall(cjson.decode, cur)
  if ok and type(prev) == 'table' and tonumber(prev.generation) and tonumber(prev.generation) >= gen then
    gen = tonumber(prev.generation) + 1
  end
end
if tonumber(ARGV[4]) >= gen then gen = tonumber(ARGV[4]) + 1 end
local rec = cjson.encode({model = ARGV[2], generation = gen, replica = ARGV[3]})
redis.call('SET', KEYS[2], rec)
redis.call('PUBLISH', ARGV[5], rec)
return rec`;

/**
 * A replica's heartbeat: its presence with the generation it has applied (the acknowledgement
 * a switch waits for), then the stored model. A store that lost the record (or holds an older
 * one, which only a Redis that lost its data can) gets the caller's back, so after a data loss
 * the newest record any replica knows wins and every replica converges on it.
 * KEYS: replicas, replica, active. ARGV: id, generation, presence TTL, the caller's record or '',
 * channel.
 */
const HEARTBEAT = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local cur = redis.call('GET', KEYS[3])
if ARGV[4] == '' then return cur end
local older = not cur
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  older = not ok or type(rec) ~= 'table' or (tonumber(rec.generation) or 0) < tonumber(ARGV[2])
end
if older then
  redis.call('SET', KEYS[3], ARGV[4])
  redis.call('PUBLISH', ARGV[5], ARGV[4])
  return ARGV[4]
end
return cur`;

/**
 * The live replicas still below a generation; replicas whose presence expired are dropped.
 * KEYS: replicas. ARGV: replica key prefix, generation.
 */
const PENDING = `
local pending = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. id)
  if not v then
    redis.call('SREM', KEYS[1], id)
  elseif tonumber(v) < tonumber(ARGV[2]) then
    table.insert(pending, id)
  end
end
return pending`;

/** Renews the lock only for its holder. KEYS: lock. ARGV: value, TTL. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Deletes the lock only for its holder. KEYS: lock. ARGV: value. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Removes a replica's presence (clean stop). KEYS: replicas, replica. ARGV: id. */
const LEAVE = `
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])`;

interface StoredRecord extends ActiveModelRecord {
  replica?: string;
}

function parseRecord(text: RedisReply): StoredRecord | null {
  if (typeof text !== 'string') return null;
  try {
    const value = JSON.parse(text) as Partial<StoredRecord>;
    if (typeof value.model !== 'string' || typeof value.generation !== 'number') return null;
    return value as StoredRecord;
  } catch {
    return null;
  }
}

/** A switch starting (`switching` = its target) or ending (null), announced on the channel. */
interface SwitchNotice {
  switching: string | null;
  replica: string;
}

function parseNotice(text: string): SwitchNotice | undefined {
  try {
    const value = JSON.parse(text) as Partial<SwitchNotice>;
    if (!('switching' in value) || typeof value.replica !== 'string') return undefined;
    return typeof value.switching === 'string' || value.switching === null
      ? (value as SwitchNotice)
      : undefined;
  } catch {
    return undefined;
  }
}

function lockTarget(text: RedisReply): string | null {
  if (typeof text !== 'string') return null;
  try {
    const value = JSON.parse(text) as { target?: unknown };
    return typeof value.target === 'string' ? value.target : null;
  } catch {
    return null;
  }
}

/**
 * The active model shared by every replica through Redis (standalone Redis or Valkey: the
 * scripts touch keys they derive, which a Redis Cluster would refuse).
 *
 * - The stored record (`<prefix>model:active`) is the truth; each replica reads it at start,
 *   after every reconnection and on every heartbeat, and hears each switch at once on the
 *   `<prefix>model:events` channel (a connection of its own from `duplicate()`). A record is
 *   applied only when its generation is greater than the one applied, so a late message never
 *   undoes a newer switch.
 * - One switch at a time: `SET NX PX` on `<prefix>model:switch-lock`, renewed by its holder
 *   while the preload runs, deleted only by its holder (compare and delete), and a commit fenced
 *   by it (a holder whose lock expired commits nothing).
 * - Each replica renews `<prefix>model:replica:<id>` (PX) every heartbeat with the generation it
 *   has applied: the acknowledgement {@link SwitchLock.applied} waits for before the previous
 *   model is unloaded. A replica that stops renewing (dead or cut off) drops out after the
 *   presence TTL.
 * - While Redis is unreachable `current()` keeps the last value and a switch fails with
 *   REDIS_UNAVAILABLE; nothing diverges.
 */
export function createRedisActiveModelStore(
  options: RedisActiveModelStoreOptions,
): ActiveModelStore {
  const { redis, clock, logger } = options;
  const id = options.replicaId ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
  const lockTtlMs = options.lockTtlMs ?? 10_000;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const presenceTtlMs = options.presenceTtlMs ?? 5000;
  const appliedTimeoutMs = options.appliedTimeoutMs ?? presenceTtlMs + 2 * heartbeatMs;
  const appliedPollMs = options.appliedPollMs ?? 25;
  const startWaitMs = options.startWaitMs ?? 2000;
  const p = redis.prefix;
  const keys = {
    active: `${p}model:active`,
    lock: `${p}model:switch-lock`,
    replicas: `${p}model:replicas`,
    replicaPrefix: `${p}model:replica:`,
    channel: `${p}model:events`,
  };
  const listeners = createAppliedListeners();
  let record: ActiveModelRecord = { model: options.initialModel, generation: 0 };
  let heartbeat: TimerHandle | null = null;
  let subscriber: RedisClient | null = null;
  let subscribed = false;
  /** The switch another replica announced, until it announces the end or its lock TTL passes. */
  let announced: { target: string; at: number } | null = null;
  let ownTarget: string | null = null;
  let stopped = false;
  const cleanups: Array<() => void> = [];

  // Each script by its SHA1 (EVALSHA), sent whole only when Redis does not have it.
  const scripts = new Map<string, RedisScript>();
  const eval_ = (script: string, keyList: string[], args: string[], signal?: AbortSignal) => {
    let cached = scripts.get(script);
    if (!cached) scripts.set(script, (cached = createRedisScript(redis, script)));
    return cached.run(keyList, args, { group: GROUP, ...(signal ? { signal } : {}) });
  };

  /** Applies a stored record when it is newer than the one this replica has. */
  function apply(stored: StoredRecord | null): void {
    if (!stored || stored.generation <= record.generation) return;
    const previous = record.model;
    record = { model: stored.model, generation: stored.generation };
    listeners.emit({ previous, model: stored.model, remote: stored.replica !== id });
    void beat();
  }

  // Heartbeats run one at a time; one asked for meanwhile runs right after (it acknowledges the
  // generation applied since the running one was sent).
  let beating: Promise<void> | null = null;
  let again = false;
  async function beatOnce(): Promise<void> {
    const mine =
      record.generation > 0
        ? JSON.stringify({ model: record.model, generation: record.generation, replica: id })
        : '';
    const reply = await eval_(
      HEARTBEAT,
      [keys.replicas, keys.replicaPrefix + id, keys.active],
      [id, String(record.generation), String(presenceTtlMs), mine, keys.channel],
    );
    apply(parseRecord(reply));
  }
  function beat(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (beating) {
      again = true;
      return beating;
    }
    beating = (async () => {
      try {
        do {
          again = false;
          await beatOnce();
        } while (again && !stopped);
      } catch {
        // Unreachable: the next heartbeat or the reconnection tries again.
      } finally {
        beating = null;
      }
    })();
    return beating;
  }

  async function subscribe(client: RedisClient): Promise<void> {
    if (subscribed || stopped) return;
    try {
      await client.subscribe(keys.channel, (message) => {
        const notice = parseNotice(message);
        if (notice === undefined) apply(parseRecord(message));
        else if (notice.replica !== id) {
          announced =
            notice.switching === null ? null : { target: notice.switching, at: clock.now() };
        }
      });
      subscribed = true;
    } catch (err) {
      logger.warn('subscribing to active model changes failed; retrying on reconnection', {
        error: err,
      });
    }
  }

  async function pending(generation: number, signal?: AbortSignal): Promise<string[]> {
    const reply = await eval_(
      PENDING,
      [keys.replicas],
      [keys.replicaPrefix, String(generation)],
      signal,
    );
    return Array.isArray(reply) ? reply.map(String) : [];
  }

  function untilReady(): Promise<void> {
    if (redis.isReady()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = clock.after(startWaitMs, resolve);
      void redis.nextReady().then(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  return {
    kind: 'redis',
    current: () => record,
    switching() {
      if (ownTarget !== null) return ownTarget;
      if (announced && clock.now() - announced.at < lockTtlMs) return announced.target;
      return null;
    },
    onApplied: listeners.add,

    async start() {
      heartbeat = clock.every(heartbeatMs, () => void beat());
      cleanups.push(redis.onState((up) => up && void beat()));
      const sub = await redis.duplicate();
      subscriber = sub;
      // node-redis subscribes again by itself after a reconnection; the stored value is read
      // again then too, for the messages missed while disconnected.
      sub.on('ready', () => {
        void subscribe(sub).then(() => beat());
      });
      if (sub.isReady) await subscribe(sub);
      await untilReady();
      await beat();
    },

    async stop() {
      stopped = true;
      heartbeat?.cancel();
      for (const cleanup of cleanups.splice(0)) cleanup();
      if (subscriber?.isReady && subscribed) {
        await subscriber.unsubscribe(keys.channel).catch(() => undefined);
      }
      // Leaving at once spares a switch under way the wait for this presence to expire.
      await eval_(LEAVE, [keys.replicas, keys.replicaPrefix + id], [id]).catch(() => undefined);
    },

    async lock(target, opts = {}) {
      const value = JSON.stringify({ token: randomUUID(), replica: id, target });
      const taken = await redis.send(['SET', keys.lock, value, 'NX', 'PX', String(lockTtlMs)], {
        group: GROUP,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (taken !== 'OK') {
        const holder = await redis.send(['GET', keys.lock], { group: GROUP }).catch(() => null);
        throw switchInProgress(lockTarget(holder));
      }
      const announce = (switching: string | null): void => {
        const notice: SwitchNotice = { switching, replica: id };
        void redis
          .send(['PUBLISH', keys.channel, JSON.stringify(notice)], { group: GROUP })
          .catch(() => undefined);
      };
      ownTarget = target;
      announce(target);
      const lost = new AbortController();
      let held = true;
      let renewedAt = clock.now();
      const loseIt = (): void => {
        if (!held) return;
        held = false;
        ownTarget = null;
        renewal.cancel();
        logger.warn('the model switch lock expired and was taken over', { target });
        lost.abort(switchInProgress(null));
      };
      const renewal = clock.every(Math.max(1, Math.floor(lockTtlMs / 3)), () => {
        void eval_(RENEW, [keys.lock], [value, String(lockTtlMs)]).then(
          (reply) => {
            if (reply !== 1) return loseIt();
            renewedAt = clock.now();
            // Other replicas trust a notice for one lock TTL: a switch that outlasts it (a pull,
            // a long load) tells them again, and a replica started since learns of it.
            announce(target);
          },
          () => {
            // Unreachable: the lock may still be ours until its TTL runs out.
            if (clock.now() - renewedAt >= lockTtlMs) loseIt();
          },
        );
      });
      const lock: SwitchLock = {
        signal: lost.signal,
        async commit(model) {
          if (!held) throw switchInProgress(null);
          const reply = await eval_(
            COMMIT,
            [keys.lock, keys.active],
            [value, model, id, String(record.generation), keys.channel],
          );
          const stored = parseRecord(reply);
          if (!stored) {
            loseIt();
            throw switchInProgress(null);
          }
          apply(stored);
          await beat();
          return { model: stored.model, generation: stored.generation };
        },
        async applied(generation, signal): Promise<AppliedResult> {
          const deadline = clock.now() + appliedTimeoutMs;
          let left: string[] = [id];
          for (;;) {
            try {
              left = await pending(generation, signal);
            } catch {
              // Unknown while Redis does not answer: the last answer stands.
            }
            if (left.length === 0) return { settled: true, pending: [] };
            if (clock.now() >= deadline || signal?.aborted)
              return { settled: false, pending: left };
            await clock.sleep(appliedPollMs, signal).catch(() => undefined);
          }
        },
        async release() {
          if (!held) return;
          held = false;
          ownTarget = null;
          renewal.cancel();
          announce(null);
          await eval_(RELEASE, [keys.lock], [value]).catch((err: unknown) => {
            // It expires by itself within its TTL.
            logger.warn('releasing the model switch lock failed', { error: err });
          });
        },
      };
      return lock;
    },
  };
}
