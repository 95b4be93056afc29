import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import {
  createRedisActiveModelStore,
  type RedisActiveModelStoreOptions,
} from '../../services/models/active-model-redis';
import type { ActiveModelStore, AppliedChange } from '../../services/models/active-model-store';
import { createModelService } from '../../services/models/model-service';
import { createOllamaService } from '../../services/ollama/client';
import { createNoopTelemetry } from '../../services/metrics/telemetry';
import { createRedisConnection, type RedisConnection } from '../../services/stores/redis';
import { createSystemClock } from '../../src/clock';
import { isAppError, type AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createCaptureLogger } from '../support/capture-logger';
import { freePort } from '../support/listen';
import { createManualClock } from '../support/manual-clock';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { pollUntil } from '../support/poll';
import { startRedis, stopRedis } from '../support/redis-server';
import { testConfig } from '../support/security';

/** The AppError `promise` rejects with (fails the test when it resolves or throws anything else). */
async function refusal(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

const silent = createLogger({ level: 'silent', format: 'json' });
const PREFIX = 'oag:';

describe('active model store in Redis (real redis-server)', function () {
  this.timeout(20_000);
  let redisProcess: ChildProcess | undefined;
  let port: number;
  const connections: RedisConnection[] = [];
  const stores: ActiveModelStore[] = [];
  let sim: OllamaSimulator | undefined;

  beforeEach(async () => {
    port = await freePort();
    redisProcess = await startRedis(port);
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
    await Promise.all(connections.splice(0).map((c) => c.stop()));
    await sim?.close();
    sim = undefined;
    if (redisProcess) await stopRedis(redisProcess);
    redisProcess = undefined;
  });

  async function connect(): Promise<RedisConnection> {
    const redis = createRedisConnection({
      url: `redis://127.0.0.1:${port}`,
      logger: silent,
      commandTimeoutMs: 500,
      reconnectMaxDelayMs: 100,
      prefix: PREFIX,
    });
    connections.push(redis);
    await redis.start();
    return redis;
  }

  /** A replica's store on its own connection; started (first read done, subscribed). */
  async function replica(
    replicaId: string,
    options: Partial<RedisActiveModelStoreOptions> = {},
  ): Promise<{ store: ActiveModelStore; redis: RedisConnection; changes: AppliedChange[] }> {
    const redis = await connect();
    const store = createRedisActiveModelStore({
      redis,
      initialModel: 'llama3.2:3b',
      clock: createSystemClock(),
      logger: silent,
      replicaId,
      ...options,
    });
    stores.push(store);
    const changes: AppliedChange[] = [];
    store.onApplied((c) => changes.push(c));
    await store.start();
    // The subscription is made once the duplicate connection is ready.
    await pollUntil(
      'subscribed',
      async () => ((await subscribers(redis)) > 0 ? true : undefined),
      2000,
    );
    return { store, redis, changes };
  }

  const subscribers = async (redis: RedisConnection): Promise<number> => {
    const reply = await redis.send(['PUBSUB', 'NUMSUB', `${PREFIX}model:events`]);
    return Array.isArray(reply) ? Number(reply[1]) : 0;
  };

  it('applies a switch committed on another replica through pub/sub, in generation order', async () => {
    const a = await replica('a');
    const b = await replica('b');
    await pollUntil(
      'both subscribed',
      async () => ((await subscribers(a.redis)) === 2 ? true : undefined),
      2000,
    );
    assert.deepEqual(b.store.current(), { model: 'llama3.2:3b', generation: 0 });

    const lock = await a.store.lock('qwen3:8b');
    const committed = await lock.commit('qwen3:8b');
    await lock.release();
    assert.equal(a.store.current().model, 'qwen3:8b');
    assert.deepEqual(a.changes, [{ previous: 'llama3.2:3b', model: 'qwen3:8b', remote: false }]);
    await pollUntil(
      'B applied',
      async () => (b.store.current().model === 'qwen3:8b' ? true : undefined),
      1000,
    );
    assert.deepEqual(b.store.current(), committed);
    assert.deepEqual(b.changes, [{ previous: 'llama3.2:3b', model: 'qwen3:8b', remote: true }]);

    // A message older than what B applied (a late delivery) changes nothing.
    const stale = JSON.stringify({
      model: 'llama3.2:3b',
      generation: committed.generation - 1,
      replica: 'a',
    });
    await a.redis.send(['PUBLISH', `${PREFIX}model:events`, stale]);
    // A third replica starting now reads the stored record.
    const c = await replica('c');
    assert.deepEqual(c.store.current(), committed);
    assert.equal(b.store.current().model, 'qwen3:8b');
    assert.equal(b.changes.length, 1);
  });

  it('lets one switch hold the lock at a time, naming its target, until its holder releases it', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const lock = await a.store.lock('qwen3:8b');
    assert.equal(a.store.switching(), 'qwen3:8b');
    await pollUntil(
      'B told',
      async () => (b.store.switching() === 'qwen3:8b' ? true : undefined),
      1000,
    );
    const refused = await refusal(b.store.lock('llama3.2:3b'));
    assert.equal(refused.code, 'SWITCH_IN_PROGRESS');
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.details, { switching_to: 'qwen3:8b' });
    await lock.release();
    assert.equal(a.store.switching(), null);
    await pollUntil('B told', async () => (b.store.switching() === null ? true : undefined), 1000);
    const next = await b.store.lock('llama3.2:3b');
    // Releasing an old lock again does not delete its successor's.
    await lock.release();
    assert.equal((await refusal(a.store.lock('x'))).code, 'SWITCH_IN_PROGRESS');
    await next.release();
  });

  it('tells the other replicas of a switch again with each renewal, so a long one is never forgotten', async () => {
    const clockA = createManualClock({ now: Date.now });
    const clockB = createManualClock();
    const a = await replica('a', { clock: clockA, lockTtlMs: 300 });
    const b = await replica('b', { clock: clockB, lockTtlMs: 300 });
    const lock = await a.store.lock('qwen3:8b');
    await pollUntil('B told', async () => (b.store.switching() ? true : undefined), 1000);
    // A notice counts for one lock TTL on B's clock: without another, B would forget it…
    clockB.advance(400);
    assert.equal(b.store.switching(), null);
    // …but A's renewal announces the switch again.
    clockA.advance(100);
    await pollUntil(
      'B told again',
      async () => (b.store.switching() === 'qwen3:8b' ? true : undefined),
      1000,
    );
    await lock.release();
  });

  it('renews the lock while it is held, and a holder whose lock expired and was taken commits nothing', async () => {
    const clock = createManualClock({ now: Date.now });
    const a = await replica('a', { clock, lockTtlMs: 300 });
    const b = await replica('b');
    const lockKey = `${PREFIX}model:switch-lock`;
    const ttl = async (): Promise<number> => Number(await a.redis.send(['PTTL', lockKey]));

    const lock = await a.store.lock('qwen3:8b');
    // Real time runs the TTL down; each renewal (every 100 ms on A's clock) puts it back.
    await pollUntil('TTL running down', async () => ((await ttl()) < 200 ? true : undefined), 2000);
    clock.advance(100);
    await pollUntil('TTL renewed', async () => ((await ttl()) > 250 ? true : undefined), 2000);
    assert.equal(lock.signal.aborted, false);

    // No renewal: the lock expires, B takes it, and A's commit is refused; A learns it lost it.
    await pollUntil('expired', async () => ((await ttl()) === -2 ? true : undefined), 2000);
    const taken = await b.store.lock('llama3.2:3b');
    const lost = await refusal(lock.commit('qwen3:8b'));
    assert.equal(lost.code, 'SWITCH_IN_PROGRESS');
    assert.equal(lock.signal.aborted, true);
    assert.equal(a.store.current().model, 'llama3.2:3b');
    assert.equal(await a.redis.send(['GET', `${PREFIX}model:active`]), null);
    await lock.release();
    assert.notEqual(await a.redis.send(['GET', lockKey]), null, "B's lock stays");
    await taken.release();
  });

  it('waits for every live replica to apply a switch; a replica that stops renewing drops out', async () => {
    const a = await replica('a', { presenceTtlMs: 5000, appliedTimeoutMs: 150 });
    await replica('b');
    // A replica that is registered but frozen: its presence holds generation 0 for a while.
    await a.redis.send(['SADD', `${PREFIX}model:replicas`, 'frozen']);
    await a.redis.send(['SET', `${PREFIX}model:replica:frozen`, '0', 'PX', '400']);

    const lock = await a.store.lock('qwen3:8b');
    const { generation } = await lock.commit('qwen3:8b');
    // Within A's deadline (150 ms) the frozen replica is still present and behind.
    assert.deepEqual(await lock.applied(generation), { settled: false, pending: ['frozen'] });
    // Once its presence expires it no longer counts; B applied through pub/sub.
    await pollUntil(
      'frozen replica gone',
      async () => ((await lock.applied(generation)).settled ? true : undefined),
      3000,
    );
    assert.deepEqual(
      ((await a.redis.send(['SMEMBERS', `${PREFIX}model:replicas`])) as string[]).sort(),
      ['a', 'b'],
    );
    await lock.release();
  });

  it('keeps the last value while Redis is down, refuses a switch with 503, and recovers without a restart', async () => {
    const a = await replica('a', { heartbeatMs: 50 });
    const b = await replica('b', { heartbeatMs: 50 });
    const lock = await a.store.lock('qwen3:8b');
    const committed = await lock.commit('qwen3:8b');
    await lock.release();
    await pollUntil(
      'B applied',
      async () => (b.store.current().model === 'qwen3:8b' ? true : undefined),
      1000,
    );

    const back = b.redis.nextReady();
    await stopRedis(redisProcess!);
    redisProcess = undefined;
    await pollUntil('down', async () => (b.redis.isReady() ? undefined : true), 2000);
    const refused = await refusal(b.store.lock('llama3.2:3b'));
    assert.equal(refused.code, 'REDIS_UNAVAILABLE');
    assert.equal(refused.status, 503);
    assert.deepEqual(b.store.current(), committed);

    // An empty Redis comes back: the replicas put their last value back, and switching works.
    redisProcess = await startRedis(port);
    await back;
    const stored = async (): Promise<number | undefined> => {
      const text = await b.redis.send(['GET', `${PREFIX}model:active`]);
      return typeof text === 'string'
        ? (JSON.parse(text) as { generation: number }).generation
        : undefined;
    };
    await pollUntil('record restored', stored, 2000);
    assert.equal(await stored(), committed.generation);
    // An older record in the store (only a Redis that lost data has one) is replaced by the
    // newest one a replica knows; nobody goes back to it.
    const older = JSON.stringify({ model: 'llama3.2:3b', generation: 1, replica: 'x' });
    await b.redis.send(['SET', `${PREFIX}model:active`, older]);
    await pollUntil(
      'newest record back',
      async () => ((await stored()) === committed.generation ? true : undefined),
      2000,
    );
    assert.deepEqual([a.store.current(), b.store.current()], [committed, committed]);
    await pollUntil(
      'subscribed again',
      async () => ((await subscribers(b.redis)) === 2 ? true : undefined),
      3000,
    );
    const again = await b.store.lock('llama3.2:3b');
    const next = await again.commit('llama3.2:3b');
    await again.release();
    assert.ok(next.generation > committed.generation);
    await pollUntil(
      'A applied',
      async () => (a.store.current().model === 'llama3.2:3b' ? true : undefined),
      1000,
    );
  });

  it('leaves the previous model loaded when a replica did not apply the switch in time', async () => {
    sim = await startOllamaSimulator();
    const { store, redis } = await replica('a', { appliedTimeoutMs: 100 });
    await redis.send(['SADD', `${PREFIX}model:replicas`, 'frozen']);
    await redis.send(['SET', `${PREFIX}model:replica:frozen`, '0', 'PX', '10000']);
    const config = testConfig({ OLLAMA_HOST: sim.url });
    const { logger, lines } = createCaptureLogger();
    const ollama = createOllamaService({
      config,
      telemetry: createNoopTelemetry(),
      logger: silent,
    });
    const models = createModelService({
      ollama,
      cacheTtlMs: 0,
      psTimeoutMs: 1000,
      initialModel: 'llama3.2:3b',
      store,
      telemetry: createNoopTelemetry(),
      logger,
    });
    await ollama.preload('llama3.2:3b');
    const result = await models.switchModel({ model: 'qwen3:8b' });
    assert.equal(result.active, 'qwen3:8b');
    const loaded = new Set(sim.loaded().map((m) => m.name));
    assert.ok(loaded.has('llama3.2:3b') && loaded.has('qwen3:8b'));
    const warning = lines().find((l) => /previous model left loaded/.test(String(l.message)));
    assert.deepEqual(warning?.replicas, ['frozen']);
    await ollama.close();
  });
});
