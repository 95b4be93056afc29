import { createHash } from 'node:crypto';
import { AppError } from '../../src/errors';

/** JSON with object keys sorted at every level, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function bodyHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/**
 * Idempotency keys per principal: (owner, key) → the body's hash and the run it started.
 * Every implementation passes the contract suite in test/support/idempotency-contract.ts.
 */
export interface IdempotencyRepository {
  /**
   * The run id stored for (owner, key) when the body is the same; undefined when the key is
   * new (or expired).
   * @throws AppError IDEMPOTENCY_CONFLICT (409) when the key was used with a different body.
   */
  lookup(owner: string, key: string, hash: string): Promise<string | undefined>;
  /**
   * Reserves (owner, key) for a request about to create its run, atomically, so that two
   * requests with one key (on any replicas) start one run. Resolves with the earlier run's id
   * when the key already has one for this body, undefined when the caller now holds the key
   * (for at most a minute, until `remember` or `release`).
   * @throws AppError IDEMPOTENCY_CONFLICT (409) for a different body, or while another request
   *   with the key is still creating its run.
   */
  claim(owner: string, key: string, hash: string): Promise<string | undefined>;
  /** Remembers (owner, key) → run id for IDEMPOTENCY_TTL_MS. */
  remember(owner: string, key: string, hash: string, runId: string): Promise<void>;
  /** Gives up a claim whose run was not created. */
  release(owner: string, key: string): Promise<void>;
  /** Drops the expired keys; resolves with how many went. */
  expire(): Promise<number>;
}

/** How long a claim holds a key without a run (the creation of a run takes milliseconds). */
export const CLAIM_MS = 60_000;

/** What a key maps to: the body's hash, and the run once it exists ('' while claimed). */
export interface IdempotencyRecord {
  hash: string;
  runId: string;
}

/** The answer to a claim or lookup that found `record` for `hash`. */
export function answerFor(record: IdempotencyRecord, hash: string): string {
  if (record.hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT');
  if (record.runId === '') {
    throw new AppError(
      'IDEMPOTENCY_CONFLICT',
      'A request with this Idempotency-Key is still being processed; retry shortly.',
      { retryAfterS: 1 },
    );
  }
  return record.runId;
}

/**
 * Idempotency keys in memory, expiring after `ttlMs` on the injected clock and bounded to `max`
 * entries (the oldest go first).
 */
export function createMemoryIdempotencyRepository(options: {
  ttlMs: number;
  max: number;
  now: () => number;
}): IdempotencyRepository {
  const { ttlMs, max, now } = options;
  const entries = new Map<string, IdempotencyRecord & { expiresAt: number }>();
  // A NUL cannot appear in a principal id, so owner and key cannot run into each other.
  const id = (owner: string, key: string): string => `${owner}\u0000${key}`;
  const live = (owner: string, key: string): IdempotencyRecord | undefined => {
    const entry = entries.get(id(owner, key));
    if (entry && entry.expiresAt <= now()) {
      entries.delete(id(owner, key));
      return undefined;
    }
    return entry;
  };
  const put = (owner: string, key: string, record: IdempotencyRecord, forMs: number): void => {
    entries.delete(id(owner, key));
    entries.set(id(owner, key), { ...record, expiresAt: now() + forMs });
    for (const k of entries.keys()) {
      if (entries.size <= max) break;
      entries.delete(k);
    }
  };
  return {
    async lookup(owner, key, hash) {
      const entry = live(owner, key);
      return entry && answerFor(entry, hash);
    },
    async claim(owner, key, hash) {
      const entry = live(owner, key);
      if (entry) return answerFor(entry, hash);
      put(owner, key, { hash, runId: '' }, Math.min(CLAIM_MS, ttlMs));
      return undefined;
    },
    async remember(owner, key, hash, runId) {
      put(owner, key, { hash, runId }, ttlMs);
    },
    async release(owner, key) {
      entries.delete(id(owner, key));
    },
    async expire() {
      const at = now();
      let dropped = 0;
      for (const [k, entry] of entries) {
        if (entry.expiresAt <= at) {
          entries.delete(k);
          dropped += 1;
        }
      }
      return dropped;
    },
  };
}
