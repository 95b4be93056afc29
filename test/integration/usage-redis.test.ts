import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createRedisConnection, type RedisConnection } from '../../services/stores/redis';
import { createRedisUsageStore } from '../../services/usage/redis-store';
import { createUsageService } from '../../services/usage/service';
import { AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import type { Principal } from '../../src/principal';
import { freePort } from '../support/listen';
import { createManualClock } from '../support/manual-clock';
import { startRedis, stopRedis } from '../support/redis-server';

const DAY = Date.UTC(2026, 11, 6, 18);

/**
 * The Redis usage store against a real redis-server: two replicas count into one budget (each
 * sees its own usage at once, the other's once it is flushed), and every key written expires
 * at its period's end plus the retention.
 */
describe('token usage shared through Redis (real redis-server)', function () {
  this.timeout(20_000);
  let redisProcess: ChildProcess | undefined;
  const clients: RedisConnection[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    if (redisProcess) await stopRedis(redisProcess);
    redisProcess = undefined;
  });

  const logger = createLogger({ level: 'silent', format: 'json' });
  /** A replica's connection to the redis-server on `port`, started. */
  async function connect(port: number): Promise<RedisConnection> {
    const redis = createRedisConnection({
      url: `redis://127.0.0.1:${port}`,
      logger,
      commandTimeoutMs: 500,
      prefix: 'oag:',
    });
    clients.push(redis);
    await redis.start();
    return redis;
  }

  it('two replicas count into one budget once flushed; day and month keys expire after their retention', async () => {
    const port = await freePort();
    redisProcess = await startRedis(port);
    const replica = async () => {
      const redis = await connect(port);
      const clock = createManualClock({ start: DAY });
      const store = createRedisUsageStore({ redis, logger, clock, flushMs: 1000 });
      const usage = createUsageService({
        store,
        now: () => DAY,
        logger,
        warnPercent: 80,
        budgetsOf: () => undefined,
      });
      return { redis, usage, store, clock };
    };
    const [a, b] = [await replica(), await replica()];
    const team: Principal = { id: 'team-a', role: 'agent', budgets: { tokensPerDay: 100 } };

    a.usage.record('team-a', 'llama3.2:3b', { promptTokens: 30, completionTokens: 20 });
    b.usage.record('team-a', 'llama3.2:3b', { promptTokens: 10, completionTokens: 25 });
    // B counts its own usage at once; A's only once A has flushed it.
    assert.deepEqual(await b.usage.check(team), {});
    await a.store.flush();
    assert.deepEqual(await b.usage.check(team), {
      warning: 'day;used=85;limit=100;reset=21600',
    });
    // The interval's timer flushes by itself (its write goes out before A's next command).
    a.usage.record('team-a', 'qwen3:8b', { promptTokens: 15, completionTokens: 0 });
    await b.store.stop();
    a.clock.advance(999);
    assert.equal(
      Number(await a.redis.send(['HGET', 'oag:usage:day:2026-12-06:k:team-a', 'total'])),
      85,
    );
    a.clock.advance(1);
    await assert.rejects(
      b.usage.check(team),
      (err: unknown) => err instanceof AppError && err.code === 'TOKEN_BUDGET_EXCEEDED',
    );
    assert.equal(
      Number(await a.redis.send(['HGET', 'oag:usage:day:2026-12-06:k:team-a', 'total'])),
      100,
    );
    const report = await a.usage.report({ period: 'month' }, { id: 'ops', role: 'admin' });
    assert.deepEqual(
      report.data.map((r) => [r.key_id, r.model, r.prompt_tokens, r.completion_tokens]),
      [
        ['team-a', 'llama3.2:3b', 40, 45],
        ['team-a', 'qwen3:8b', 15, 0],
      ],
    );

    const expiry = async (key: string) => Number(await a.redis.send(['PEXPIRETIME', key]));
    const dayEnds = Date.UTC(2026, 11, 7);
    assert.equal(await expiry('oag:usage:day:2026-12-06:k:team-a'), dayEnds + 62 * 86_400_000);
    assert.equal(await expiry('oag:usage:day:2026-12-06:keys'), dayEnds + 62 * 86_400_000);
    assert.equal(
      await expiry('oag:usage:month:2026-12:k:team-a'),
      Date.UTC(2027, 0, 1) + 400 * 86_400_000,
    );
  });

  it('adds a batch once when Redis ran it but its reply was lost, and it is sent again', async () => {
    const port = await freePort();
    redisProcess = await startRedis(port);
    const redis = await connect(port);
    // The next script call runs in Redis, but its reply misses the deadline.
    let loseReplies = 0;
    const lossy: RedisConnection = {
      ...redis,
      send: async (args, opts) => {
        const reply = await redis.send(args, opts);
        if (String(args[0]).startsWith('EVAL') && loseReplies > 0) {
          loseReplies -= 1;
          throw new AppError('REDIS_UNAVAILABLE', undefined, { retryAfterS: 1 });
        }
        return reply;
      },
    };
    const clock = createManualClock({ start: DAY });
    const store = createRedisUsageStore({ redis: lossy, logger, clock, flushMs: 1000 });
    const total = async () =>
      Number(await redis.send(['HGET', 'oag:usage:day:2026-12-06:k:team-a', 'total']));

    await store.add('team-a', 'llama3.2:3b', { promptTokens: 60, completionTokens: 41 }, DAY);
    loseReplies = 1;
    await store.flush();
    assert.equal(await total(), 101, 'Redis ran it');
    await store.add('team-a', 'llama3.2:3b', { promptTokens: 1, completionTokens: 0 }, DAY);
    await store.flush(); // the lost batch again (adds nothing), then the new one
    assert.equal(await total(), 102);
    assert.deepEqual(await store.totals('team-a', DAY), { day: 102, month: 102 });
    await store.stop();
  });
});
