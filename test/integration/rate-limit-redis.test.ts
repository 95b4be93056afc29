import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { createRateLimitRedis } from '../../services/stores/rate-limit-redis';
import { createRedisConnection, type RedisConnection } from '../../services/stores/redis';
import type { Express } from 'express';
import { AppError } from '../../src/errors';
import { createLogger, type Logger } from '../../src/logger';
import { testApps } from '../support/build-app';
import { createCaptureLogger } from '../support/capture-logger';
import { metricValue } from '../support/exposition';
import { freePort } from '../support/listen';
import { startRedis, stopRedis } from '../support/redis-server';
import { AGENT_KEY, TEST_API_KEYS, bearer } from '../support/security';

const LIMITS = { API_KEYS: TEST_API_KEYS, RATE_LIMIT_PER_MINUTE: '3' };

describe('rate limits shared through Redis (real redis-server)', function () {
  this.timeout(20_000);
  let redisProcess: ChildProcess | undefined;
  const clients: RedisConnection[] = [];
  const apps = testApps();

  afterEach(async () => {
    await apps.closeAll();
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    if (redisProcess) await stopRedis(redisProcess);
    redisProcess = undefined;
  });

  /** A replica's connection to the redis-server on `port` (not started). */
  function connection(port: number, logger: Logger): RedisConnection {
    const redis = createRedisConnection({
      url: `redis://127.0.0.1:${port}`,
      logger,
      commandTimeoutMs: 500,
      reconnectMaxDelayMs: 100,
      prefix: 'oag:',
    });
    clients.push(redis);
    return redis;
  }

  async function replica(port: number, logger = createLogger({ level: 'silent', format: 'json' })) {
    const redis = connection(port, logger);
    const stores = createRateLimitRedis(redis);
    const t = await apps.build({
      env: LIMITS,
      deps: {
        logger,
        rateLimitStore: (budget) => stores.store(budget),
      },
    });
    const storeErrors = () => metricValue(t.metrics.registry, 'rate_limit_store_errors_total');
    return { redis, app: t.app, storeErrors };
  }

  const get = (app: Express) => request(app).get('/agents').set(bearer(AGENT_KEY));

  it('shares one budget between two instances, fails open while Redis is down, and resumes when it returns', async () => {
    const port = await freePort();
    redisProcess = await startRedis(port);
    const { logger, lines } = createCaptureLogger();
    const a = await replica(port, logger);
    const b = await replica(port);
    await Promise.all([a.redis.start(), b.redis.start()]);

    // Two requests on A and one on B use up the key's budget of 3: B's next is limited by A's traffic.
    assert.equal((await get(a.app)).status, 200);
    assert.equal((await get(a.app)).status, 200);
    assert.equal((await get(b.app)).status, 200);
    const limited = await get(b.app);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.equal((await get(a.app)).status, 429);

    // Redis goes away: every request is still served (no 429, no 5xx), and each failure is counted.
    const reconnected = Promise.all([a.redis.nextReady(), b.redis.nextReady()]);
    await stopRedis(redisProcess);
    for (let i = 0; i < 5; i += 1) {
      assert.equal((await get(a.app)).status, 200);
      assert.equal((await get(b.app)).status, 200);
    }
    assert.equal(await a.storeErrors(), 5);
    assert.equal(await b.storeErrors(), 5);
    assert.ok(lines().some((l) => /redis unreachable/.test(String(l.message))));

    // Redis is back (empty: no persistence): the clients reconnect by themselves and limits apply again.
    redisProcess = await startRedis(port);
    await reconnected;
    assert.equal((await get(a.app)).status, 200);
    assert.equal((await get(b.app)).status, 200);
    assert.equal((await get(a.app)).status, 200);
    assert.equal((await get(b.app)).status, 429);
    assert.ok(lines().some((l) => /redis reconnected/.test(String(l.message))));
  });

  it('serves requests when Redis is down at start, and enforces limits once it comes up', async () => {
    const port = await freePort();
    const a = await replica(port);
    const connected = a.redis.start();
    for (let i = 0; i < 5; i += 1) assert.equal((await get(a.app)).status, 200);
    assert.equal(await a.storeErrors(), 5);

    redisProcess = await startRedis(port);
    await connected;
    for (let i = 0; i < 3; i += 1) assert.equal((await get(a.app)).status, 200);
    assert.equal((await get(a.app)).status, 429);
  });

  it('loads its scripts again after a load that failed while Redis was up (LOADING after a restart)', async () => {
    const port = await freePort();
    redisProcess = await startRedis(port);
    const redis = connection(port, createLogger({ level: 'silent', format: 'json' }));
    await redis.start();
    // The first two SCRIPT LOADs answer as a Redis still reading its data back would.
    let refused = 2;
    const loading: RedisConnection = {
      ...redis,
      send: (args, opts) =>
        args[0] === 'SCRIPT' && refused-- > 0
          ? Promise.reject(new AppError('REDIS_UNAVAILABLE', undefined, { retryAfterS: 1 }))
          : redis.send(args, opts),
    };
    const store = createRateLimitRedis(loading).store('api');
    store.init?.({ windowMs: 60_000 } as Parameters<NonNullable<typeof store.init>>[0]);
    // The request that meets the failed load is served without a limit (the store fails)…
    await assert.rejects(async () => store.increment('client'));
    // …and the next ones load the scripts again and are counted.
    const hits = [];
    for (let i = 0; i < 3; i += 1) hits.push((await store.increment('client')).totalHits);
    assert.deepEqual(hits, [1, 2, 3]);
  });
});
