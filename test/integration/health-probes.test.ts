import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHealthService, type HealthService } from '../../services/health/probes';
import { createLifecycle, type Lifecycle } from '../../services/health/lifecycle';
import { createStartupSequence, type StartupSequence } from '../../services/health/startup';
import type { OllamaClient } from '../../services/ollama/client';
import type { OllamaHealth } from '../../services/ollama/types';
import { createApp } from '../../src/app';
import { createSchemaRegistry } from '../../src/validation';
import { buildTestApp } from '../support/build-app';
import { createCaptureLogger } from '../support/capture-logger';
import type { ManualClock } from '../support/manual-clock';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { assertMatchesSchema } from '../support/schema-assert';

const schemas = createSchemaRegistry();

interface Harness {
  url: string;
  ollama: OllamaClient;
  ollamaHealth: OllamaHealth;
  health: HealthService;
  startup: StartupSequence;
  lifecycle: Lifecycle;
  /** The app's clock: the health refresh fires on `refresh.fireNext()`. */
  refresh: ManualClock;
  /** Every startup backoff asked for, ms. */
  sleeps: number[];
  logs: () => Array<Record<string, unknown>>;
  get: (probe: string) => Promise<{ status: number; body: Record<string, unknown>; ms: number }>;
  close: () => Promise<void>;
}

/**
 * The real composition (Ollama service, cached health, model manager, startup, lifecycle,
 * health service, createApp) on a real socket, pointed at the simulator. The health refresh
 * timer and the startup backoff are driven by the test.
 */
