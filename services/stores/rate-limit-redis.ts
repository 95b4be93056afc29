import type { ClientRateLimitInfo, Options as RateLimitConfig, Store } from 'express-rate-limit';
import { RedisStore } from 'rate-limit-redis';
import type { RedisConnection } from './redis';

export interface RateLimitRedis {
  /** A store for one budget (its own key prefix), to pass to createRateLimit's `store`. */
  store(budget: string): Store;
}

type Reply = boolean | number | string | Array<boolean | number | string>;

/**
 * One Redis store (rate-limit-redis) per budget. Wraps RedisStore for one weakness: it
 * caches its Lua scripts' SHA1 as a promise loaded at init, so when Redis was unreachable
 * then, every later increment would fail on that rejected promise even after Redis returns.
 * The scripts are therefore (re)loaded on every connection instead of at init.
 */
class SharedStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  private readonly inner: RedisStore;

  constructor(inner: RedisStore) {
    this.inner = inner;
    this.prefix = inner.prefix;
  }

  init(options: RateLimitConfig): void {
    this.inner.windowMs = options.windowMs;
  }

  loadScripts(): void {
    this.inner.incrementScriptSha = this.inner.loadIncrementScript();
    this.inner.getScriptSha = this.inner.loadGetScript();
    // A failed load is retried on the next connection; the rejection is not an unhandled one.
    this.inner.incrementScriptSha.catch(() => undefined);
    this.inner.getScriptSha.catch(() => undefined);
  }

  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.inner.get(key);
  }

  increment(key: string): Promise<ClientRateLimitInfo> {
    return this.inner.increment(key);
  }

  decrement(key: string): Promise<void> {
    return this.inner.decrement(key);
  }

  resetKey(key: string): Promise<void> {
    return this.inner.resetKey(key);
  }
}

/**
 * The shared rate-limit stores (rate-limit-redis) on the replica's one Redis connection. Its
 * commands are never queued while disconnected and carry a deadline, so an outage costs a
 * request nothing: the store fails at once and express-rate-limit serves it unlimited.
 */
export function createRateLimitRedis(redis: RedisConnection): RateLimitRedis {
  const stores: SharedStore[] = [];
  redis.onState((up) => {
    if (up) for (const store of stores) store.loadScripts();
  });
  const sendCommand = (...args: string[]): Promise<Reply> =>
    redis.send(args, { group: 'rate_limit' }) as Promise<Reply>;
  return {
    store(budget) {
      const store = new SharedStore(
        new RedisStore({ prefix: `${redis.prefix}rl:${budget}:`, sendCommand }),
      );
      if (redis.isReady()) store.loadScripts();
      stores.push(store);
      return store;
    },
  };
}
