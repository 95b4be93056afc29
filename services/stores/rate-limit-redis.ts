import type { ClientRateLimitInfo, Options as RateLimitConfig, Store } from 'express-rate-limit';
import { RedisStore } from 'rate-limit-redis';
import { createClient } from 'redis';
import { backoff } from '../../src/clock';
import type { Logger } from '../../src/logger';

export interface RateLimitRedisOptions {
  /** REDIS_URL (redis:// or rediss://). */
  url: string;
  logger: Logger;
  /** Deadline of one Redis command on the request path; past it the request is served unlimited. */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts (they start at 50–100 ms and double). */
  reconnectMaxDelayMs?: number;
  /** Key prefix shared by every replica of this service. */
  prefix?: string;
}

export interface RateLimitRedis {
  /** A store for one budget (its own key prefix), to pass to createRateLimit's `store`. */
  store(budget: string): Store;
  /** Starts connecting; resolves once connected. Never needed for serving: until then (and
   * whenever Redis is down) the stores fail fast and requests are served unlimited. */
  start(): Promise<void>;
  /** True while connected. */
  isReady(): boolean;
  /** Resolves on the next successful (re)connection. */
  nextReady(): Promise<void>;
  /** Closes the connection and stops reconnecting. */
  stop(): Promise<void>;
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
 * The Redis connection behind the shared rate limits (node-redis). Commands are never queued
 * while disconnected (`disableOfflineQueue`) and carry a deadline, so an outage costs a
 * request nothing: the store fails at once and express-rate-limit serves it unlimited. The
 * client reconnects forever with capped exponential backoff; connection errors are logged
 * once per outage (they never crash the process: an `error` listener is always attached).
 */
export function createRateLimitRedis(options: RateLimitRedisOptions): RateLimitRedis {
  const { logger } = options;
  const commandTimeoutMs = options.commandTimeoutMs ?? 500;
  const maxDelay = options.reconnectMaxDelayMs ?? 2000;
  const prefix = options.prefix ?? 'oag:rl:';
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      reconnectStrategy: (retries) =>
        backoff(retries + 1, { baseMs: 100, maxMs: maxDelay, jitter: 'equal' }),
    },
  });
  const stores: SharedStore[] = [];
  let down = false;
  client.on('error', (err: unknown) => {
    if (down) return;
    down = true;
    logger.warn('redis unreachable; rate limits are not enforced until it returns', {
      error: err,
    });
  });
  client.on('ready', () => {
    for (const store of stores) store.loadScripts();
    if (down) logger.info('redis reconnected; rate limits enforced again');
    else logger.info('redis connected for rate limits');
    down = false;
  });

  const sendCommand = (...args: string[]): Promise<Reply> =>
    client.sendCommand(args, { timeout: commandTimeoutMs }) as Promise<Reply>;

  return {
    store(budget) {
      const store = new SharedStore(new RedisStore({ prefix: `${prefix}${budget}:`, sendCommand }));
      if (client.isReady) store.loadScripts();
      stores.push(store);
      return store;
    },
    async start() {
      await client.connect();
    },
    isReady: () => client.isReady,
    nextReady: () => new Promise((resolve) => client.once('ready', () => resolve())),
    async stop() {
      if (client.isOpen) client.destroy();
    },
  };
}
