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
 * caches its Lua scripts' SHA1 as a promise and reloads them only on NOSCRIPT, so a load that
 * failed (Redis unreachable at init, or answering LOADING while it reads its data back after a
 * restart) would fail every later increment while Redis is up, and the limits would stay off.
 * The scripts are loaded on every connection, and a failed load is forgotten: the next
 * request loads them again.
 */
class SharedStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  private readonly inner: RedisStore;
  /** Both scripts loaded; undefined until a load is under way, and again after one failed. */
  private loaded: Promise<void> | undefined;

  constructor(inner: RedisStore) {
    this.inner = inner;
    this.prefix = inner.prefix;
  }

  init(options: RateLimitConfig): void {
    this.inner.windowMs = options.windowMs;
  }

  loadScripts(): Promise<void> {
    this.inner.incrementScriptSha = this.inner.loadIncrementScript();
    this.inner.getScriptSha = this.inner.loadGetScript();
    const loaded = Promise.all([this.inner.incrementScriptSha, this.inner.getScriptSha]).then(
      () => undefined,
    );
    this.loaded = loaded;
    // A failed load is retried by the next request; the rejection is not an unhandled one.
    loaded.catch(() => {
      if (this.loaded === loaded) this.loaded = undefined;
    });
    return loaded;
  }

  private async ready(): Promise<void> {
    await (this.loaded ?? this.loadScripts());
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    await this.ready();
    return this.inner.get(key);
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    await this.ready();
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
    if (up) for (const store of stores) store.loadScripts().catch(() => undefined);
  });
  const sendCommand = (...args: string[]): Promise<Reply> =>
    redis.send(args, { group: 'rate_limit' }) as Promise<Reply>;
  return {
    store(budget) {
      const store = new SharedStore(
        new RedisStore({ prefix: `${redis.prefix}rl:${budget}:`, sendCommand }),
      );
      if (redis.isReady()) store.loadScripts().catch(() => undefined);
      stores.push(store);
      return store;
    },
  };
}
