import assert from 'node:assert/strict';
import net from 'node:net';
import { readNdjson } from '../support/ndjson-reader';
import { assertMatchesSchema } from '../support/schema-assert';
import { useServerAgainstSimulator, type ServerProcess } from '../support/server-process';
import { createSchemaRegistry } from '../../src/validation';

const schemas = createSchemaRegistry();
/** 'pulling manifest', 6 layer lines, 'verifying…', 'writing manifest', 'success'. */
const PULL_LINES = 10;

function connectOutcome(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function pullStream(server: ServerProcess, model: string): Promise<Response> {
  return fetch(`${server.url}/ollama/models/pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ model }),
  });
}

describe('graceful shutdown (the built server in a child process)', function () {
  this.timeout(20_000);
  const harness = useServerAgainstSimulator();

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const server = await harness.start(env);
    const ready = await fetch(`${server.url}/health/ready`);
    assert.equal(ready.status, 200);
    return server;
  }

  describe('when SIGTERM arrives while a slow stream is in flight', () => {
    it('fails readiness at once, lets the stream finish, refuses new connections, exits 0', async () => {
      const delayMs = 1000;
      const timeoutMs = 8000;
      const srv = await start({
        SHUTDOWN_DELAY_MS: String(delayMs),
        SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
      });
      harness.sim.setChunkLatency(300);
      const stream = readNdjson(await pullStream(srv, 'smollm2:135m'));
      assert.equal((await stream.next())?.status, 'pulling manifest');

      const signalledAt = Date.now();
      srv.child.kill('SIGTERM');
      await srv.waitForLine((l) => l.message === 'shutdown requested');
      const ready = await fetch(`${srv.url}/health/ready`);
      const readyAfterMs = Date.now() - signalledAt;
      assert.equal(ready.status, 503);
      assert.ok(readyAfterMs < delayMs, `readiness failed after ${readyAfterMs} ms`);
      const body = (await ready.json()) as { failing: Array<{ name: string }> };
      assertMatchesSchema(schemas, 'health-ready.response', body);
      assert.deepEqual(
        body.failing.map((f) => f.name),
        ['draining'],
      );
      assert.equal(ready.headers.get('connection'), 'close');

      // Once the listener closed (and two more chunks went by), new connections are refused
      // while the stream goes on.
      await srv.waitForLine((l) => String(l.message).startsWith('shutdown: closing the listener'));
      const seen = stream.lines.length; // lines produced after the listener closed, not before
      while (stream.lines.length < seen + 2) await stream.next();
      assert.equal(await connectOutcome(srv.port), 'ECONNREFUSED');
      assert.ok(stream.lines.length < PULL_LINES, 'the stream was still running');

      const lines = await stream.done;
      assert.equal(lines.length, PULL_LINES);
      assert.deepEqual(lines.at(-1), { status: 'success' });
      const { code } = await srv.exited;
      const totalMs = Date.now() - signalledAt;
      assert.equal(code, 0);
      assert.ok(totalMs >= delayMs, `exited after ${totalMs} ms`);
      assert.ok(totalMs < delayMs + timeoutMs, `exited after ${totalMs} ms`);
      assert.ok(srv.lines.some((l) => l.message === 'shutdown complete'));
    });
  });

  describe('when a stream outlives SHUTDOWN_TIMEOUT_MS', () => {
    it('ends it with a SHUTTING_DOWN error line, aborts the upstream pull, exits 0', async () => {
      const delayMs = 100;
      const timeoutMs = 1000;
      const srv = await start({
        SHUTDOWN_DELAY_MS: String(delayMs),
        SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
      });
      const gate = harness.sim.hold(); // the pull sends its first line, then waits forever
      try {
        const res = await pullStream(srv, 'smollm2:135m');
        const stream = readNdjson(res);
        assert.equal((await stream.next())?.status, 'pulling manifest');
        // The same pull answered as one JSON body (no Accept: application/x-ndjson).
        const pulled = harness.sim.waitFor('request', (e) => e.path === '/api/pull');
        const plain = fetch(`${srv.url}/ollama/models/pull`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'qwen3:8b' }),
        });
        await pulled;
        const aborted = harness.sim.waitFor('aborted');

        const signalledAt = Date.now();
        srv.child.kill('SIGTERM');
        const lines = await stream.done; // resolves: the body ended, it was not cut
        const endedAfterMs = Date.now() - signalledAt;
        const last = lines.at(-1) as { error: { code: string; request_id: string } };
        assert.equal(lines.length, 2);
        assert.equal(last.error.code, 'SHUTTING_DOWN');
        assert.equal(last.error.request_id, res.headers.get('x-request-id'));
        assert.ok(endedAfterMs >= delayMs + timeoutMs, `ended after ${endedAfterMs} ms`);
        await aborted;
        // The plain one gets a whole answer too: 503 SHUTTING_DOWN, not a cut connection.
        const answer = await plain;
        assert.equal(answer.status, 503);
        assert.equal(
          ((await answer.json()) as { error: { code: string } }).error.code,
          'SHUTTING_DOWN',
        );

        const { code } = await srv.exited;
        const totalMs = Date.now() - signalledAt;
        assert.equal(code, 0);
        assert.ok(totalMs < delayMs + timeoutMs + 1500, `exited after ${totalMs} ms`);
        const drained = await srv.waitForLine((l) => l.message === 'shutdown: requests drained');
        assert.deepEqual(drained.streams, { completed: 0, ended: 2 });
      } finally {
        gate.release();
      }
    });
  });

  describe('when a second signal arrives during the drain', () => {
    it('exits at once with a non-zero code', async () => {
      const srv = await start({ SHUTDOWN_DELAY_MS: '60000' });
      const signalledAt = Date.now();
      srv.child.kill('SIGTERM');
      await srv.waitForLine((l) => l.message === 'shutdown requested');
      srv.child.kill('SIGINT');
      const { code } = await srv.exited;
      assert.equal(code, 130);
      // Far below the 60 s delay it would otherwise have waited.
      assert.ok(Date.now() - signalledAt < 10_000);
      assert.match(srv.stderr(), /second SIGINT during shutdown/);
    });
  });
});
