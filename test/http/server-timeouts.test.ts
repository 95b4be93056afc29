import assert from 'node:assert/strict';
import net from 'node:net';
import { buildTestApp, type TestApp } from '../support/build-app';

/**
 * The slow-loris timeouts act when documented: Node only checks them every
 * `connectionsCheckingInterval` (30 s unless set), so a HEADERS_TIMEOUT_MS of 1 s would otherwise
 * take up to 30 s to cut a client that never finishes its headers.
 */
describe('server timeouts (src/http-server)', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('answers a client that never finishes its headers within HEADERS_TIMEOUT_MS plus a second or two, not 30 s', async function () {
    this.timeout(8_000);
    t = await buildTestApp({
      simulator: false,
      env: {
        OLLAMA_HOST: 'http://127.0.0.1:9',
        HEADERS_TIMEOUT_MS: '1000',
        REQUEST_TIMEOUT_MS: '2000',
      },
    });
    const { port } = await t.listen();
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const started = performance.now();
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    await new Promise<void>((resolve) => socket.once('close', resolve));
    const tookMs = performance.now() - started;
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.ok(tookMs >= 900 && tookMs < 4_000, `cut after ${Math.round(tookMs)} ms`);
  });
});