async function harness(
  sim: OllamaSimulator,
  env: Record<string, string> = {},
  onSleep: (ms: number, attempt: number) => Promise<void> | void = () => undefined,
): Promise<Harness> {
  const t = await buildTestApp({
    simulator: sim,
    env: { OLLAMA_MODEL: 'llama3.2:3b', OLLAMA_RETRY_MAX: '0', ...env },
  });
  const refresh = t.clock;
  const capture = createCaptureLogger({ level: 'debug' });
  const logger = capture.logger;
  const { config, ollama, ollamaHealth, models } = t;
  const lifecycle = createLifecycle({ logger, clock: refresh });
  const sleeps: number[] = [];
  const startup = createStartupSequence({
    config,
    ollama,
    ollamaHealth,
    models,
    logger,
    random: () => 1,
    clock: {
      now: Date.now,
      sleep: async (ms) => {
        sleeps.push(ms);
        // A runaway loop (sleeps return at once here) must fail the test, not eat the machine.
        if (sleeps.length > 20) return startup.stop();
        await onSleep(ms, sleeps.length);
      },
    },
  });
  const health = createHealthService({
    config,
    build: t.deps.build,
    startedAt: Date.now(),
    now: Date.now,
    lifecycle,
    startup,
    ollamaHealth,
    ollama,
    models,
  });
  const server = http.createServer(
    createApp({ ...t.deps, lifecycle, routes: { ...t.deps.routes, health } }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  health.start();
  ollamaHealth.start(); // one check now, the next ones when the test fires the timer
  return {
    url,
    ollamaHealth,
    ollama,
    health,
    startup,
    lifecycle,
    refresh,
    sleeps,
    logs: capture.lines,
    async get(probe) {
      const t0 = performance.now();
      const res = await fetch(`${url}${probe}`);
      const body = (await res.json()) as Record<string, unknown>;
      const ms = performance.now() - t0;
      const id =
        probe === '/health' ? 'health.response' : `${probe.slice(1).replace('/', '-')}.response`;
      assertMatchesSchema(schemas, id, body);
      return { status: res.status, body, ms };
    },
    async close() {
      startup.stop();
      health.stop();
      server.closeAllConnections();
      server.close();
      await t.close();
    },
  };
}

const failingNames = (body: Record<string, unknown>): string[] =>
  (body.failing as Array<{ name: string }>).map((f) => f.name);

describe('the probes with the real Ollama layer against the simulator', function () {
  this.timeout(10_000);
  let sim: OllamaSimulator;
  let h: Harness | undefined;
  beforeEach(async () => {
    sim = await startOllamaSimulator();
  });
  afterEach(async () => {
    // Simulator first: its sockets close, so no call of the service stays in flight.
    await sim.close();
    await h?.close();
    h = undefined;
  });

  describe('when Ollama is up and the active model installed', () => {
    it('passes live, ready and startup once the warm-up preloaded the model', async () => {
      h = await harness(sim);
      assert.equal((await h.get('/health/startup')).status, 503);
      const state = await h.startup.run();
      assert.deepEqual(
        state.steps.map((s) => [s.name, s.outcome]),
        [
          ['wait_for_ollama', 'ok'],
          ['pull', 'skipped'],
          ['preload', 'ok'],
        ],
      );
      assert.deepEqual(
        sim.loaded().map((m) => m.name),
        ['llama3.2:3b'],
      );
      assert.equal((await h.get('/health/live')).status, 200);
      assert.equal((await h.get('/health/startup')).status, 200);
      const ready = await h.get('/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'pass');
      const detailed = await h.get('/health/detailed');
      const ollama = detailed.body.ollama as Record<string, unknown>;
      assert.equal(ollama.status, 'up');
      assert.equal(ollama.version, '0.12.6');
      assert.equal(ollama.active_model_installed, true);
      assert.equal(ollama.circuit, 'closed');
      await h.get('/health');
      const steps = h.logs().filter((l) => l.message === 'startup step finished');
      assert.ok(steps.every((l) => typeof l.duration_ms === 'number'));
    });
  });

  describe('when the simulator hangs every request', () => {
    it('keeps /health/live 200 and answers every probe fast from the cached state', async () => {
      h = await harness(sim);
      await h.startup.run();
      assert.equal((await h.get('/health/ready')).status, 200);
      sim.hang(true);
      assert.deepEqual(h.refresh.pending(), [30_000]);
      h.refresh.fireNext(); // the next background check now hangs inside Ollama
      await sim.waitFor('request', (e) => e.path === '/api/version');
      const requestsBefore = sim.requests.length;
      const answers = [];
      for (let i = 0; i < 5; i += 1) {
        for (const probe of [
          '/health/live',
          '/health/ready',
          '/health/startup',
          '/health/detailed',
        ]) {
          answers.push({ probe, ...(await h.get(probe)) });
        }
      }
      for (const a of answers) assert.equal(a.status, 200, a.probe);
      // Answered from the cache: while the background check still hangs inside Ollama, not
      // one probe sent Ollama a request (no timing bound: speed belongs in the benchmark).
      assert.equal(sim.requests.length, requestsBefore);
      assert.ok(sim.inFlight() >= 1);
    });
  });

  describe('when Ollama stops and comes back', () => {
    it('turns /health/ready 503 with the reason, then 200 again, on each refresh', async () => {
      h = await harness(sim);
      await h.startup.run();
      assert.equal((await h.get('/health/ready')).status, 200);

      await sim.stop();
      assert.deepEqual(h.refresh.pending(), [30_000]);
      h.refresh.fireNext();
      await h.ollamaHealth.refresh(); // joins the check the timer started
      const down = await h.get('/health/ready');
      assert.equal(down.status, 503);
      assert.deepEqual(failingNames(down.body), ['ollama_reachable']);
      assert.match(
        (down.body.failing as Array<{ reason: string }>)[0]!.reason,
        /Ollama unreachable: OLLAMA_UNAVAILABLE/,
      );
      assert.equal((await h.get('/health/live')).status, 200, 'liveness never follows Ollama');

      await sim.start();
      h.refresh.fireNext();
      await h.ollamaHealth.refresh();
      const up = await h.get('/health/ready');
      assert.equal(up.status, 200);
    });

    it('reports the open circuit as a failing readiness check', async () => {
      h = await harness(sim, { CIRCUIT_FAILURE_THRESHOLD: '1', OLLAMA_PRELOAD: 'false' });
      await h.startup.run();
      sim.failNext(1, 503); // Ollama busy: an Ollama-wide failure (a 500 is the model's own)
      await assert.rejects(
        h.ollama.chat({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] }),
      );
      assert.equal(h.ollama.circuitState(), 'open');
      const ready = await h.get('/health/ready');
      assert.equal(ready.status, 503);
      assert.deepEqual(failingNames(ready.body), ['circuit']);
    });
  });

  describe('the startup sequence', () => {
    it('keeps /health/startup 503 while the model loads, 200 after', async () => {
      sim.setLoadDelay(300);
      h = await harness(sim);
      const done = h.startup.run();
      await sim.waitFor('loading', (e) => e.model === 'llama3.2:3b');
      const during = await h.get('/health/startup');
      assert.equal(during.status, 503);
      assert.equal((during.body.startup as { phase: string }).phase, 'preload');
      assert.equal((await h.get('/health/ready')).status, 503);
      assert.equal((await h.get('/health/live')).status, 200);
      await done;
      const after = await h.get('/health/startup');
      assert.equal(after.status, 200);
      const preload = (
        after.body.startup as { steps: Array<{ name: string; duration_ms: number }> }
      ).steps.find((s) => s.name === 'preload');
      assert.ok(preload && preload.duration_ms >= 250, JSON.stringify(preload));
    });

    it('waits for Ollama with capped exponential backoff and never gives up', async () => {
      await sim.stop();
      // A high breaker threshold: the backoff here takes no real time, so an open circuit
      // would never reach its half-open trial.
      const env = { STARTUP_RETRY_MAX_MS: '1500', CIRCUIT_FAILURE_THRESHOLD: '100' };
      h = await harness(sim, env, async (_ms, attempt) => {
        if (attempt === 1) {
          const startup = await h!.get('/health/startup');
          assert.equal(startup.status, 503);
          assert.match(
            (startup.body.failing as Array<{ reason: string }>)[0]!.reason,
            /startup wait_for_ollama \(attempt 1\): OLLAMA_UNAVAILABLE/,
          );
        }
        if (attempt === 5) await sim.start();
      });
      const state = await h.startup.run();
      assert.equal(state.done, true);
      assert.deepEqual(h.sleeps, [500, 1000, 1500, 1500, 1500]);
      assert.equal(state.steps[0]?.name, 'wait_for_ollama');
      assert.equal(state.steps[0]?.outcome, 'ok');
      assert.equal((await h.get('/health/startup')).status, 200);
    });

    it('stays in startup when Ollama never comes up, until it is stopped', async () => {
      await sim.stop();
      h = await harness(sim, {}, (_ms, attempt) => {
        if (attempt === 3) h!.startup.stop();
      });
      const state = await h.startup.run();
      assert.equal(state.phase, 'stopped');
      assert.equal(state.done, false);
      assert.equal((await h.get('/health/startup')).status, 503);
    });

    it('pulls the missing active model when OLLAMA_PULL_ON_START, then preloads it', async () => {
      h = await harness(sim, { OLLAMA_MODEL: 'smollm2:135m', OLLAMA_PULL_ON_START: 'true' });
      const state = await h.startup.run();
      assert.deepEqual(
        state.steps.map((s) => [s.name, s.outcome]),
        [
          ['wait_for_ollama', 'ok'],
          ['pull', 'ok'],
          ['preload', 'ok'],
        ],
      );
      assert.ok(sim.requests.some((r) => r.path === '/api/pull'));
      assert.equal((await h.get('/health/ready')).status, 200);
    });

    it('finishes without pulling when the model is missing and pulls are off; readiness says why', async () => {
      h = await harness(sim, { OLLAMA_MODEL: 'smollm2:135m' });
      const state = await h.startup.run();
      assert.equal(state.done, true);
      assert.deepEqual(
        state.steps.map((s) => [s.name, s.outcome]),
        [
          ['wait_for_ollama', 'ok'],
          ['pull', 'skipped'],
          ['preload', 'skipped'],
        ],
      );
      assert.ok(!sim.requests.some((r) => r.path === '/api/pull'));
      const ready = await h.get('/health/ready');
      assert.equal(ready.status, 503);
      assert.deepEqual(failingNames(ready.body), ['active_model_installed']);
    });
  });

  describe('while draining', () => {
    it('fails readiness with the draining check only', async () => {
      h = await harness(sim);
      await h.startup.run();
      h.lifecycle.beginDrain();
      const res = await fetch(`${h.url}/health/ready`);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('connection'), 'close');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.deepEqual(failingNames((await res.json()) as Record<string, unknown>), ['draining']);
      assert.equal((await h.get('/health/live')).status, 200);
    });
  });

  it('answers 405 in the error shape to another method on a probe', async () => {
    h = await harness(sim);
    const res = await fetch(`${h.url}/health/ready`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'METHOD_NOT_ALLOWED');
  });
});
