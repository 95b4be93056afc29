import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import express, { type Response } from 'express';
import { streamSignals } from '../../middleware/client-signal';

type Signals = ReturnType<typeof streamSignals>;

/**
 * A server whose one route takes the signals, writes a first chunk and hands the response to
 * `then`; resolves with the signals once the response has closed.
 */
async function serve(
  then: (res: Response, signals: Signals) => void,
  client: (port: number) => Promise<void>,
): Promise<Signals> {
  let closed!: (signals: Signals) => void;
  const done = new Promise<Signals>((resolve) => (closed = resolve));
  const app = express();
  app.get('/answer', (_req, res) => {
    const signals = streamSignals(res);
    res.once('close', () => setImmediate(() => closed(signals)));
    res.write('first\n');
    then(res, signals);
  });
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await client((server.address() as net.AddressInfo).port);
    return await done;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** GETs /answer and reads the whole body. */
const readAll = (port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/answer' }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', reject);
  });

/** GETs /answer and goes away after the first chunk. */
const leaveAfterFirstChunk = (port: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/answer' }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });

describe('streamSignals', () => {
  it('aborts left and stop, with an AbortError, when the client goes away mid-answer', async () => {
    const { left, stop } = await serve(() => undefined, leaveAfterFirstChunk);
    assert.equal(left.aborted, true);
    assert.equal(stop.signal.aborted, true);
    assert.equal((left.reason as DOMException).name, 'AbortError');
    assert.equal(stop.signal.reason, left.reason);
  });

  it('aborts only stop when the gateway ends the answer itself', async () => {
    const reason = new Error('shutting down');
    const { left, stop } = await serve((res, signals) => {
      signals.stop.abort(reason);
      res.end();
    }, readAll);
    assert.equal(stop.signal.reason, reason);
    assert.equal(left.aborted, false);
  });

  it('aborts nothing when the answer finished before the connection closed', async () => {
    const { left, stop } = await serve((res) => res.end('last\n'), readAll);
    assert.equal(left.aborted, false);
    assert.equal(stop.signal.aborted, false);
  });
});
