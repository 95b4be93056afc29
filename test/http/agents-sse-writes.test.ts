import assert from 'node:assert/strict';
import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import { createErrorHandler } from '../../middleware/error-handler';
import { streamRun } from '../../routers/agents-sse';
import { AppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { createManualClock } from '../support/manual-clock';
import { createDrivenRun, type DrivenRun } from '../support/run-handles';
import { openSse } from '../support/sse-client';

/** Resolves after everything queued for this turn of the event loop ran (ticks included). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SSE writes of a streamed run (routers/agents-sse)', () => {
  let server: http.Server;
  let socket: Socket | undefined;
  let record: DrivenRun;

  before(async () => {
    record = await createDrivenRun('run_writes');
    const app = express();
    // A run that cannot be followed (Redis unreachable while its events are read).
    app.get('/unfollowable', async (_req, res) => {
      const handle = {
        ...record.handle,
        follow: () =>
          Promise.reject(new AppError('REDIS_UNAVAILABLE', undefined, { retryAfterS: 1 })),
      };
      await streamRun(res, handle, {
        after: 0,
        cancelOnClose: false,
        heartbeatMs: 60_000,
        clock: createManualClock(),
      });
    });
    app.get('/stream', async (_req, res) => {
      socket = res.socket ?? undefined;
      await streamRun(res, record.handle, {
        after: 0,
        cancelOnClose: false,
        heartbeatMs: 60_000,
        clock: createManualClock(),
      });
    });
    app.use(createErrorHandler({ logger: createLogger({ level: 'silent', format: 'json' }) }));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('answers a follow that fails before anything was sent with the error, not an empty 200', async () => {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/unfollowable`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'REDIS_UNAVAILABLE');
  });

  it('flushes the first event of a burst at once and sends the rest of the burst together', async () => {
    const { port } = server.address() as AddressInfo;
    const sse = await openSse(`http://127.0.0.1:${port}/stream`);
    await nextTurn(); // the headers have left
    assert.ok(socket);
    assert.equal(socket.writableLength, 0);
    // Each call of the socket's own write methods is one write system call.
    let writes = 0;
    const s = socket as Socket & {
      _write: (...args: unknown[]) => void;
      _writev: (...args: unknown[]) => void;
    };
    const [write, writev] = [s._write.bind(s), s._writev.bind(s)];
    s._write = (...args) => ((writes += 1), write(...args));
    s._writev = (...args) => ((writes += 1), writev(...args));

    // Three deltas in one turn, as when several of Ollama's chunks arrive in one read.
    const sent: number[] = [];
    for (const text of ['Al', 'pha', ' beta']) {
      record.emit('message.delta', { step_index: 0, text });
      sent.push(socket.bytesWritten);
    }
    assert.equal(writes, 1, 'the first token went to the kernel at once');
    assert.equal(socket.writableLength, 0);
    assert.equal(sent[1], sent[0], 'the second waits for the end of the turn');
    assert.equal(sent[2], sent[0], 'the third too');
    await nextTurn();
    assert.equal(writes, 2, 'the rest of the burst left in one write at the end of the turn');
    assert.ok(socket.bytesWritten > sent[0]!);
    assert.equal(socket.writableLength, 0);

    // A later burst starts over: its first event leaves at once too.
    record.emit('message.delta', { step_index: 0, text: ' gamma' });
    assert.equal(writes, 3);
    assert.equal(socket.writableLength, 0);

    record.emit('run.completed', { run: record.run });
    await sse.ended;
    const received = sse.events();
    assert.deepEqual(
      received.filter((e) => e.event === 'message.delta').map((e) => e.data.text),
      ['Al', 'pha', ' beta', ' gamma'],
    );
    assert.equal(received.at(-1)?.event, 'run.completed');
  });
});
