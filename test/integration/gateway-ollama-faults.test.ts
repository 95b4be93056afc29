import assert from 'node:assert/strict';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import { createRecordingTelemetry, type RecordingTelemetry } from '../support/recording-telemetry';
import {
  createManualClock,
  startOllamaSimulator,
  type ManualSimClock,
  type OllamaSimulator,
} from '../support/ollama-simulator';
import { stillPending, until } from '../support/ollama-simulator/settle';

/**
 * The gateway, over HTTP, against the simulator's Ollama faults as they really happen
 * (ollama-api.md §1.5, §2.4, §3.5): long loads owned by the gateway, /api/ps during loads,
 * one broken model, hangs and bursts of errors. Both clocks are manual: the simulator's (loads,
 * hangs, fault windows) and the gateway's (deadlines, health polls) move together in `tick`.
 */

const ACTIVE = 'llama3.2:3b';
const OTHER = 'qwen3:8b';
const MLX = 'qwen3-mlx:4b';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('gateway under Ollama faults', () => {
  let simClock: ManualSimClock;
  let sim: OllamaSimulator;
  let t: TestApp;
  let app: RunningApp;
  let telemetry: RecordingTelemetry;

  /** Moves both clocks by `ms`. */
  const tick = (ms: number): void => {
    simClock.advance(ms);
    t.clock.advance(ms);
  };
  /** Lets loopback I/O started by a tick (a health check, a load ending) run. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 40; i += 1) await new Promise((resolve) => setImmediate(resolve));
  };
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Answer> => {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const ready = async (): Promise<number> => (await call('GET', '/health/ready')).status;
  const run = (model: string, signal?: AbortSignal): Promise<Answer> =>
    call('POST', '/agents/run', { input: 'hi', model }, signal);
  const completed = (a: Answer): boolean => a.status === 200 && a.body.status === 'completed';
  /** Startup (wait for Ollama, preload the active model), then the health poller. */
  const start = async (): Promise<void> => {
    const state = await t.startup.run();
    assert.equal(state.done, true);
    t.ollamaHealth.start();
    // The poller's first check has finished once its next poll is armed.
    await until(() => t.clock.pending().includes(t.config.OLLAMA_HEALTH_TTL_MS));
    assert.equal(await ready(), 200);
  };

  beforeEach(async () => {
    simClock = createManualClock();
    sim = await startOllamaSimulator({
      clock: simClock,
      models: [ACTIVE, OTHER, MLX].map((name) => ({
        name,
        capabilities: ['completion', 'tools'],
        ...(name === MLX ? { format: 'safetensors' as const } : {}),
      })),
    });
    telemetry = createRecordingTelemetry();
    // One time for both: the gateway's clock reads the simulator's, and `tick` moves the timers of both.
    t = await buildTestApp({
      simulator: sim,
      telemetry,
      now: () => simClock.now(),
      env: { OLLAMA_MODEL: ACTIVE },
    });
    app = await t.listen();
  });
  afterEach(async () => {
    t.ollamaHealth.stop();
    simClock.advance(3_600_000); // ends any hang window, so open requests can finish
    await t.close();
    await sim.close();
  });

  describe('when a model takes 60 s to load', () => {
    it('keeps the load through a cancelled run waiting on it, and a switch to it completes', async () => {
      await start();
      sim.setLoadDelay(60_000, OTHER);
      const cancel = new AbortController();
      const cancelled = run(OTHER, cancel.signal).catch((err: unknown) => err);
      await until(() => sim.counts(OTHER).loads === 1);
      tick(30_000);
      cancel.abort();
      assert.ok((await cancelled) instanceof Error);
      await settle();

      const switched = call('POST', '/ollama/model/switch', { model: OTHER });
      await settle();
      tick(30_000);
      await settle();
      assert.equal(sim.counts(OTHER).loadsAborted, 0, 'the load survived the cancelled run');
      const answer = await switched;
      assert.equal(answer.status, 200);
      assert.equal(answer.body.active, OTHER);
      assert.equal(sim.counts(OTHER).loads, 1, 'one load, never restarted from zero');
      assert.ok(completed(await run(OTHER)));
    });
  });

  describe('when a drop-in generation waits for a load longer than the first-byte deadline', () => {
    it('loads the model through the gateway first, so a client that leaves loses no load', async () => {
      await start();
      const loadMs = t.config.OLLAMA_FIRST_BYTE_TIMEOUT_MS + 30_000;
      assert.ok(loadMs < t.config.OLLAMA_LOAD_TIMEOUT_MS);
      sim.setLoadDelay(loadMs, OTHER);
      const chat = async (signal?: AbortSignal): Promise<{ status: number; text: string }> => {
        const res = await fetch(`${app.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: OTHER,
            messages: [{ role: 'user', content: 'hi' }],
            stream: true,
          }),
          signal,
        });
        return { status: res.status, text: await res.text() };
      };
      const cancel = new AbortController();
      const left = chat(cancel.signal).catch((err: unknown) => err);
      await until(() => sim.counts(OTHER).loads === 1);
      tick(30_000);
      cancel.abort();
      assert.ok((await left) instanceof Error);
      await settle();

      const answered = chat();
      await settle();
      for (let waited = 30_000; waited < loadMs; waited += 10_000) {
        tick(10_000);
        await settle();
      }
      const answer = await answered;
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /"content":"[^"]+"/);
      assert.match(answer.text, /data: \[DONE\]/);
      assert.equal(sim.counts(OTHER).loadsAborted, 0, 'the load survived the client that left');
      assert.equal(sim.counts(OTHER).loads, 1, 'one load, never restarted from zero');
    });
  });

  describe('when /api/ps does not show a load', () => {
    for (const [model, how] of [
      [MLX, 'blocks until the load ends (MLX)'],
      [OTHER, 'leaves out the loading model (GGUF)'],
    ] as const) {
      it(`stays ready through a switch while /api/ps ${how}`, async () => {
        await start();
        await call('GET', '/ollama/models'); // fills the catalog's cache
        sim.setLoadDelay(60_000, model);
        const switched = call('POST', '/ollama/model/switch', { model });
        await until(() => sim.counts(model).loads === 1);
        for (let at = 0; at < 60_000; at += 5_000) {
          tick(5_000);
          await settle();
          assert.equal(await ready(), 200, `ready ${at + 5_000} ms into the load`);
        }
        const listed = call('GET', '/ollama/models');
        const info = call('GET', `/ollama/model-info?model=${encodeURIComponent(model)}`);
        assert.equal((await switched).status, 200);
        assert.equal((await listed).status, 200);
        assert.equal((await info).status, 200);
        assert.equal(await ready(), 200);
      });
    }

    it('answers /ollama/models from cache while an MLX load blocks /api/ps', async () => {
      await start();
      await call('GET', '/ollama/models');
      sim.setLoadDelay(60_000, MLX);
      const switched = call('POST', '/ollama/model/switch', { model: MLX });
      await until(() => sim.counts(MLX).loads === 1);
      tick(10_000); // past the models cache TTL
      const listed = call('GET', '/ollama/models');
      await settle();
      assert.equal(await stillPending(listed, 200), false, '/ollama/models waited for the load');
      const { models } = (await listed).body as { models: Array<{ name: string }> };
      assert.ok(models.some((m) => m.name === MLX));
      tick(50_000);
      assert.equal((await switched).status, 200);
    });

    it('keeps the last loaded set, marked stale, while /api/ps blocks', async () => {
      await start();
      sim.setLoadDelay(60_000, MLX);
      const switched = call('POST', '/ollama/model/switch', { model: MLX });
      await until(() => sim.counts(MLX).loads === 1);
      tick(t.config.OLLAMA_HEALTH_TTL_MS);
      await settle();
      tick(t.config.OLLAMA_HEALTH_TIMEOUT_MS);
      await until(() => t.ollamaHealth.snapshot().loadedModelsStale);
      const loaded = t.ollamaHealth.snapshot().loadedModels.map((m) => m.name);
      assert.ok(loaded.includes(ACTIVE));
      assert.equal(await ready(), 200);
      tick(60_000);
      assert.equal((await switched).status, 200);
    });
  });

  describe('when one model fails on its own (Ollama answers 500)', () => {
    it('five failures leave another model and readiness untouched', async () => {
      await start();
      sim.failModel(OTHER, 'load');
      const failures: Answer[] = [];
      for (let i = 0; i < 5; i += 1) failures.push(await run(OTHER));
      assert.ok(failures.every((a) => !completed(a)));
      assert.ok(completed(await run(ACTIVE)), 'another model still answers');
      assert.equal(await ready(), 200);
      const detailed = await call('GET', '/health/detailed');
      assert.equal((detailed.body.ollama as { circuit: string }).circuit, 'closed');
      const tried = sim.requests.filter(
        (r) => r.path === '/api/chat' && (r.body as { model?: string }).model === OTHER,
      );
      assert.equal(tried.length, t.config.MODEL_FAILURE_THRESHOLD, 'then refused without Ollama');
      const metrics = await fetch(`${app.url}/metrics`).then((r) => r.text());
      assert.match(metrics, /ollama_model_circuit_open\{model="qwen3:8b"\} 1/);
      assert.match(metrics, /ollama_model_circuit_open\{model="llama3.2:3b"\} 0/);
    });

    it('lets one trial through after MODEL_COOLDOWN_MS and serves the model once it works', async () => {
      await start();
      sim.failModel(OTHER, 'load');
      for (let i = 0; i < t.config.MODEL_FAILURE_THRESHOLD; i += 1) await run(OTHER);
      sim.failModel(OTHER, undefined);
      assert.ok(!completed(await run(OTHER)));
      tick(t.config.MODEL_COOLDOWN_MS);
      assert.ok(completed(await run(OTHER)));
    });
  });

  describe('drop-in generations, the load table and the per-model breaker', () => {
    const dropIn = (model: string, extra: object = {}) =>
      call('POST', '/api/chat', {
        model,
        messages: [{ role: 'user', content: 'hi' }],
        stream: false,
        ...extra,
      });

    it('counts none of their 500s (their body is the client’s), and refuses them while paused', async () => {
      await start();
      assert.ok(completed(await run(OTHER)), 'loaded through the gateway');
      const threshold = t.config.MODEL_FAILURE_THRESHOLD;
      // A `format` Ollama cannot use: its 500 comes from the request, not from the model.
      for (let i = 0; i < threshold + 2; i += 1) {
        assert.equal((await dropIn(OTHER, { format: 'xml' })).status, 502);
      }
      assert.ok(completed(await run(OTHER)), 'the model is not paused by them');

      // Agent runs count the model's own failures (its runner crashes): they pause it.
      sim.failModel(OTHER, 'crash');
      for (let i = 0; i < threshold; i += 1) assert.ok(!completed(await run(OTHER)));
      const refused = await dropIn(OTHER);
      assert.equal(refused.status, 503);
      assert.match(String(refused.body.error), /keeps failing/);
    });

    it('leaves a model loaded with a request’s own options for the gateway to load again', async () => {
      await start();
      const gatewayLoads = () =>
        sim.requests.filter(
          (r) =>
            r.path === '/api/chat' &&
            (r.body as { model?: string; messages?: unknown[] }).model === OTHER &&
            (r.body as { messages?: unknown[] }).messages?.length === 0,
        ).length;
      assert.ok(completed(await run(OTHER)));
      assert.equal(gatewayLoads(), 1);
      // Loaded with a context of its own (Ollama reloads it so, §3.5b): the gateway's options
      // are not what is loaded any more, so the next agent run loads the model through the table.
      assert.equal((await dropIn(OTHER, { options: { num_ctx: 8192 } })).status, 200);
      assert.equal(gatewayLoads(), 1, 'the request loaded it its own way');
      assert.ok(completed(await run(OTHER)));
      assert.equal(gatewayLoads(), 2);
    });

    it('counts a failure of the gateway’s own load of the model for them', async () => {
      await start();
      sim.failModel(OTHER, 'load');
      for (let i = 0; i < t.config.MODEL_FAILURE_THRESHOLD; i += 1) {
        assert.notEqual((await dropIn(OTHER)).status, 200);
      }
      const refused = await dropIn(OTHER);
      assert.equal(refused.status, 503);
      assert.match(String(refused.body.error), /keeps failing/);
      const chats = sim.requests.filter(
        (r) => r.path === '/api/chat' && (r.body as { model?: string }).model === OTHER,
      );
      assert.equal(chats.length, t.config.MODEL_FAILURE_THRESHOLD, 'only the failed loads');
    });
  });

  describe('when Ollama hangs', () => {
    it('ends an answered run whose stream goes quiet after OLLAMA_STREAM_IDLE_TIMEOUT_MS', async () => {
      await start();
      sim.setChunkLatency(100);
      const answer = run(ACTIVE);
      await sim.waitFor('chunk');
      sim.hangFor(600_000);
      await settle();
      tick(t.config.OLLAMA_STREAM_IDLE_TIMEOUT_MS);
      await settle();
      assert.equal(await stillPending(answer, 200), false, 'the run waited past the idle deadline');
      assert.ok(!completed(await answer));
      assert.equal(t.ollama.queueStats().inFlight, 0);
    });

    it('under load, runs succeed again within 2 s of a 3 s hang ending (defaults)', async () => {
      await start();
      sim.hangFor(3_000);
      const during = Array.from({ length: 8 }, () => run(ACTIVE));
      await settle();
      for (let at = 0; at < 3_000; at += 500) {
        tick(500);
        await settle();
      }
      let waited = 0;
      const after = run(ACTIVE);
      while (waited < 2_000 && (await stillPending(after, 50))) {
        tick(100);
        waited += 100;
      }
      assert.ok(completed(await after), 'a run after the hang');
      assert.ok(waited <= 2_000);
      const all = Promise.all(during);
      for (let i = 0; i < 20 && (await stillPending(all, 50)); i += 1) tick(100);
      const answers = await all;
      assert.ok(answers.every(completed), 'the runs caught in the hang finish too');
    });

    it('readiness sees a hang within OLLAMA_HEALTH_TIMEOUT_MS plus one poll', async () => {
      await start();
      sim.hangFor(600_000);
      tick(t.config.OLLAMA_HEALTH_TTL_MS);
      await settle();
      tick(t.config.OLLAMA_HEALTH_TIMEOUT_MS);
      await until(() => t.ollamaHealth.snapshot().status === 'down');
      assert.equal(await ready(), 503);
    });
  });

  describe('when Ollama answers 500 for 3 s', () => {
    it('readiness is 200 again within 2 s of the fault ending', async () => {
      await start();
      tick(t.config.OLLAMA_HEALTH_TTL_MS - 1);
      await settle();
      sim.failFor(3_000, 500, undefined, 'any');
      tick(1); // the poll runs inside the fault window
      await until(() => t.ollamaHealth.snapshot().status === 'down', 5000);
      assert.equal(await ready(), 503);
      for (let at = 1; at < 3_000; at += 100) {
        tick(100);
        await settle();
      }
      let waited = 0;
      while ((await ready()) !== 200 && waited < 2_000) {
        tick(100);
        waited += 100;
        await settle();
      }
      assert.equal(await ready(), 200);
      assert.ok(waited <= 2_000, `ready again ${waited} ms after the fault ended`);
      assert.equal(t.ollama.circuitState(), 'closed');
    });
  });
});
