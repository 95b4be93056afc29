import assert from 'node:assert/strict';
import type { KeyLimits } from '../../src/config';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { until } from '../support/ollama-simulator/settle';

const MODEL = 'llama3.2:3b';
const KEY_A = 'team-a-key-0123456789abcdef';
const KEY_B = 'team-b-key-0123456789abcdef';

/**
 * Two API keys share one simulated Ollama with 2 parallel slots (OLLAMA_MAX_CONCURRENCY=2 and a
 * per-key cap of 2, so the cap alone never makes room for B). Which request Ollama started when
 * is read from the simulator's generation log, each request told apart by its prompt.
 */
describe('fair admission across keys (one backend, 2 slots)', function () {
  this.timeout(30_000);
  let t: TestApp | undefined;
  let running: RunningApp;
  let sim: OllamaSimulator;

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const start = async (limits: { a?: KeyLimits; b?: KeyLimits } = {}) => {
    t = await buildTestApp({
      simulator: { numParallel: 2, recordGenerations: true },
      env: {
        OLLAMA_MODEL: MODEL,
        OLLAMA_MAX_CONCURRENCY: '2',
        KEY_MAX_CONCURRENCY: '2',
        QUEUE_MAX: '50',
      },
      deps: {
        apiKeys: [
          { key: KEY_A, role: 'agent', id: 'team-a', ...(limits.a ? { limits: limits.a } : {}) },
          { key: KEY_B, role: 'agent', id: 'team-b', ...(limits.b ? { limits: limits.b } : {}) },
        ],
      },
    });
    sim = t.sim!;
    running = await t.listen();
  };

  const post = (key: string, path: string, body: unknown): Promise<Response> =>
    fetch(`${running.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** A streamed native chat whose prompt names it; resolves with its status once read. */
  const stream = async (key: string, name: string): Promise<number> => {
    const res = await post(key, '/api/chat', {
      model: MODEL,
      messages: [{ role: 'user', content: name }],
      stream: true,
    });
    await res.text();
    return res.status;
  };

  /** The prompts of the generations in the order Ollama started them. */
  const startOrder = (): string[] => {
    const prompt = new Map(
      sim.requests.map((r) => {
        const body = r.body as { messages?: Array<{ content?: string }> } | undefined;
        return [r.id, body?.messages?.at(-1)?.content ?? ''];
      }),
    );
    return sim.generations.map((g) => prompt.get(g.requestId) ?? '?');
  };

  /** Key A opens 20 streams: 2 run (held at the simulator's gate), 18 wait in the gateway. */
  const fillWithA = async () => {
    const gate = sim.hold();
    const streams = Array.from({ length: 20 }, (_, i) => stream(KEY_A, `a${i}`));
    await until(() => sim.generations.length === 2 && t!.ollama.queueStats().queued === 18, 2000);
    return { gate, streams };
  };

  it("starts key B's one request within one slot turnover, not after A's 18 queued streams", async () => {
    await start();
    const { gate, streams } = await fillWithA();
    // B's request is an agent run: its ticket travels from the request to the admission.
    const run = post(KEY_B, '/agents/run', { input: 'b-run' });
    await until(() => t!.ollama.queueStats().queued === 19, 2000);
    gate.release();
    const statuses = await Promise.all(streams);
    const res = await run;
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(new Set(statuses), new Set([200]));
    const order = startOrder();
    assert.equal(order.length, 21);
    assert.equal(order.indexOf('b-run'), 2, `B goes at the first freed slot: ${order.join(',')}`);
    assert.equal(sim.maxConcurrency(), 2);
  });

  it('serves an interactive key before a batch key’s waiting requests', async () => {
    await start({ a: { priority: 'batch' }, b: { priority: 'interactive' } });
    const { gate, streams } = await fillWithA();
    // Two requests of B on the OpenAI-compatible endpoint: both go before any more of A's.
    const bs = ['b1', 'b2'].map((name) =>
      post(KEY_B, '/v1/chat/completions', {
        model: MODEL,
        messages: [{ role: 'user', content: name }],
      }),
    );
    await until(() => t!.ollama.queueStats().queued === 20, 2000);
    gate.release();
    await Promise.all(streams);
    for (const res of await Promise.all(bs)) assert.equal(res.status, 200);
    const order = startOrder();
    assert.deepEqual(order.slice(2, 4).sort(), ['b1', 'b2'], order.join(','));
  });
});
