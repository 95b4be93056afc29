import assert from 'node:assert/strict';
import http from 'node:http';
import { createMemoryRunRepository } from '../../services/agents/run-repository';
import type { RunRepository } from '../../services/agents/run-repository';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import { metricValue } from '../support/exposition';
import { pollUntil } from '../support/poll';

/** Polls `check` once per turn of the event loop until it holds. */
const until = (what: string, check: () => boolean | Promise<boolean>) =>
  pollUntil(what, async () => ((await check()) ? true : undefined), 20_000);

/**
 * A shared store answers after a round trip (Redis), so a client can leave while its request
 * still waits for one: here the run repository's `create` is held until the client has gone.
 */
describe('a client that leaves while its run is being created', () => {
  let t: TestApp;
  let running: RunningApp;
  let release: () => void;
  let creating: Promise<void>;
  let runs: RunRepository;

  beforeEach(async () => {
    const memory = createMemoryRunRepository({ max: 100, ttlMs: 3_600_000, now: Date.now });
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    creating = new Promise<void>((resolve) => (entered = resolve));
    runs = Object.assign(Object.create(memory) as RunRepository, {
      async create(...args: Parameters<RunRepository['create']>) {
        entered();
        await gate;
        return memory.create(...args);
      },
    });
    t = await buildTestApp({ env: { OLLAMA_MODEL: 'llama3.2:3b' }, runs });
    running = await t.listen();
  });
  afterEach(async () => {
    await running.close();
    await t.close();
  });

  for (const stream of [false, true]) {
    it(`cancels its ${stream ? 'streamed' : 'answered'} run and leaves nothing open for the shutdown to wait on`, async () => {
      const req = http.request(`${running.url}/agents/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('error', () => undefined);
      req.end(JSON.stringify({ input: 'hi', stream }));
      await creating;
      req.destroy();
      // The gateway has seen the client go (its in-flight count drops) before the run exists.
      await until(
        'the client gone',
        async () => (await metricValue(t.metrics.registry, 'http_requests_in_flight')) === 0,
      );
      release();

      await until('the run cancelled', async () =>
        (await runs.list()).some((r) => r.run.status === 'cancelled'),
      );
      const [stored] = await runs.list();
      assert.equal(stored?.run.status, 'cancelled');
      await until('no stream open', () => t.deps.lifecycle.openStreams() === 0);
      const drained = await t.deps.lifecycle.drainStreams(60_000);
      assert.deepEqual(drained, { completed: 0, ended: 0 });
    });
  }
});
