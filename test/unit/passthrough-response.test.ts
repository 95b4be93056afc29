import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import express from 'express';
import { ollamaErrorShape } from '../../middleware/compat-error-shape';
import { sendPassthrough } from '../../routers/passthrough-response';

const CHUNK = Buffer.alloc(256 * 1024, 'x');
const CHUNKS = 24;

describe('sendPassthrough', () => {
  it('waits for a slow reader as often as it must and leaves no listener behind', async () => {
    let listeners: { before: number; after: number } | undefined;
    let drains = 0;
    const app = express();
    app.post('/stream', (req, res, next) => {
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < CHUNKS; i += 1) yield CHUNK;
      }
      res.on('drain', () => (drains += 1));
      const before = res.listenerCount('close') + res.listenerCount('drain');
      sendPassthrough(
        req,
        res,
        {
          status: 200,
          contentType: 'application/x-ndjson',
          streamed: true,
          chunks: chunks(),
          timings: { queueMs: 0 },
        },
        { shape: ollamaErrorShape, stop: new AbortController() },
      ).then(() => {
        listeners = { before, after: res.listenerCount('close') + res.listenerCount('drain') };
      }, next);
    });
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    try {
      // A raw socket read only between turns of the event loop, with a small receive buffer,
      // so the response fills its buffers over and over and the router waits for `drain`.
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(
        'POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      );
      let received = 0;
      socket.pause();
      const ended = once(socket, 'end');
      let reading = true;
      const readSome = (): void => {
        const chunk = socket.read(64 * 1024) as Buffer | null;
        received += chunk?.length ?? 0;
        if (reading) setImmediate(readSome);
      };
      readSome();
      await ended;
      reading = false;
      for (let chunk = socket.read(); chunk !== null; chunk = socket.read()) {
        received += (chunk as Buffer).length;
      }
      assert.ok(received > CHUNKS * CHUNK.length, `read ${received} bytes`);
      assert.ok(listeners, 'the stream ended');
      assert.ok(drains >= 5, `the router waited for drain ${drains} times`);
      assert.equal(listeners.after, listeners.before, 'no close or drain listener left behind');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
