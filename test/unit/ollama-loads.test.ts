import assert from 'node:assert/strict';
import { createLoads, keepAliveMs, loadOfRequest } from '../../services/ollama/loads';

describe('ollama loads', () => {
  let time = 0;
  const now = (): number => time;
  /** A load that ends when the test says so. */
  const startable = () => {
    const started: Array<{ model: string; signal: AbortSignal; finish: (err?: Error) => void }> =
      [];
    const start = (model: string, _keepAlive: string | number, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        started.push({ model, signal, finish: (err) => (err ? reject(err) : resolve()) });
      });
    return { started, start };
  };

  beforeEach(() => {
    time = 0;
  });

  describe('when several callers want the same model', () => {
    it('starts one load and lets every caller join it', async () => {
      const { started, start } = startable();
      const loads = createLoads({ start, keepAliveMs: 60_000, now });
      const a = loads.ensure('Llama3.2', '5m');
      const b = loads.ensure('library/llama3.2:latest', '5m');
      assert.equal(started.length, 1);
      assert.deepEqual(loads.loading(), ['Llama3.2']);
      started[0]?.finish();
      await Promise.all([a, b]);
      assert.deepEqual(loads.loading(), []);
    });
  });

  describe('when a caller stops waiting', () => {
    it('rejects that caller with its reason and keeps the load going for the others', async () => {
      const { started, start } = startable();
      const loads = createLoads({ start, keepAliveMs: 60_000, now });
      const controller = new AbortController();
      const gone = loads.ensure('qwen3:8b', '5m', controller.signal);
      const staying = loads.ensure('qwen3:8b', '5m');
      controller.abort(new Error('cancelled'));
      await assert.rejects(gone, /cancelled/);
      assert.equal(started[0]?.signal.aborted, false);
      started[0]?.finish();
      await staying;
      assert.equal(started.length, 1);
    });
  });

  describe('when a load fails', () => {
    it('rejects its callers and starts afresh on the next call', async () => {
      const { started, start } = startable();
      const loads = createLoads({ start, keepAliveMs: 60_000, now });
      const first = loads.ensure('qwen3:8b', '5m');
      started[0]?.finish(new Error('llama-server process has terminated'));
      await assert.rejects(first, /terminated/);
      const second = loads.ensure('qwen3:8b', '5m');
      assert.equal(started.length, 2);
      started[1]?.finish();
      await second;
    });
  });

  describe('warmth', () => {
    it('takes a model as loaded for its keep-alive after it answered, until forgotten', async () => {
      const { started, start } = startable();
      const loads = createLoads({ start, keepAliveMs: 60_000, now });
      assert.equal(loads.warm('qwen3:8b'), false);
      const done = loads.ensure('qwen3:8b', '5m');
      started[0]?.finish();
      await done;
      assert.equal(loads.warm('QWEN3:8b'), true);
      time = 59_999;
      loads.used('qwen3:8b');
      time = 119_998;
      assert.equal(loads.warm('qwen3:8b'), true);
      loads.forget('qwen3:8b');
      assert.equal(loads.warm('qwen3:8b'), false);
    });

    it('aborts the loads under way on close', () => {
      const { started, start } = startable();
      const loads = createLoads({ start, keepAliveMs: 60_000, now });
      void loads.ensure('qwen3:8b', '5m').catch(() => undefined);
      loads.close();
      assert.equal(started[0]?.signal.aborted, true);
    });
  });
});

describe('keepAliveMs', () => {
  for (const [value, ms] of [
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['300ms', 300],
    ['42.5', 42_500],
    [30, 30_000],
    ['-1', Infinity],
    [-1, Infinity],
    ['-1m', Infinity],
    ['0', 0],
    ['300x', 0],
  ] as const) {
    it(`reads ${JSON.stringify(value)} as ${ms} ms`, () => {
      assert.equal(keepAliveMs(value), ms);
    });
  }
});

describe('loadOfRequest', () => {
  const chat = { model: 'qwen3:8b', messages: [] };
  for (const [body, load, why] of [
    [chat, 'gateway', 'a plain request is served by the gateway’s load'],
    [
      { ...chat, options: { temperature: 0.2, seed: 1 } },
      'gateway',
      'sampling options load nothing',
    ],
    [{ ...chat, keep_alive: '10m' }, 'gateway', 'a keep-alive other than 0 loads nothing either'],
    [{ ...chat, keep_alive: 0 }, 'unload', 'keep_alive 0 unloads'],
    [{ ...chat, keep_alive: '0s' }, 'unload', 'so does "0s"'],
    [{ ...chat, options: { num_ctx: 8192 } }, undefined, 'num_ctx loads the request’s way'],
    [{ ...chat, options: { num_gpu: 0 } }, undefined, 'num_gpu too'],
    [{ ...chat, shift: false }, undefined, 'and shift'],
    [undefined, 'gateway', 'no body'],
  ] as const) {
    it(`${why}`, () => {
      assert.equal(loadOfRequest(body as Record<string, unknown> | undefined), load);
    });
  }
});
