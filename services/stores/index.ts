import type { RedisConnection, RedisConnectionOptions } from './redis';
import type { RateLimitRedis } from './rate-limit-redis';

export type { RateLimitRedis } from './rate-limit-redis';
export { createRedisScript, type RedisScript } from './redis-script';
export type {
  RedisClient,
  RedisConnection,
  RedisConnectionOptions,
  RedisReply,
  SendOptions,
} from './redis';

/** The replica's one Redis connection and the stores built on it. */
export interface RedisStores {
  connection: RedisConnection;
  rateLimits: RateLimitRedis;
}

/**
 * Connects the stores to Redis. Loaded on demand: the Redis client adds about 10 MB of RSS to a
 * service that does not use it, so nothing imports it unless REDIS_URL is set.
 */
export async function loadRedisStores(options: RedisConnectionOptions): Promise<RedisStores> {
  const [{ createRedisConnection }, { createRateLimitRedis }] = await Promise.all([
    import('./redis.js'),
    import('./rate-limit-redis.js'),
  ]);
  const connection = createRedisConnection(options);
  return { connection, rateLimits: createRateLimitRedis(connection) };
}
