import assert from 'node:assert/strict';
import { AppError } from '../../src/errors';
import { useRedis } from '../support/redis-fixture';

/** The shared connection's command deadline, against a real redis-server that stops answering. */
describe('the shared Redis connection (real redis-server)', function () {
  this.timeout(20_000);
  const redis = useRedis();

  it('fails a command Redis holds past the deadline with REDIS_UNAVAILABLE, with or without a signal of its own', async () => {
    // The fixture's deadline is 1000 ms; Redis holds every client for 1500 ms.
    const [connection, pauser] = [await redis.connect(), await redis.connect()];
    await connection.send(['SET', 'k', 'v']);
    await pauser.send(['CLIENT', 'PAUSE', '1500', 'ALL']);
    const unavailable = (err: unknown) =>
      err instanceof AppError && err.code === 'REDIS_UNAVAILABLE';
    await Promise.all([
      assert.rejects(connection.send(['GET', 'k']), unavailable),
      assert.rejects(connection.send(['GET', 'k']), unavailable),
      assert.rejects(
        connection.send(['GET', 'k'], { signal: new AbortController().signal }),
        unavailable,
      ),
    ]);
    // Once Redis answers again, so does the connection.
    while ((await connection.send(['GET', 'k']).catch(() => null)) !== 'v') {
      await new Promise((resolve) => setImmediate(resolve));
    }
  });

  it("ends a command waiting on Redis when its caller's signal aborts, before the deadline", async () => {
    // The fixture's deadline is 1000 ms; Redis holds every client for 1500 ms.
    const [connection, pauser] = [await redis.connect(), await redis.connect()];
    await connection.send(['SET', 'k', 'v']);
    await pauser.send(['CLIENT', 'PAUSE', '1500', 'ALL']);
    const caller = new AbortController();
    const started = performance.now();
    const waiting = connection.send(['GET', 'k'], { signal: caller.signal });
    setImmediate(() => caller.abort(new Error('client left')));
    await assert.rejects(waiting, (err: unknown) => err instanceof AppError);
    assert.ok(performance.now() - started < 900, 'ended by the signal, not by the deadline');
    while ((await connection.send(['GET', 'k']).catch(() => null)) !== 'v') {
      await new Promise((resolve) => setImmediate(resolve));
    }
  });

  it('answers REDIS_UNAVAILABLE when Redis cannot serve (OOM at maxmemory), and keeps other error replies', async () => {
    const connection = await redis.connect();
    const admin = await redis.connect();
    await connection.send(['SET', 'a-string', 'v']);
    await admin.send(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    await admin.send(['CONFIG', 'SET', 'maxmemory', '1']);
    try {
      await assert.rejects(
        connection.send(['SET', 'k2', 'v']),
        (err: unknown) =>
          err instanceof AppError && err.code === 'REDIS_UNAVAILABLE' && err.retryAfterS === 1,
      );
      // A command that is wrong stays Redis' answer: the caller's bug, not an outage.
      await assert.rejects(
        connection.send(['LLEN', 'a-string']),
        (err: unknown) => err instanceof Error && err.message.startsWith('WRONGTYPE'),
      );
    } finally {
      await admin.send(['CONFIG', 'SET', 'maxmemory', '0']); // the test server's own: no limit
    }
    assert.equal(await connection.send(['SET', 'k2', 'v']), 'OK');
  });
});
