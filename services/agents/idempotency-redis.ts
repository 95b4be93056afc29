import { createHash } from 'node:crypto';
import { createRedisScript, type RedisConnection } from '../stores';
import {
  answerFor,
  CLAIM_MS,
  type IdempotencyRecord,
  type IdempotencyRepository,
} from './idempotency';

/** What is stored under a key: the record and when it expires on the injected clock. */
interface Stored extends IdempotencyRecord {
  expiresAt: number;
}

// Returns the live record, or stores ARGV[1] for ARGV[3] ms and returns false: one round trip,
// atomic, so two replicas claiming one key at once get one winner (SET NX, with the expiry on
// the service's clock checked first).
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v then
  local ok, r = pcall(cjson.decode, v)
  if ok and tonumber(r.expiresAt) > tonumber(ARGV[2]) then return v end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false
`;

/**
 * Idempotency keys in Redis, shared by every replica: one string per (owner, key) holding the
 * body's hash and the run id, with a Redis expiry (PX) of IDEMPOTENCY_TTL_MS, so Redis drops
 * them on its own. A claim is one Lua script (a SET NX that also treats an expired record as
 * absent). Passes the contract suite in test/support/idempotency-contract.ts.
 * @throws AppError REDIS_UNAVAILABLE from every method while Redis is unreachable
 */
export function createRedisIdempotencyRepository(options: {
  redis: RedisConnection;
  ttlMs: number;
  now: () => number;
}): IdempotencyRepository {
  const { redis, ttlMs, now } = options;
  const send = { group: 'idempotency' };
  const claim = createRedisScript(redis, CLAIM);
  // Hashed, so no owner or key text reaches Redis and the two cannot run into each other.
  const keyOf = (owner: string, key: string): string =>
    `${redis.prefix}idem:${createHash('sha256').update(owner).update('\0').update(key).digest('hex')}`;
  const encode = (record: IdempotencyRecord, forMs: number): string =>
    JSON.stringify({ ...record, expiresAt: now() + forMs } satisfies Stored);
  const decode = (value: unknown): Stored | undefined => {
    if (typeof value !== 'string') return undefined;
    const stored = JSON.parse(value) as Stored;
    return stored.expiresAt > now() ? stored : undefined;
  };
  return {
    async lookup(owner, key, hash) {
      const stored = decode(await redis.send(['GET', keyOf(owner, key)], send));
      return stored && answerFor(stored, hash);
    },
    async claim(owner, key, hash) {
      const forMs = Math.min(CLAIM_MS, ttlMs);
      const reply = await claim.run(
        [keyOf(owner, key)],
        [encode({ hash, runId: '' }, forMs), String(now()), String(forMs)],
        send,
      );
      const stored = decode(reply);
      return stored && answerFor(stored, hash);
    },
    async remember(owner, key, hash, runId) {
      await redis.send(
        ['SET', keyOf(owner, key), encode({ hash, runId }, ttlMs), 'PX', String(ttlMs)],
        send,
      );
    },
    async release(owner, key) {
      await redis.send(['DEL', keyOf(owner, key)], send);
    },
    // Redis expires the keys itself.
    async expire() {
      return 0;
    },
  };
}
