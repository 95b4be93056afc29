import assert from 'node:assert/strict';
import type { RunEvent } from '../../services/agents/events';
import type { RunRepository } from '../../services/agents/run-repository';
import { createRedisIdempotencyRepository } from '../../services/agents/idempotency-redis';
import { createRedisRunRepository } from '../../services/agents/run-repository-redis';
import { createSystemClock } from '../../src/clock';
import { createLogger } from '../../src/logger';
import { idempotencyContract } from '../support/idempotency-contract';
import { createManualClock } from '../support/manual-clock';
import { useRedis } from '../support/redis-fixture';
import { pauseState, runRepositoryContract } from '../support/run-repository-contract';
import { queuedRun } from '../support/run-handles';

/** Polls `check` (each try a Redis round trip) until it holds; the test's timeout bounds it. */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
}

describe('the Redis repositories (real redis-server)', function () {
  this.timeout(20_000);
  const redis = useRedis();

  runRepositoryContract('Redis', async ({ max, ttlMs }) => {
    const clock = createManualClock();
    const runs = createRedisRunRepository({
      redis: await redis.connect(),
      max,
      ttlMs,
      leaseMs: 5000,
      clock,
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
    return { runs, advance: (ms) => clock.advance(ms) };
  });

  idempotencyContract('Redis', async ({ ttlMs }) => {
    let now = 1_000;
    const keys = createRedisIdempotencyRepository({
      redis: await redis.connect(),
      ttlMs,
      now: () => now,
    });
    return { keys, advance: (ms) => void (now += ms) };
  });
});

describe('runs shared by two replicas through Redis (real redis-server)', function () {
  this.timeout(20_000);
  const redis = useRedis();
  const logger = createLogger({ level: 'silent', format: 'json' });
  const repos: RunRepository[] = [];
  afterEach(async () => {
    await Promise.all(repos.splice(0).map((r) => r.stop()));
  });

  async function replicas(leaseMs = 5000) {
    const prefix = redis.newPrefix();
    const make = async (node: string) => {
      const runs = createRedisRunRepository({
        redis: await redis.connect({ prefix }),
        max: 10,
        ttlMs: 60_000,
        leaseMs,
        clock: createSystemClock(),
        logger,
        blockMs: 2000,
        node,
      });
      repos.push(runs);
      runs.start();
      return runs;
    };
    return { a: await make('a'), b: await make('b'), c: await make('c'), make, prefix };
  }

  /**
   * A writer A (node `a`, its timers by hand, its connection's commands counted by group) and a
   * reader B on the same prefix. Time is B's too, so a finished run's TTL counts alike.
   */
  async function writerAndReader(max: number) {
    const prefix = redis.newPrefix();
    const connection = await redis.connect({ prefix });
    const writes: string[] = [];
    connection.onCommand((group) => void writes.push(group));
    const clock = createManualClock({ now: () => Date.now() });
    const options = { max, ttlMs: 60_000, leaseMs: 5000, logger };
    const a = createRedisRunRepository({ redis: connection, clock, node: 'a', ...options });
    const b = createRedisRunRepository({
      redis: await redis.connect({ prefix }),
      clock: createSystemClock(),
      ...options,
    });
    repos.push(a, b);
    return { prefix, connection, writes, clock, a, b };
  }

  const nextEvent = (runs: RunRepository, id: string, after: number) =>
    new Promise<RunEvent>((resolve, reject) => {
      let stop: (() => void) | undefined;
      runs
        .follow(id, after, (event) => {
          stop?.();
          resolve(event);
        })
        .then((s) => (stop = s), reject);
    });

  it('reads, replays and follows on B a run that A executes, and carries a cancel from B to A', async () => {
    const { a, b } = await replicas();
    const run = queuedRun('run_shared');
    await a.create(run, 'alice', { durable: true });
    await a.append(run.id, 'run.created', { status: 'queued' });
    run.status = 'in_progress';
    await a.append(run.id, 'run.in_progress', { status: 'in_progress' });

    // B sees the run object as A keeps it, replays after a sequence number, and follows live.
    await waitFor(async () => (await b.get(run.id))?.run.status === 'in_progress');
    assert.equal((await b.get(run.id))?.owner, 'alice');
    assert.deepEqual(
      (await b.readAfter(run.id, 1)).map((e) => [e.seq, e.type]),
      [[2, 'run.in_progress']],
    );
    const live = nextEvent(b, run.id, 2);
    await a.append(run.id, 'message.delta', { text: 'hello' });
    const delta = await live;
    assert.deepEqual(delta.data, { run_id: run.id, seq: 3, text: 'hello' });

    // A cancel sent through B reaches A's control listener (once A's subscription is up).
    const heard: string[] = [];
    a.onControl((id, control) => heard.push(`${control} ${id}`));
    await waitFor(async () => {
      await b.requestCancel(run.id);
      return heard.length > 0;
    });
    assert.equal(heard[0], `cancel ${run.id}`);
  });

  it('writes a run that is not durable in batches: its events within deltaFlushMs, its end and release in one call', async () => {
    // deltaFlushMs is its default, 20 ms.
    const { prefix, connection, writes, clock, a, b } = await writerAndReader(10);
    const run = queuedRun('run_batched');
    await a.create(run, 'alice');
    assert.equal(writes.length, 1);
    await a.append(run.id, 'run.created', { status: 'queued' });
    run.status = 'in_progress';
    await a.append(run.id, 'run.in_progress', { status: 'in_progress' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(await b.readAfter(run.id, 0), []);
    assert.equal(writes.length, 1);

    clock.advance(20);
    await waitFor(async () => (await b.readAfter(run.id, 0)).length === 2);
    assert.equal((await b.get(run.id))?.run.status, 'in_progress');
    assert.equal(writes.length, 2);

    // The end: the last event, the status and the release of the lease, in one call.
    run.status = 'completed';
    await a.append(run.id, 'run.completed', { status: 'completed' });
    await a.updateStatus(run.id, 'completed');
    assert.equal(writes.length, 3);
    assert.equal((await b.get(run.id))?.run.status, 'completed');
    assert.deepEqual(
      (await b.readAfter(run.id, 2)).map((e) => e.type),
      ['run.completed'],
    );
    assert.equal(await connection.send(['ZSCORE', `${prefix}runs:live`, run.id]), null);
    assert.equal(await connection.send(['EXISTS', `${prefix}run:${run.id}:lease`]), 0);
    writes.length = 0;
    await a.release(run.id);
    assert.deepEqual(writes, []);
  });

  it('writes an unannounced run with its first flush, and counts it against RUNS_MAX from then', async () => {
    const { prefix, connection, writes, clock, a, b } = await writerAndReader(2);
    const members = () => connection.send(['ZRANGE', `${prefix}runs`, '0', '-1']);
    const finish = async (runs: RunRepository, id: string) => {
      await runs.append(id, 'run.completed', { status: 'completed' });
      await runs.updateStatus(id, 'completed');
      await runs.release(id);
    };
    // Two kept runs, the first finished: the set is full. B runs the live ones, so A's own
    // bound (RUNS_MAX runs in its memory) leaves room.
    await a.create(queuedRun('run_old'), 'alice');
    await finish(a, 'run_old');
    await b.create(queuedRun('run_live'), 'alice');
    writes.length = 0;

    const run = queuedRun('run_unannounced');
    await a.create(run, 'alice', { unannounced: true });
    await a.append(run.id, 'run.created', { status: 'queued' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(writes, [], 'nothing is written before the first flush');
    assert.equal(await b.get(run.id), undefined);
    assert.equal((await a.get(run.id))?.run.status, 'queued');

    // The first flush writes it whole, held by A, and makes room for it as a create would.
    clock.advance(20);
    // A's reply and B's read come on two connections: either may be handled first.
    await waitFor(async () => writes.length > 0 && (await b.get(run.id)) !== undefined);
    assert.deepEqual(writes, ['runs']);
    assert.deepEqual(await members(), ['run_live', run.id]);
    assert.equal(await connection.send(['GET', `${prefix}run:${run.id}:lease`]), 'a');
    assert.deepEqual(
      (await b.readAfter(run.id, 0)).map((e) => e.type),
      ['run.created'],
    );
    await finish(a, run.id);
    assert.equal((await b.get(run.id))?.run.status, 'completed');

    // Both kept runs still run: an unannounced run that already ran is written all the same.
    await b.create(queuedRun('run_live2'), 'alice');
    const late = queuedRun('run_late');
    await a.create(late, 'alice', { unannounced: true });
    await a.append(late.id, 'run.created', { status: 'queued' });
    await finish(a, late.id);
    assert.deepEqual(await members(), ['run_live', 'run_live2', late.id]);
    assert.deepEqual(
      (await b.readAfter(late.id, 0)).map((e) => e.type),
      ['run.created', 'run.completed'],
    );
    await Promise.all([finish(b, 'run_live'), finish(b, 'run_live2')]);
  });

  it('keeps in Redis what memory keeps of a long run: its first events, every non-token one', async () => {
    const { a, b } = await writerAndReader(10);
    const run = queuedRun('run_long');
    await a.create(run, 'alice', { durable: true });
    await a.append(run.id, 'run.created');
    for (let i = 0; i < 10_050; i += 1) await a.append(run.id, 'message.delta', { text: 'x' });
    for (let i = 0; i < 150; i += 1) await a.append(run.id, 'step.completed', { index: i });
    await a.append(run.id, 'run.completed', { status: 'completed' });
    await a.updateStatus(run.id, 'completed');
    await a.release(run.id);
    // Memory keeps the first 10,000 events, then every event but token deltas (events.ts).
    const stored = await b.readAfter(run.id, 0);
    assert.equal(stored[0]?.type, 'run.created');
    assert.equal(stored.filter((e) => e.type === 'message.delta').length, 9_999);
    assert.equal(stored.filter((e) => e.type === 'step.completed').length, 150);
    assert.equal(stored.at(-1)?.type, 'run.completed');
  });

  it('lets exactly one replica claim a run whose replica stopped renewing its lease', async () => {
    const { a, b, c } = await replicas(500);
    const run = queuedRun('run_orphan');
    await a.create(run, 'alice', { durable: true });
    assert.deepEqual(await b.claimOrphans(), [], 'a held run is nobody else’s');
    await a.stop(); // A's heartbeat stops: its lease lapses after 500 ms.
    let claimed: string[][] = [];
    await waitFor(async () => {
      claimed = await Promise.all([b.claimOrphans(), c.claimOrphans()]);
      return claimed.flat().length > 0;
    });
    assert.deepEqual(claimed.flat(), [run.id]);
    const taker = claimed[0]?.length ? b : c;
    const seq = (await taker.append(run.id, 'run.failed', { status: 'failed' })).seq;
    assert.equal(seq, 1);
    await taker.updateStatus(run.id, 'failed');
    await taker.release(run.id);
    assert.deepEqual(await Promise.all([b.claimOrphans(), c.claimOrphans()]), [[], []]);
    assert.notEqual((await b.get(run.id))?.finishedAt, null);
  });

  it('claims nothing until it has been connected for a whole lease (after an outage, live replicas renew first)', async () => {
    const { a, b, make, prefix } = await replicas(500);
    const run = queuedRun('run_grace');
    await a.create(run, 'alice', { durable: true });
    await a.stop();
    const probe = await redis.connect({ prefix });
    await waitFor(async () => (await probe.send(['EXISTS', `${prefix}run:${run.id}:lease`])) === 0);
    // The lease has lapsed, but a replica that has just connected may be early: the run's own
    // replica could still be on its way back. One connected for longer than a lease claims it.
    const late = await make('late');
    assert.deepEqual(await late.claimOrphans(), []);
    assert.deepEqual(await b.claimOrphans(), [run.id]);
    await b.append(run.id, 'run.failed');
    await b.updateStatus(run.id, 'failed');
    await b.release(run.id);
  });

  it('lets a claimed run go when its takeover failed: another replica claims it again', async () => {
    const { a, b, c } = await replicas(500);
    const run = queuedRun('run_retaken');
    await a.create(run, 'alice', { durable: true });
    await a.stop();
    await waitFor(async () => (await b.claimOrphans()).length > 0);
    // B's takeover failed half-way: B lets go, and B's heartbeat no longer renews the lease.
    await b.unclaim(run.id);
    assert.deepEqual(await c.claimOrphans(), [], 'B still holds it until its lease lapses');
    await waitFor(async () => (await c.claimOrphans()).length > 0);
    await c.append(run.id, 'run.failed');
    await c.updateStatus(run.id, 'failed');
    await c.release(run.id);
    assert.deepEqual(await Promise.all([b.claimOrphans(), c.claimOrphans()]), [[], []]);
  });

  it('tells a replica whose run was taken over, and keeps its later events out of Redis', async () => {
    const { a, b } = await replicas(500);
    const run = queuedRun('run_partitioned');
    await a.create(run, 'alice', { durable: true });
    await a.append(run.id, 'run.created');
    const heard: string[] = [];
    a.onControl((id, control) => heard.push(`${control} ${id}`));
    // A cannot renew (as if cut off from Redis): its lease lapses and B claims the run.
    await a.stop();
    await waitFor(async () => (await b.claimOrphans()).length > 0);
    assert.equal((await b.append(run.id, 'run.failed')).seq, 2);
    await b.updateStatus(run.id, 'failed');
    // A's next write finds the run is B's now: A hears `lost` and writes nothing more.
    run.status = 'in_progress';
    await a.append(run.id, 'run.in_progress');
    await waitFor(async () => heard.length > 0);
    assert.deepEqual(heard, [`lost ${run.id}`]);
    await a.append(run.id, 'run.cancelled');
    await a.updateStatus(run.id, 'cancelled');
    assert.deepEqual(
      (await b.readAfter(run.id, 0)).map((e) => e.type),
      ['run.created', 'run.failed'],
    );
    assert.equal((await b.get(run.id))?.run.status, 'failed');
    await a.release(run.id);
  });

  it('hands a paused run to the replica that claims its pause: one event log, followed throughout', async () => {
    const { a, b, c } = await replicas(500);
    const run = queuedRun('run_paused');
    await a.create(run, 'alice', { durable: true });
    await a.append(run.id, 'run.created');
    // A follower on A, from the start: it goes on hearing the run after A lets go of it.
    const heardOnA: string[] = [];
    const stopA = await a.follow(run.id, 0, (e) => heardOnA.push(`${e.seq} ${e.type}`));
    run.status = 'requires_action';
    await a.append(run.id, 'run.requires_action');
    // The event waits for its pause: B never sees one without the other.
    assert.deepEqual(
      (await b.readAfter(run.id, 0)).map((e) => e.type),
      ['run.created'],
    );
    await a.pause(run.id, run, pauseState('tok_1'));
    assert.deepEqual(
      (await b.readAfter(run.id, 0)).map((e) => e.type),
      ['run.created', 'run.requires_action'],
    );
    assert.equal((await b.getPause(run.id))?.token, 'tok_1');
    // A let go of it (no lease to lapse): a paused run is nobody's orphan.
    assert.deepEqual(await Promise.all([b.claimOrphans(), c.claimOrphans()]), [[], []]);

    const claimed = await b.claimPause(run.id, 'tok_1');
    assert.equal(claimed?.run.status, 'requires_action');
    // B now holds it: its events are numbered after A's, and C can follow and cancel it.
    const onC = nextEvent(c, run.id, 2);
    assert.equal((await b.append(run.id, 'run.in_progress')).seq, 3);
    assert.equal((await onC).type, 'run.in_progress');
    await b.append(run.id, 'run.completed');
    await b.updateStatus(run.id, 'completed');
    await waitFor(async () => heardOnA.length === 4);
    stopA();
    assert.deepEqual(heardOnA, [
      '1 run.created',
      '2 run.requires_action',
      '3 run.in_progress',
      '4 run.completed',
    ]);
    assert.equal((await c.get(run.id))?.run.status, 'completed');
    assert.equal(await c.getPause(run.id), undefined);
    await b.release(run.id);
  });
});
