import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { createSchemaRegistry } from '../../src/validation';
import { assertMatchesSchema } from '../support/schema-assert';
import { useServerAgainstSimulator, type ServerProcess } from '../support/server-process';
import { openSse, type SseClient } from '../support/sse-client';

const MODEL = 'llama3.2:3b';
const TERMINAL = ['run.completed', 'run.incomplete', 'run.failed', 'run.cancelled'];
const schemas = createSchemaRegistry();

function terminalEvents(sse: SseClient): string[] {
  return sse
    .events()
    .map((e) => e.event)
    .filter((t) => TERMINAL.includes(t));
}

describe('graceful shutdown of streamed agent runs (the built server in a child process)', function () {
  this.timeout(20_000);
  const harness = useServerAgainstSimulator(MODEL);

  function start(delayMs: number, timeoutMs: number): Promise<ServerProcess> {
    return harness.start({
      SHUTDOWN_DELAY_MS: String(delayMs),
      SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
    });
  }

  const runStream = (srv: ServerProcess): Promise<SseClient> =>
    openSse(`${srv.url}/agents/run`, { method: 'POST', body: { input: 'go', stream: true } });

  describe('when a short run is in flight at SIGTERM', () => {
    it('lets it finish with every delta and run.completed, then exits 0', async () => {
      const chunks = ['One ', 'two ', 'three ', 'four ', 'five ', 'six'];
      const srv = await start(200, 8000);
      harness.sim.script(MODEL, { chunks });
      harness.sim.setChunkLatency(100);
      const sse = await runStream(srv);
      assert.equal(sse.status, 200);
      await sse.until((raw) => raw.includes('event: message.delta'));

      const signalledAt = Date.now();
      srv.child.kill('SIGTERM');
      await srv.waitForLine((l) => l.message === 'shutdown requested');
      assert.ok(!sse.raw.includes('event: run.completed'), 'the run was still going');
      await sse.ended;

      const events = sse.events();
      const text = events
        .filter((e) => e.event === 'message.delta')
        .map((e) => e.data.text)
        .join('');
      assert.equal(text, chunks.join(''));
      assert.deepEqual(terminalEvents(sse), ['run.completed']);
      const run = events.at(-1)?.data.run as AgentRun;
      assert.equal(run.status, 'completed');
      assert.equal(run.output.text, chunks.join(''));

      const { code } = await srv.exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - signalledAt < 8000, 'exited before the shutdown timeout');
      const drained = await srv.waitForLine((l) => l.message === 'shutdown: requests drained');
      assert.deepEqual(drained.streams, { completed: 1, ended: 0 });
    });
  });

  describe('when a run outlives SHUTDOWN_TIMEOUT_MS', () => {
    it('ends every stream of it with one run.cancelled (SHUTTING_DOWN), aborts Ollama, exits 0', async () => {
      const delayMs = 100;
      const timeoutMs = 1000;
      const srv = await start(delayMs, timeoutMs);
      harness.sim.script(MODEL, { chunks: ['Held ', 'forever'] });
      const gate = harness.sim.hold(); // the first chunk goes out, the rest waits
      try {
        const sse = await runStream(srv);
        await sse.until((raw) => raw.includes('event: message.delta'));
        const runId = String(sse.headers['x-run-id']);
        // A second client following the same run gets the same single terminal event.
        const follower = await openSse(`${srv.url}/agents/runs/${runId}/events`);
        await follower.until((raw) => raw.includes('event: message.delta'));
        const aborted = harness.sim.waitFor('aborted');

        const signalledAt = Date.now();
        srv.child.kill('SIGTERM');
        await Promise.all([sse.ended, follower.ended]);
        const endedAfterMs = Date.now() - signalledAt;
        assert.ok(endedAfterMs >= delayMs + timeoutMs, `ended after ${endedAfterMs} ms`);
        await aborted;

        for (const client of [sse, follower]) {
          assert.deepEqual(terminalEvents(client), ['run.cancelled']);
          assert.equal(client.events().at(-1)?.event, 'run.cancelled', 'nothing after it');
          const run = client.events().at(-1)?.data.run as AgentRun;
          assertMatchesSchema(schemas, 'agent-run.response', run);
          assert.equal(run.id, runId);
          assert.equal(run.status, 'cancelled');
          assert.equal(run.stop_reason, 'cancelled');
          assert.deepEqual(run.error?.details, { code: 'SHUTTING_DOWN' });
          assert.equal(run.error?.retryable, true);
          assert.equal(run.error?.step_index, 0);
          assert.equal(run.output.text, '');
          const step = run.steps[0];
          assert.equal(step?.kind === 'model' && step.status, 'cancelled');
        }
        const ids = sse.events().map((e) => e.id);
        assert.deepEqual(
          ids,
          ids.map((_, i) => i + 1),
        );
        const types = sse.events().map((e) => e.event);
        assert.deepEqual(types.slice(-2), ['step.completed', 'run.cancelled']);

        const { code } = await srv.exited;
        assert.equal(code, 0);
        assert.ok(Date.now() - signalledAt < delayMs + timeoutMs + 1500, 'exited promptly');
        const drained = await srv.waitForLine((l) => l.message === 'shutdown: requests drained');
        assert.deepEqual(drained.streams, { completed: 0, ended: 2 });
      } finally {
        gate.release();
      }
    });
  });
  describe('when answered runs outlive SHUTDOWN_TIMEOUT_MS', () => {
    it('answers every one of them in full (503 SHUTTING_DOWN with Retry-After), never a reset', async () => {
      const srv = await harness.start({
        SHUTDOWN_DELAY_MS: '0',
        SHUTDOWN_TIMEOUT_MS: '1000',
        OLLAMA_MAX_CONCURRENCY: '8',
      });
      harness.sim.script(MODEL, ...Array.from({ length: 6 }, () => ({ content: 'late' })));
      const gate = harness.sim.hold(); // every answer waits until released
      // Every request must be in the gateway before SIGTERM closes its listener.
      let reached = 0;
      const allIn = new Promise<void>((resolve) =>
        harness.sim.on('request', () => {
          reached += 1;
          if (reached === 6) resolve();
        }),
      );
      try {
        const pending = Array.from({ length: 6 }, () =>
          fetch(`${srv.url}/agents/run`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input: 'go' }),
          }),
        );
        await allIn;
        srv.child.kill('SIGTERM');
        const answers = await Promise.all(pending);
        for (const res of answers) {
          const body = (await res.json()) as { error: { code: string; request_id: string } };
          assert.equal(res.status, 503, JSON.stringify(body));
          assert.equal(body.error.code, 'SHUTTING_DOWN');
          assert.match(String(body.error.request_id), /\S/);
          assert.match(String(res.headers.get('retry-after')), /^\d+$/);
        }
        const { code } = await srv.exited;
        assert.equal(code, 0);
      } finally {
        gate.release();
      }
    });
  });
});
