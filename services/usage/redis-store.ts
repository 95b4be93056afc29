import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../../src/clock';
import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { createRedisScript, type RedisConnection, type RedisReply } from '../stores';
import { periodsAt, RETENTION_MS, type Period } from './periods';
import type { TokenCounts, UsageRow, UsageStore } from './store';

/**
 * A batch of usage added at once, exactly once: KEYS[1] marks the batch as applied (SET NX, for
 * ARGV[1] ms), so a batch sent again after its reply was lost (it timed out, yet Redis ran it)
 * adds nothing the second time. Each entry is added to both of its periods: per period, a hash
 * per key (`p:<model>`, `c:<model>` and `total`) and the set of keys with usage; each expires
 * at the period's end plus its retention (PEXPIREAT: the same for every write, so replays agree).
 * Per entry, KEYS: day hash, month hash, day set, month set; ARGV: model, prompt, completion,
 * total, day expiry, month expiry, key id. 0: the batch was already applied.
 */
const ADD_SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for e = 0, (#KEYS - 1) / 4 - 1 do
  local k = 1 + e * 4
  local a = 1 + e * 7
  for i = 1, 2 do
    local expires = ARGV[a + 4 + i]
    redis.call('HINCRBY', KEYS[k + i], 'p:' .. ARGV[a + 1], ARGV[a + 2])
    redis.call('HINCRBY', KEYS[k + i], 'c:' .. ARGV[a + 1], ARGV[a + 3])
    redis.call('HINCRBY', KEYS[k + i], 'total', ARGV[a + 4])
    redis.call('PEXPIREAT', KEYS[k + i], expires)
    redis.call('SADD', KEYS[k + i + 2], ARGV[a + 7])
    redis.call('PEXPIREAT', KEYS[k + i + 2], expires)
  end
end
return 1`;

/**
 * How long a batch's applied mark is kept: one key per replica and flush with usage, so an hour
 * (a few thousand small keys per replica); a batch sent again later than that (its reply lost
 * just before an outage of over an hour) could be added twice.
 */
const BATCH_MARK_MS = 3_600_000;

/** Most distinct (day, key, model) sums kept while Redis is down; past it, usage is dropped (logged). */
const PENDING_MAX = 10_000;

interface Pending extends TokenCounts {
  keyId: string;
  model: string;
  /** A time inside the day the tokens belong to. */
  at: number;
}

/** Usage sent to Redis whose outcome is unknown (the call failed): sent again as it is. */
interface Batch {
  id: string;
  entries: Pending[];
}

export interface RedisUsageStoreOptions {
  redis: RedisConnection;
  logger: Logger;
  /**
   * With a clock, usage is summed here and added to Redis every `flushMs` (and on `stop`):
   * one script call per key, model and day per interval instead of one per generation.
   * Without one, each generation is written at once.
   */
  clock?: Pick<Clock, 'every'>;
  /** How often summed usage is added to Redis (default 1000 ms). */
  flushMs?: number;
}

/**
 * Usage shared by every replica in Redis (HINCRBY on a hash per key, day and month). Writes
 * never wait on an outage: usage not yet in Redis (summed for the flush interval, or written
 * while Redis is down) is kept in this replica's memory per day, key and model, added when
 * the interval ends or Redis is back, and counted in this replica's budget checks meanwhile.
 * So a budget check sees this replica's usage at once and other replicas' within one flush
 * interval (a key can pass its budget by what other replicas served in that interval), and no
 * token is lost unless the replica dies before the flush (SIGKILL: at most one interval's
 * usage; SIGTERM flushes on `stop`). Reads (budget checks, /usage) throw REDIS_UNAVAILABLE
 * while it is down.
 */
export function createRedisUsageStore(
  options: RedisUsageStoreOptions,
): UsageStore & { flush(): Promise<void>; stop(): Promise<void> } {
  const { redis, logger, clock } = options;
  const addScript = createRedisScript(redis, ADD_SCRIPT);
  let ticker: TimerHandle | undefined;
  const pending = new Map<string, Pending>();
  /** Batches whose write failed, in order, each retried under its own id (never merged). */
  const retrying: Batch[] = [];
  let dropped = 0;
  /** Some usage could not be written: say so once it is. */
  let outage = false;
  let flushing: Promise<void> | undefined;

  const hashKey = (p: Period, keyId: string): string =>
    `${redis.prefix}usage:${p.kind}:${p.id}:k:${keyId}`;
  const setKey = (p: Period): string => `${redis.prefix}usage:${p.kind}:${p.id}:keys`;

  const write = async (batch: Batch): Promise<void> => {
    const keys = [`${redis.prefix}usage:batch:${batch.id}`];
    const args = [String(BATCH_MARK_MS)];
    for (const { keyId, model, at, promptTokens, completionTokens } of batch.entries) {
      const { day, month } = periodsAt(at);
      keys.push(hashKey(day, keyId), hashKey(month, keyId), setKey(day), setKey(month));
      args.push(
        model,
        String(promptTokens),
        String(completionTokens),
        String(promptTokens + completionTokens),
        String(day.endsAt + RETENTION_MS.day),
        String(month.endsAt + RETENTION_MS.month),
        keyId,
      );
    }
    await addScript.run(keys, args, { group: 'usage' });
  };
  const kept = (): number => pending.size + retrying.reduce((n, b) => n + b.entries.length, 0);

  const keep = (keyId: string, model: string, t: TokenCounts, at: number): void => {
    const name = `${periodsAt(at).day.id}\u0000${keyId}\u0000${model}`;
    const seen = pending.get(name);
    if (seen) {
      seen.promptTokens += t.promptTokens;
      seen.completionTokens += t.completionTokens;
      return;
    }
    if (kept() >= PENDING_MAX) {
      dropped += 1;
      if (dropped === 1) logger.error('token usage dropped: too much kept while Redis is down');
      return;
    }
    pending.set(name, { keyId, model, at, ...t });
  };

  /** Sends one batch; a failure keeps it, under its id, to be sent again as it is. */
  const send = async (batch: Batch): Promise<boolean> => {
    try {
      await write(batch);
      return true;
    } catch (err) {
      if (retrying.length === 0 && !(isAppError(err) && err.code === 'REDIS_UNAVAILABLE')) {
        logger.error('token usage not written to Redis; kept to retry', { error: err });
      }
      retrying.push(batch);
      return false;
    }
  };

  /** Adds what is kept here: the failed batches first, then what was summed since. */
  const flush = (): Promise<void> => {
    flushing ??= (async () => {
      const batches = retrying.splice(0);
      if (pending.size > 0) {
        batches.push({ id: randomUUID(), entries: [...pending.values()] });
        pending.clear();
      }
      let failed = 0;
      for (const batch of batches) if (!(await send(batch))) failed += 1;
      if (failed > 0) outage = true;
      else if (outage && batches.length > 0) {
        outage = false;
        logger.info('token usage kept during the Redis outage added', { added: batches.length });
      }
    })().finally(() => {
      flushing = undefined;
    });
    return flushing;
  };

  redis.onState((up) => {
    if (up && kept() > 0) void flush();
  });

  /** Tokens of `keyId` kept here and not yet in Redis, in the day and month of `at`. */
  const local = (keyId: string, at: number): { day: number; month: number } => {
    const { day, month } = periodsAt(at);
    const sum = { day: 0, month: 0 };
    for (const p of [...pending.values(), ...retrying.flatMap((b) => b.entries)]) {
      if (p.keyId !== keyId) continue;
      const of = periodsAt(p.at);
      const n = p.promptTokens + p.completionTokens;
      if (of.day.id === day.id) sum.day += n;
      if (of.month.id === month.id) sum.month += n;
    }
    return sum;
  };

  const count = (reply: RedisReply): number => {
    const n = Number(reply ?? 0);
    return Number.isFinite(n) ? n : 0;
  };

  /** HGETALL's fields: node-redis answers a map object (a flat array on older versions). */
  const fieldsOf = (reply: unknown): Array<[string, RedisReply]> => {
    if (Array.isArray(reply)) {
      const pairs: Array<[string, RedisReply]> = [];
      for (let i = 0; i + 1 < reply.length; i += 2) {
        pairs.push([String(reply[i]), reply[i + 1] as RedisReply]);
      }
      return pairs;
    }
    return reply !== null && typeof reply === 'object'
      ? Object.entries(reply as Record<string, RedisReply>)
      : [];
  };

  const rowsOf = (keyId: string, reply: unknown): UsageRow[] => {
    const byModel = new Map<string, UsageRow>();
    for (const [field, value] of fieldsOf(reply)) {
      const kind = field.slice(0, 2);
      if (kind !== 'p:' && kind !== 'c:') continue;
      const model = field.slice(2);
      const row = byModel.get(model) ?? { keyId, model, promptTokens: 0, completionTokens: 0 };
      if (kind === 'p:') row.promptTokens += count(value);
      else row.completionTokens += count(value);
      byModel.set(model, row);
    }
    return [...byModel.values()];
  };

  if (clock) {
    ticker = clock.every(options.flushMs ?? 1000, () => {
      if (kept() > 0 && redis.isReady()) void flush();
    });
  }

  return {
    async add(keyId, model, tokens, at) {
      if (clock) {
        if (!redis.isReady()) outage = true;
        return keep(keyId, model, tokens, at);
      }
      if (kept() > 0 && redis.isReady()) void flush();
      if (kept() >= PENDING_MAX) return keep(keyId, model, tokens, at); // counted as dropped
      await send({ id: randomUUID(), entries: [{ keyId, model, at, ...tokens }] });
    },
    async totals(keyId, at, signal) {
      const { day, month } = periodsAt(at);
      const opts = { group: 'usage', ...(signal ? { signal } : {}) };
      const [d, m] = await Promise.all([
        redis.send(['HGET', hashKey(day, keyId), 'total'], opts),
        redis.send(['HGET', hashKey(month, keyId), 'total'], opts),
      ]);
      const here = local(keyId, at);
      return { day: count(d) + here.day, month: count(m) + here.month };
    },
    async rows(period, keyId, signal) {
      const opts = { group: 'usage', ...(signal ? { signal } : {}) };
      // A report includes this replica's usage of the current interval.
      if (clock && kept() > 0 && redis.isReady()) await flush();
      const ids =
        keyId !== undefined
          ? [keyId]
          : (((await redis.send(['SMEMBERS', setKey(period)], opts)) as string[] | null) ?? []);
      const replies = await Promise.all(
        ids.map((id) => redis.send(['HGETALL', hashKey(period, id)], opts)),
      );
      return ids.flatMap((id, i) => rowsOf(id, replies[i]));
    },
    /** Adds what is kept here now (resolves when written, or kept again on a failure). */
    async flush() {
      await flushing;
      if (kept() > 0) await flush();
    },
    /** Stops the flush timer and adds what is kept, unless Redis is down. */
    async stop() {
      ticker?.cancel();
      ticker = undefined;
      await flushing;
      if (kept() > 0 && redis.isReady()) await flush();
    },
  };
}
