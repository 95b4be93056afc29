import type { RedisConnection } from '../stores';

/** Redis as /health/detailed shows it: never the URL or the password. */
export interface RedisFacts {
  /** False without REDIS_URL (every store then lives in this process). */
  configured: boolean;
  status?: 'up' | 'down';
  /** When the connection last went up or down (or the status was first tracked), ISO 8601. */
  since?: string;
  /** The kind of the last connection error (class and Node's code), null before any. */
  last_error?: { class: string; code: string | null } | null;
}

export interface RedisStatus {
  up(): boolean;
  facts(): RedisFacts;
  /** Stops following the connection. */
  stop(): void;
}

/** Follows the connection's state changes to tell since when Redis is up or down. */
export function createRedisStatus(options: {
  redis: Pick<RedisConnection, 'isReady' | 'onState' | 'lastError'>;
  now: () => number;
}): RedisStatus {
  const { redis, now } = options;
  let since = now();
  const stop = redis.onState(() => {
    since = now();
  });
  return {
    up: () => redis.isReady(),
    facts: () => ({
      configured: true,
      status: redis.isReady() ? 'up' : 'down',
      since: new Date(since).toISOString(),
      last_error: redis.lastError(),
    }),
    stop,
  };
}
