import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { RedisConnection, RedisReply } from '../stores';
import { periodsAt, RETENTION_MS, type Period } from './periods';
import type { TokenCounts, UsageRow, UsageStore } from './store';

/**
 * One generation added to both of its periods at once: per period, a hash per key
 * (`p:<model>`, `c:<model>` and `total`) and the set of keys with usage; each expires at the
 * period's end plus its retention (PEXPIREAT: the same for every write, so replays agree).
 * KEYS: day hash, month hash, day set, month set. ARGV: model, prompt, completion, total,
 * day expiry, month expiry, key id.
 */
const ADD_SCRIPT = `
for i = 1, 2 do
  local expires = ARGV[4 + i]
  redis.call('HINCRBY', KEYS[i], 'p:' .. ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[i], 'c:' .. ARGV[1], ARGV[3])
  redis.call('HINCRBY', KEYS[i], 'total', ARGV[4])
  redis.call('PEXPIREAT', KEYS[i], expires)
  redis.call('SADD', KEYS[i + 2], ARGV[7])
  redis.call('PEXPIREAT', KEYS[i + 2], expires)
end
return 1`;

/** Most distinct (day, key, model) sums kept while Redis is down; past it, usage is dropped (logged). */
const PENDING_MAX = 10_000;

interface Pending extends TokenCounts {
  keyId: string;
  model: string;
  /** A time inside the day the tokens belong to. */
  at: number;
}

export interface RedisUsageStoreOptions {
  redis: RedisConnection;
  logger: Logger;
}

/**
 * Usage shared by every replica in Redis (HINCRBY on a hash per key, day and month). Writes
 * never wait on an outage: usage written while Redis is down is summed in this replica's memory
 * per day, key and model, and added when Redis is back (and counted in this replica's budget
 * checks meanwhile), so no token is lost unless the replica dies during the outage. Reads
 * (budget checks, /usage) throw REDIS_UNAVAILABLE while it is down.
 */
export function createRedisUsageStore(options: RedisUsageStoreOptions): UsageStore {
  const { redis, logger } = options;
  const pending = new Map<string, Pending>();
  let dropped = 0;
  let flushing: Promise<void> | undefined;

  const hashKey = (p: Period, keyId: string): string =>
    `${redis.prefix}usage:${p.kind}:${p.id}:k:${keyId}`;
  const setKey = (p: Period): string => `${redis.prefix}usage:${p.kind}:${p.id}:keys`;

  const write = async (keyId: string, model: string, t: TokenCounts, at: number): Promise<void> => {
    const { day, month } = periodsAt(at);
    await redis.send(
      [
        'EVAL',
        ADD_SCRIPT,
        '4',
        hashKey(day, keyId),
        hashKey(month, keyId),
        setKey(day),
        setKey(month),
        model,
        String(t.promptTokens),
        String(t.completionTokens),
        String(t.promptTokens + t.completionTokens),
        String(day.endsAt + RETENTION_MS.day),
        String(month.endsAt + RETENTION_MS.month),
        keyId,
      ],
      { group: 'usage' },
    );
  };

  const keep = (keyId: string, model: string, t: TokenCounts, at: number): void => {
    const name = `${periodsAt(at).day.id}\u0000${keyId}\u0000${model}`;
    const seen = pending.get(name);
    if (seen) {
      seen.promptTokens += t.promptTokens;
      seen.completionTokens += t.completionTokens;
      return;
    }
    if (pending.size >= PENDING_MAX) {
      dropped += 1;
      if (dropped === 1) logger.error('token usage dropped: too much kept while Redis is down');
      return;
    }
    pending.set(name, { keyId, model, at, ...t });
  };

  /** Adds what was kept during an outage; what fails again stays kept. */
  const flush = (): Promise<void> => {
    flushing ??= (async () => {
      const entries = [...pending.entries()];
      pending.clear();
      let added = 0;
      for (const [i, [, p]] of entries.entries()) {
        try {
          await write(p.keyId, p.model, p, p.at);
          added += 1;
        } catch {
          for (const [, rest] of entries.slice(i)) keep(rest.keyId, rest.model, rest, rest.at);
          break;
        }
      }
      if (added > 0) logger.info('token usage kept during the Redis outage added', { added });
    })().finally(() => {
      flushing = undefined;
    });
    return flushing;
  };

  redis.onState((up) => {
    if (up && pending.size > 0) void flush();
  });

  /** Tokens of `keyId` kept here and not yet in Redis, in the day and month of `at`. */
  const local = (keyId: string, at: number): { day: number; month: number } => {
    const { day, month } = periodsAt(at);
    const sum = { day: 0, month: 0 };
    for (const p of pending.values()) {
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

  return {
    async add(keyId, model, tokens, at) {
      if (pending.size > 0 && redis.isReady()) void flush();
      try {
        await write(keyId, model, tokens, at);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'REDIS_UNAVAILABLE') {
          logger.error('token usage not written to Redis; kept to retry', { error: err });
        }
        keep(keyId, model, tokens, at);
      }
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
      const ids =
        keyId !== undefined
          ? [keyId]
          : (((await redis.send(['SMEMBERS', setKey(period)], opts)) as string[] | null) ?? []);
      const replies = await Promise.all(
        ids.map((id) => redis.send(['HGETALL', hashKey(period, id)], opts)),
      );
      return ids.flatMap((id, i) => rowsOf(id, replies[i]));
    },
  };
}
