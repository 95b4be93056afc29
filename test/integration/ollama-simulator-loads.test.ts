import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { createManualClock, startOllamaSimulator } from '../support/ollama-simulator';
import { stillPending, until } from '../support/ollama-simulator/settle';
import type { ManualSimClock, OllamaSimulator } from '../support/ollama-simulator';

const user = [{ role: 'user', content: 'hi' }];

function post(sim: OllamaSimulator, path: string, body: unknown, signal?: AbortSignal) {
  return fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body), signal });
}

describe('ollama simulator: loads, reloads and /api/ps (ollama-api.md §1.5, §3.5)', () => {
  let clock: ManualSimClock;
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    clock = createManualClock();
    sim = await startOllamaSimulator({
      clock,
      loadDelayMs: 60_000,
      models: [
        { name: 'llama3.2:3b', family: 'llama', capabilities: ['completion', 'tools'] },
        {
          name: 'qwen3:8b',
          family: 'qwen3',
          capabilities: ['completion', 'tools', 'thinking'],
          contextLength: 40960,
        },
        { name: 'mlx-community/qwen3:4b', family: 'qwen3', format: 'safetensors' },
      ],
    });
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  describe('a load belongs to the request that triggered it (§3.5a)', () => {
    it('aborts the load when that request goes away; a waiter loads again from zero', async () => {
      const trigger = new AbortController();
      const loading = sim.waitFor('loading');
      const preload = post(sim, '/api/generate', { model: 'qwen3:8b' }, trigger.signal).catch(
        (e: Error) => e,
      );
      await loading;
      clock.advance(30_000);
      const queued = sim.waitFor('queued');
      const waiter = client.chat({ model: 'qwen3:8b', messages: user });
      await queued;

      const aborted = sim.waitFor('load-aborted');
      const reloading = sim.waitFor('loading');
      trigger.abort();
      assert.equal((await aborted).model, 'qwen3:8b');
      await reloading;
      assert.equal(((await preload) as Error).name, 'AbortError');
      assert.deepEqual(sim.loaded(), [], 'the half-done load was thrown away');

      // The new load starts from zero on the waiter's behalf: 60 s more, not the 30 s left.
      clock.advance(59_999);
      assert.ok(await stillPending(waiter));
      clock.advance(1);
      const answer = await waiter;
      assert.equal(answer.done, true);
      assert.equal(answer.load_duration, 60_000 * 1_000_000);
      assert.deepEqual(sim.counts('qwen3:8b'), {
        loads: 2,
        loadsCompleted: 1,
        loadsAborted: 1,
        loadsFailed: 0,
        reloads: 0,
        unloads: 0,
      });
    });

    it('skips a queued request whose client left, and does not abort the load for it', async () => {
      const loading = sim.waitFor('loading');
      const preload = client.generate({ model: 'qwen3:8b', prompt: '' });
      await loading;
      const gone = new AbortController();
      const queued = sim.waitFor('queued');
      const leaving = post(sim, '/api/chat', { model: 'qwen3:8b', messages: user }, gone.signal);
      await queued;
      gone.abort();
      await assert.rejects(leaving);
      clock.advance(60_000);
      assert.equal((await preload).done_reason, 'load');
      assert.equal(sim.counts().loadsAborted, 0);
      assert.equal(sim.counts().loads, 1);
    });

    it('does not overlap GGUF loads: a load of another model waits in the queue', async () => {
      const first = client.generate({ model: 'qwen3:8b', prompt: '' });
      await sim.waitFor('loading');
      const second = client.generate({ model: 'llama3.2:3b', prompt: '' });
      await sim.waitFor('queued', (e) => e.model === 'llama3.2:3b');
      assert.equal(sim.counts().loads, 1);
      const next = sim.waitFor('loading', (e) => e.model === 'llama3.2:3b');
      clock.advance(60_000);
      await first;
      await next;
      clock.advance(60_000);
      assert.equal((await second).done_reason, 'load');
    });

    it('aborts an MLX load the same way: its waiters load again', async () => {
      const trigger = new AbortController();
      const loading = sim.waitFor('loading');
      const model = 'mlx-community/qwen3:4b';
      const preload = post(sim, '/api/generate', { model }, trigger.signal).catch((e: Error) => e);
      await loading;
      const waiter = client.chat({ model, messages: user });
      await until(() => sim.requests.length === 2);
      const again = sim.waitFor('loading');
      trigger.abort();
      await again;
      await preload;
      clock.advance(60_000);
      assert.equal((await waiter).done, true);
      assert.deepEqual([sim.counts(model).loads, sim.counts(model).loadsAborted], [2, 1]);
    });

    it('expires an idle model on the simulator clock', async () => {
      sim.setLoadDelay(0);
      await client.generate({ model: 'qwen3:8b', prompt: '', keep_alive: '10m' });
      clock.advance(599_999);
      assert.equal(sim.loaded().length, 1);
      const unloaded = sim.waitFor('unload');
      clock.advance(1);
      assert.equal((await unloaded).model, 'qwen3:8b');
    });

    it('lets a preload take no parallel slot: it answers while a generation holds the only one', async () => {
      sim.setLoadDelay(0);
      const gate = sim.hold();
      const stream = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      const preload = await client.generate({ model: 'llama3.2:3b', prompt: '' });
      assert.equal(preload.done_reason, 'load');
      gate.release();
      for (let r = await it.next(); !r.done; r = await it.next());
    });
  });

  describe('a changed load-time option reloads the runner (§3.5b)', () => {
    async function preload(model: string, options?: Record<string, unknown>) {
      const done = client.generate({ model, prompt: '', ...(options ? { options } : {}) });
      await sim.waitFor('loading');
      clock.advance(60_000);
      return done;
    }

    it('reloads after a preload without num_ctx when a request sends one, after in-flight requests', async () => {
      await preload('qwen3:8b');
      assert.equal(sim.loaded()[0]?.numCtx, 4096, 'the automatic context');
      const gate = sim.hold();
      const inFlight = await client.chat({ model: 'qwen3:8b', messages: user, stream: true });
      const it = inFlight[Symbol.asyncIterator]();
      await it.next();

      const queued = sim.waitFor('queued');
      const bigger = client.chat({ model: 'qwen3:8b', messages: user, options: { num_ctx: 8192 } });
      await queued;
      // Requests that still match the old runner keep being served by it meanwhile.
      const matching = await client.generate({ model: 'qwen3:8b', prompt: '' });
      assert.equal(matching.done_reason, 'load');
      assert.ok(await stillPending(bigger));
      assert.equal(sim.counts('qwen3:8b').reloads, 0, 'the reload waits for the in-flight request');

      const reloaded = sim.waitFor('reload');
      const loading = sim.waitFor('loading');
      gate.release();
      for (let r = await it.next(); !r.done; r = await it.next());
      await reloaded;
      await loading;
      clock.advance(59_999);
      assert.ok(await stillPending(bigger), 'the new load takes the load delay');
      clock.advance(1);
      assert.equal((await bigger).load_duration, 60_000 * 1_000_000);
      const ps = (await client.ps()).models as unknown as Array<{ context_length: number }>;
      assert.equal(ps[0]?.context_length, 8192);
      assert.deepEqual([sim.counts('qwen3:8b').reloads, sim.counts('qwen3:8b').loads], [1, 2]);
    });

    it('compares options after Ollama normalises them', async () => {
      await preload('qwen3:8b');
      const same = [
        { num_ctx: 4096 }, // equals the automatic value the runner has
        { num_gpu: -1 }, // negative num_gpu is ignored
        { temperature: 0.1, top_k: 3, seed: 7, num_predict: 5, stop: ['x'] }, // sampling only
      ];
      for (const options of same) {
        await client.chat({ model: 'qwen3:8b', messages: user, options });
      }
      await client.chat({ model: 'qwen3:8b', messages: user, keep_alive: '10m', think: 'low' });
      assert.equal(sim.counts('qwen3:8b').reloads, 0);

      // Clamped to the training context (40960): two over-long values are the same runner.
      const big = client.chat({ model: 'qwen3:8b', messages: user, options: { num_ctx: 100_000 } });
      await sim.waitFor('loading');
      clock.advance(60_000);
      await big;
      assert.equal(sim.loaded()[0]?.numCtx, 40960);
      await client.chat({ model: 'qwen3:8b', messages: user, options: { num_ctx: 50_000 } });
      assert.equal(sim.counts('qwen3:8b').reloads, 1);

      // Every other api.Runner field, and shift, reloads.
      // Each step changes one more field on top of the previous runner's options.
      const steps: Array<Record<string, unknown>> = [
        { num_batch: 256 },
        { num_gpu: 10 },
        { main_gpu: 1 },
        { use_mmap: false },
        { num_thread: 4 },
        { draft_num_predict: 2 },
      ];
      let options: Record<string, unknown> = { num_ctx: 40960 };
      const changes = steps.map((step) => ({ options: (options = { ...options, ...step }) }));
      for (const change of changes) {
        const reply = post(sim, '/api/chat', { model: 'qwen3:8b', messages: user, ...change });
        await sim.waitFor('loading');
        clock.advance(60_000);
        assert.equal((await reply).status, 200);
      }
      assert.equal(sim.counts('qwen3:8b').reloads, 1 + changes.length);
      const last = changes.at(-1) as { options: Record<string, unknown> };
      const shift = post(sim, '/api/chat', {
        model: 'qwen3:8b',
        messages: user,
        shift: false,
        ...last,
      });
      await sim.waitFor('loading');
      clock.advance(60_000);
      assert.equal((await shift).status, 200);
      assert.equal(sim.counts('qwen3:8b').reloads, 2 + changes.length);
    });

    it('still unloads the old runner when the reload requester leaves during the drain', async () => {
      await preload('qwen3:8b');
      const gate = sim.hold();
      const inFlight = await client.chat({ model: 'qwen3:8b', messages: user, stream: true });
      const it = inFlight[Symbol.asyncIterator]();
      await it.next();
      const leaving = new AbortController();
      const queued = sim.waitFor('queued');
      const reload = post(
        sim,
        '/api/chat',
        { model: 'qwen3:8b', messages: user, options: { num_ctx: 8192 } },
        leaving.signal,
      ).catch((e: Error) => e);
      await queued;
      leaving.abort();
      await reload;
      const aborted = sim.waitFor('load-aborted');
      gate.release();
      for (let r = await it.next(); !r.done; r = await it.next());
      // The drain ignores the requester's context; the new load then aborts at once (§3.5b).
      assert.equal((await aborted).model, 'qwen3:8b');
      assert.deepEqual(sim.loaded(), [], 'the model is left unloaded');
      assert.deepEqual(
        [sim.counts('qwen3:8b').reloads, sim.counts('qwen3:8b').loadsAborted],
        [1, 1],
      );
    });

    it('answers 500 for a wrong-typed option, as scheduleRunner does (§1.6.1)', async () => {
      const res = await post(sim, '/api/chat', {
        model: 'qwen3:8b',
        messages: user,
        options: { num_ctx: '8k' },
      });
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: 'option "num_ctx" must be of type integer' });
    });

    it('does not compare api.Runner fields for an MLX model', async () => {
      await preload('mlx-community/qwen3:4b');
      await client.chat({
        model: 'mlx-community/qwen3:4b',
        messages: user,
        options: { num_ctx: 2048 },
      });
      assert.equal(sim.counts().reloads, 0);
    });
  });

  describe('/api/ps during a load, by model format (§1.5, §3.5c)', () => {
    it('answers at once for a GGUF load, without the loading model', async () => {
      sim.setLoadDelay(0);
      await client.generate({ model: 'llama3.2:3b', prompt: '' });
      sim.setLoadDelay(60_000);
      const loading = sim.waitFor('loading');
      const load = client.generate({ model: 'qwen3:8b', prompt: '' });
      await loading;
      const ps = await client.ps();
      assert.deepEqual(
        ps.models.map((m) => m.name),
        ['llama3.2:3b'],
      );
      clock.advance(60_000);
      await load;
      assert.deepEqual((await client.ps()).models.map((m) => m.name).sort(), [
        'llama3.2:3b',
        'qwen3:8b',
      ]);
    });

    it('waits until an MLX load ends, then lists the model', async () => {
      const loading = sim.waitFor('loading');
      const load = client.generate({ model: 'mlx-community/qwen3:4b', prompt: '' });
      await loading;
      const seen = sim.waitFor('request', (e) => e.path === '/api/ps');
      const ps = client.ps();
      await seen;
      assert.ok(await stillPending(ps), '/api/ps blocks on the loading runner');
      clock.advance(60_000);
      assert.deepEqual(
        (await ps).models.map((m) => [m.name, m.details.format]),
        [['mlx-community/qwen3:4b', 'safetensors']],
      );
      await load;
    });

    it('lets requests for a loading MLX model wait on its runner and overlap other loads', async () => {
      const load = client.generate({ model: 'mlx-community/qwen3:4b', prompt: '' });
      await sim.waitFor('loading');
      const waiter = client.chat({ model: 'mlx-community/qwen3:4b', messages: user });
      const other = sim.waitFor('loading', (e) => e.model === 'llama3.2:3b');
      const gguf = client.generate({ model: 'llama3.2:3b', prompt: '' });
      await other; // an MLX load does not hold the queue (§3.5e)
      clock.advance(60_000);
      await Promise.all([load, waiter, gguf]);
      assert.equal(sim.counts('mlx-community/qwen3:4b').loads, 1);
    });

    it('answers /api/ps once a failed MLX load ends, without the model', async () => {
      sim.failModel('mlx-community/qwen3:4b', 'load');
      const load = client
        .generate({ model: 'mlx-community/qwen3:4b', prompt: '' })
        .catch((e: Error) => e);
      await sim.waitFor('loading');
      const ps = client.ps();
      await until(() => sim.requests.some((r) => r.path === '/api/ps'));
      clock.advance(60_000);
      assert.deepEqual((await ps).models, []);
      assert.equal(((await load) as { status_code?: number }).status_code, 500);
    });
  });
});
