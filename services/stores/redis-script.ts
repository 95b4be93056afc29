import { createHash } from 'node:crypto';
import type { RedisConnection, RedisReply, SendOptions } from './redis';

/** A Lua script run with EVALSHA on the shared connection. */
export interface RedisScript {
  run(keys: readonly string[], args: readonly string[], options?: SendOptions): Promise<RedisReply>;
}

/**
 * A Lua script sent by its SHA1 (EVALSHA), and once in full (EVAL) whenever Redis does not know
 * it yet: after a restart or a failover, Redis' script cache is empty, and the next call
 * reloads it without anyone watching the connection.
 * @throws AppError REDIS_UNAVAILABLE, or the script's own error reply
 */
export function createRedisScript(redis: RedisConnection, source: string): RedisScript {
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    async run(keys, args, options) {
      const tail = [String(keys.length), ...keys, ...args];
      try {
        return await redis.send(['EVALSHA', sha, ...tail], options);
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
        return redis.send(['EVAL', source, ...tail], options);
      }
    },
  };
}
