import type { RateLimitRedis, RateLimitRedisOptions } from './rate-limit-redis';

export type { RateLimitRedis, RateLimitRedisOptions } from './rate-limit-redis';

/**
 * The Redis connection behind the shared rate limits. Loaded on demand: the Redis client adds
 * about 10 MB of RSS to a service that does not use it, so nothing imports it unless REDIS_URL
 * is set.
 */
export async function loadRateLimitRedis(options: RateLimitRedisOptions): Promise<RateLimitRedis> {
  const { createRateLimitRedis } = await import('./rate-limit-redis.js');
  return createRateLimitRedis(options);
}
