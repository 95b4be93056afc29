import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createAdmission, type Slot } from '../../services/ollama/admission';
import { createRedisAdmission, type RedisAdmission } from '../../services/ollama/admission-redis';
import { createRedisConnection, type RedisConnection } from '../../services/stores/redis';
import type { AdmissionTicket } from '../../src/principal';
import { createCaptureLogger } from '../support/capture-logger';
import { freePort } from '../support/listen';
import { createManualClock, type ManualClock } from '../support/manual-clock';
import { until as untilTurns } from '../support/ollama-simulator/settle';
import { startRedis, stopRedis } from '../support/redis-server';

/** How long a released slot stays with its replica for the next request of its key. */
const IDLE_MS = 100;

const codeOf = (code: string) => (err: { code?: string }) => err.code === code;

/** Loop turns until `cond` holds: enough for Redis round trips on a busy machine. */
const until = (cond: () => boolean) => untilTurns(cond, 50_000);

/**
 * Two "replicas" (each its own connection and admission) share one backend's admission through
 * a real redis-server. Queue timeouts and lease renewals run on a manual clock; grants arrive
 * through Redis pub/sub as they do in production.
 */
describe('admission shared through Redis (services/ollama/admission-redis)', function () {
  this.timeout(20_000);
  let redis: ChildProcess;
  const connections: RedisConnection[] = [];
  let admissions: RedisAdmission[] = [];
  let backend = 0;

  before(async () => {
    const port = await freePort();
    redis = await startRedis(port);
    for (const _ of [1, 2]) {
      const connection = createRedisConnection({
        url: `redis://127.0.0.1:${port}`,
        logger: createCaptureLogger().logger,
        commandTimeoutMs: 2000,
        prefix: 'test:',
      });
      await connection.start();
      connections.push(connection);
    }
  });

  after(async () => {
    for (const c of connections) await c.stop();
    await stopRedis(redis);
  });

  afterEach(() => {
    for (const a of admissions) a.stop();
    admissions = [];
  });

  /** One admission per connection for a fresh backend id (so every test has its own keys). */
  const replicas = async (maxConcurrency: number, maxQueue = 100, keyMaxConcurrency = 2) => {
    backend += 1;
    const clock: ManualClock = createManualClock({ now: Date.now });
    const built = connections.map((redis, i) =>
      createRedisAdmission({
        redis,
        backendId: String(backend),
        replicaId: `replica-${i}`,
        maxConcurrency,
        maxQueue,
        timeoutMs: 5000,
        keyMaxConcurrency,
        leaseMs: 5000,
        idleMs: IDLE_MS,
        local: createAdmission({ maxConcurrency: 1, maxQueue, timeoutMs: 5000, clock }),
        clock,
        logger: createCaptureLogger().logger,
      }),
    );
    for (const a of built) a.start();
    admissions.push(...built);
    // Each subscribes to the grant channel on a connection of its own.
    await until(() => built.every((a) => a.stats().mode === 'global'));
    await settleSubscriptions(`test:adm:{${backend}}:granted`, built.length);
    return { clock, r1: built[0]!, r2: built[1]! };
  };

  /** Waits until `count` connections subscribed to the channel (PUBSUB NUMSUB). */
  const settleSubscriptions = async (channel: string, count: number) => {
    for (;;) {
      const reply = (await connections[0]!.send(['PUBSUB', 'NUMSUB', channel])) as [string, number];
      if (Number(reply[1]) >= count) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  const redisCount = async (key: string): Promise<number> =>
    Number(await connections[0]!.send(['ZCARD', `test:adm:{${backend}}:${key}`]));

  /** Resolves once every slot of the test's backend is released in Redis (kept ones too). */
  const drained = async (clock: ManualClock) => {
    // A kept slot goes back after one or two idle times.
    clock.advance(IDLE_MS);
    clock.advance(IDLE_MS);
    while ((await redisCount('holders')) > 0) await new Promise((r) => setImmediate(r));
  };

  it('never grants more than maxConcurrency across replicas, and wakes a waiter on another replica', async () => {
    const { r1, r2, clock } = await replicas(2);
    const a = await r1.acquire(undefined, { key: 'A' });
    const b = await r2.acquire(undefined, { key: 'B' });
    const waiting = r2.acquire(undefined, { key: 'C' });
    await until(() => r2.stats().queued === 1);
    assert.equal(await redisCount('holders'), 2);
    a.release();
    const c = await waiting; // granted through the channel, without any renewal (manual clock)
    assert.equal(await redisCount('holders'), 2);
    for (const slot of [b, c]) slot.release();
    await drained(clock);
  });

  it('keeps a released slot for its replica’s next request of the key while nobody waits, and hands it to a waiter queued elsewhere', async () => {
    const { r1, r2, clock } = await replicas(1);
    const calls: string[] = [];
    const stopCounting = connections[0]!.onCommand((group) => void calls.push(group));
    const first = await r1.acquire(undefined, { key: 'A' });
    first.release();
    const again = await r1.acquire(undefined, { key: 'A' });
    stopCounting();
    assert.deepEqual(calls, ['admission'], 'the second request reused the kept slot');
    again.release();
    assert.equal(await redisCount('holders'), 1, 'a kept slot still counts across replicas');
    // The other replica's request is queued behind it: the "?" it publishes frees it at once
    // (the manual clock never reaches the idle time here).
    const b = await r2.acquire(undefined, { key: 'B' });
    b.release();
    await until(() => r1.stats().queued === 0 && r2.stats().queued === 0);
    // Not reused within the idle time, a kept slot goes back by itself.
    (await r1.acquire(undefined, { key: 'A' })).release();
    assert.equal(await redisCount('holders'), 1);
    await drained(clock);
  });

  it('serves another replica’s key within one slot turnover, ahead of a long queue of one key', async () => {
    const { r1, r2 } = await replicas(2);
    const order: string[] = [];
    const held: Slot[] = [];
    const take = (replica: RedisAdmission, name: string, ticket: AdmissionTicket) =>
      replica.acquire(undefined, ticket).then((slot) => {
        order.push(name);
        held.push(slot);
      });
    await take(r1, 'a0', { key: 'A' });
    await take(r1, 'a1', { key: 'A' });
    const queuedA = [2, 3, 4, 5, 6].map((n) => take(r1, `a${n}`, { key: 'A' }));
    await until(() => r1.stats().queued === 5);
    const b = take(r2, 'b', { key: 'B' });
    await until(() => r2.stats().queued === 6);
    held.shift()!.release();
    await b;
    assert.deepEqual(order, ['a0', 'a1', 'b']);
    // The rest drain as slots are released (A's queued requests, in their order).
    while (order.length < 8 || held.length > 0) {
      held.shift()?.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(queuedA);
    assert.deepEqual(order.slice(3), ['a2', 'a3', 'a4', 'a5', 'a6']);
  });

  it('holds a key to its cap across replicas while other keys use the free slots', async () => {
    const { r1, r2 } = await replicas(3, 100, 1);
    const a = await r1.acquire(undefined, { key: 'A' });
    const second = r2.acquire(undefined, { key: 'A' });
    const b = await r2.acquire(undefined, { key: 'B' });
    await until(() => r2.stats().queued === 1);
    assert.equal(r2.stats().inFlight, 2, 'one slot stays free: A is at its cap');
    a.release();
    (await second).release();
    b.release();
  });

  it('counts QUEUE_MAX over both replicas, and leaves nothing behind on timeout and abort', async () => {
    const { r1, r2, clock } = await replicas(1, 2);
    const held = await r1.acquire(undefined, { key: 'A' });
    const timesOut = r1.acquire(undefined, { key: 'B' });
    const controller = new AbortController();
    const aborted = r2.acquire(controller.signal, { key: 'C' });
    await until(() => r2.stats().queued === 2);
    await assert.rejects(r2.acquire(undefined, { key: 'D' }), codeOf('QUEUE_FULL'));
    controller.abort(new Error('client left'));
    await assert.rejects(aborted, /client left/);
    clock.advance(5000);
    await assert.rejects(timesOut, codeOf('QUEUE_TIMEOUT'));
    await until(() => r1.stats().queued === 0);
    held.release();
    await drained(clock);
    assert.equal(await redisCount('waiters'), 0);
  });

  it('refuses the newest request of the key with the most waiting when another key finds the queue full', async () => {
    const { r1, r2, clock } = await replicas(1, 2);
    const held = await r1.acquire(undefined, { key: 'A' });
    const first = r1.acquire(undefined, { key: 'A' });
    const newest = r1.acquire(undefined, { key: 'A' });
    await until(() => r1.stats().queued === 2);
    // B on the other replica takes the place of A's newest, which learns it through the channel.
    const b = r2.acquire(undefined, { key: 'B' });
    await assert.rejects(newest, codeOf('QUEUE_FULL'));
    await assert.rejects(r2.acquire(undefined, { key: 'B' }), codeOf('QUEUE_FULL'));
    held.release();
    (await b).release(); // B's turn comes first: A has had one
    (await first).release();
    await drained(clock);
    assert.equal(await redisCount('waiters'), 0);
  });
});
