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
  /** Remembers (owner, key) → run id for IDEMPOTENCY_TTL_MS. */
  remember(owner: string, key: string, hash: string, runId: string): Promise<void>;
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
  const entries = new Map<string, { hash: string; runId: string; expiresAt: number }>();
  // A NUL cannot appear in a principal id, so owner and key cannot run into each other.
  const id = (owner: string, key: string): string => `${owner}\u0000${key}`;
  return {
    async lookup(owner, key, hash) {
      const entry = entries.get(id(owner, key));
      if (!entry) return undefined;
      if (entry.expiresAt <= now()) {
        entries.delete(id(owner, key));
        return undefined;
      }
      if (entry.hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT');
      return entry.runId;
    },
    async remember(owner, key, hash, runId) {
      entries.delete(id(owner, key));
      entries.set(id(owner, key), { hash, runId, expiresAt: now() + ttlMs });
      for (const k of entries.keys()) {
        if (entries.size <= max) break;
        entries.delete(k);
      }
    },
  };
}
