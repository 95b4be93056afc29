import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createLifecycle,
  type EndStreamWithError,
  type Lifecycle,
} from '../../services/health/lifecycle';
import type { AppError } from '../../src/errors';
import { createCaptureLogger } from '../support/capture-logger';
import { createManualClock } from '../support/manual-clock';

/** A real server whose responses are SSE-like streams the test writes to. */
async function streamingServer(lifecycle: Lifecycle, endWithError?: EndStreamWithError) {
  const open: ServerResponse[] = [];
  const opened: Array<() => void> = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: first\n\n');
    lifecycle.trackStream(
      res,
      endWithError ??
        ((err: AppError) => {
          res.write(`event: error\ndata: ${JSON.stringify({ code: err.code })}\n\n`);
          res.end();
        }),
    );
    open.push(res);
    opened.shift()?.();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** Starts a request and resolves with its full body once the response arrived. */
  const request = async () => {
    const ready = new Promise<void>((resolve) => opened.push(resolve));
    const res = await fetch(url);
    await ready;
    return { res, body: res.text(), stream: open[open.length - 1]! };
  };
  return { server, request, close: () => server.close() };
}

describe('the lifecycle', () => {
  let cleanup: Array<() => void> = [];
  afterEach(() => {
    cleanup.forEach((fn) => fn());
    cleanup = [];
  });

  it('is not draining until beginDrain, then draining for good', () => {
    const lifecycle = createLifecycle({
      logger: createCaptureLogger().logger,
      clock: createManualClock(),
    });
    assert.equal(lifecycle.isDraining(), false);
    lifecycle.beginDrain();
    lifecycle.beginDrain();
    assert.equal(lifecycle.isDraining(), true);
  });

  describe('when every stream finishes before the deadline', () => {
    it('resolves as soon as the last one closes and ends none', async () => {
      const clock = createManualClock();
      const lifecycle = createLifecycle({ logger: createCaptureLogger().logger, clock });
      const srv = await streamingServer(lifecycle);
      cleanup.push(srv.close);
      const a = await srv.request();
      const b = await srv.request();
      assert.equal(lifecycle.openStreams(), 2);
      const drained = lifecycle.drainStreams(30_000);
      assert.deepEqual(clock.pending(), [30_000]);
      a.stream.end('data: last\n\n');
      b.stream.end('data: last\n\n');
      assert.deepEqual(await drained, { completed: 2, ended: 0 });
      assert.equal(await a.body, 'data: first\n\ndata: last\n\n');
      assert.deepEqual(clock.pending(), [], 'the deadline timer is cleared');
    });
  });

  describe('when a stream outlives the deadline', () => {
    it('ends it with a SHUTTING_DOWN error event, not a cut socket', async () => {
      const clock = createManualClock();
      const capture = createCaptureLogger();
      const lifecycle = createLifecycle({ logger: capture.logger, clock });
      const srv = await streamingServer(lifecycle);
      cleanup.push(srv.close);
      const fast = await srv.request();
      const slow = await srv.request();
      const drained = lifecycle.drainStreams(1000);
      fast.stream.end();
      await fast.body;
      clock.fireNext();
      assert.deepEqual(await drained, { completed: 1, ended: 1 });
      // The body resolves (no "terminated" error): the response ended properly.
      assert.equal(
        await slow.body,
        'data: first\n\nevent: error\ndata: {"code":"SHUTTING_DOWN"}\n\n',
      );
      assert.equal(lifecycle.openStreams(), 0);
      assert.ok(
        capture.lines().some((l) => l.message === 'shutdown deadline reached: ending open streams'),
      );
    });

    it('ends the response itself when the writer throws or forgets to end it', async () => {
      const clock = createManualClock();
      const capture = createCaptureLogger();
      const lifecycle = createLifecycle({ logger: capture.logger, clock });
      const srv = await streamingServer(lifecycle, () => {
        throw new Error('writer bug');
      });
      cleanup.push(srv.close);
      const s = await srv.request();
      const drained = lifecycle.drainStreams(1000);
      clock.fireNext();
      assert.deepEqual(await drained, { completed: 0, ended: 1 });
      assert.equal(await s.body, 'data: first\n\n');
      assert.ok(
        capture.lines().some((l) => l.message === 'stream writer failed to end its stream'),
      );
    });
  });

  it('forgets a stream whose client went away, and one the writer untracks', async () => {
    const lifecycle = createLifecycle({
      logger: createCaptureLogger().logger,
      clock: createManualClock(),
    });
    const seen: ServerResponse[] = [];
    const untracks: Array<() => void> = [];
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      res.write('x');
      untracks.push(lifecycle.trackStream(res, () => undefined));
      seen.push(res);
    });
    cleanup.push(() => server.close());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.equal(lifecycle.openStreams(), 1);
    const closed = once(seen[0]!, 'close');
    ac.abort();
    await closed;
    assert.equal(lifecycle.openStreams(), 0);

    const res2 = await fetch(`http://127.0.0.1:${port}`);
    assert.equal(lifecycle.openStreams(), 1);
    untracks[1]!();
    assert.equal(lifecycle.openStreams(), 0);
    assert.deepEqual(await lifecycle.drainStreams(1000), { completed: 0, ended: 0 });
    seen[1]!.end();
    await res2.text();
  });
});
