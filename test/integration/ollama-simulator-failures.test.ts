import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import {
  collectNdjson,
  createManualClock,
  startOllamaSimulator,
} from '../support/ollama-simulator';
import { stillPending, until } from '../support/ollama-simulator/settle';
import type { ManualSimClock, OllamaSimulator } from '../support/ollama-simulator';
import { responseError } from '../support/response-error';

const user = [{ role: 'user', content: 'hi' }];
// Written out rather than imported: the exact texts are the point.
const BUSY = 'server busy, please try again.  maximum pending requests exceeded';
const CRASHED =
  'model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details';
const weather = { function: { name: 'get_weather', arguments: { city: 'Oslo' } } };

function post(sim: OllamaSimulator, path: string, body: unknown, signal?: AbortSignal) {
  return fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body), signal });
}

describe('ollama simulator: tool-only turns, per-model failures, hangs and bursts', () => {
  let clock: ManualSimClock;
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    clock = createManualClock();
    sim = await startOllamaSimulator({ clock });
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  describe('a tool-only turn (ollama-api.md §4.2)', () => {
    it('in native mode sends nothing for the silence, then the calls on the done:true chunk only', async () => {
      sim.script('qwen3:8b', {
        tool_calls: [weather, { function: { name: 'get_time', arguments: {} } }],
        toolCallMode: 'native',
        silenceMs: 120_000,
      });
      let chunks = 0;
      sim.on('chunk', () => (chunks += 1));
      const res = post(sim, '/api/chat', { model: 'qwen3:8b', messages: user, think: false });
      await until(() => clock.pending() > 0);
      clock.advance(119_999);
      assert.ok(await stillPending(res));
      assert.equal(chunks, 0, 'not a byte while the call is generated');
      clock.advance(1);
      const lines = await collectNdjson(await res);
      assert.equal(lines.length, 1);
      const [final] = lines as Array<{
        done: boolean;
        done_reason: string;
        message: {
          content: string;
          tool_calls: Array<{ id: string; function: { index: number } }>;
        };
      }>;
      assert.equal(final?.done, true);
      assert.equal(final?.done_reason, 'stop');
      assert.equal(final?.message.content, '');
      const calls = final?.message.tool_calls ?? [];
      assert.deepEqual(
        calls.map((c) => c.function.index),
        [0, 1],
      );
      // llama.cpp's gen_tool_call_id(): 32 of [0-9A-Za-z] (format unconfirmed in the note).
      for (const call of calls) assert.match(call.id, /^[0-9A-Za-z]{32}$/);
    });

    it('is what the ollama client sees as one final part with the calls', async () => {
      sim.script('llama3.2:3b', {
        tool_calls: [weather],
        toolCallMode: 'native',
        silenceMs: 5_000,
      });
      // Not even the headers leave during the silence: the client's call itself is pending.
      const opened = client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
      await until(() => clock.pending() > 0);
      assert.ok(await stillPending(opened));
      clock.advance(5_000);
      const stream = await opened;
      const seen = [];
      for await (const part of stream) seen.push(part);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.done, true);
      assert.equal(seen[0]?.message.tool_calls?.[0]?.function.name, 'get_weather');
    });

    it('on the rendered path sends the calls in a done:false chunk with call_ ids after the silence', async () => {
      sim.script('llama3.2:3b', { tool_calls: [weather], silenceMs: 1_000 });
      const res = post(sim, '/api/chat', { model: 'llama3.2:3b', messages: user });
      await until(() => clock.pending() > 0);
      clock.advance(1_000);
      const lines = (await collectNdjson(await res)) as Array<{
        done: boolean;
        message: { tool_calls?: Array<{ id: string }> };
      }>;
      assert.deepEqual(
        lines.map((l) => l.done),
        [false, true],
      );
      assert.match(lines[0]?.message.tool_calls?.[0]?.id ?? '', /^call_[a-z0-9]{8}$/);
      assert.equal(lines[1]?.message.tool_calls, undefined);
    });

    it('takes the mode from the model when the script does not say', async () => {
      const native = await startOllamaSimulator({
        models: [
          { name: 'gemma3:4b', capabilities: ['completion', 'tools'], toolCallMode: 'native' },
        ],
      });
      try {
        native.script('gemma3:4b', { tool_calls: [weather] });
        const lines = await collectNdjson(
          await post(native, '/api/chat', { model: 'gemma3:4b', messages: user }),
        );
        assert.equal(lines.length, 1);
        assert.ok((lines[0]?.message as { tool_calls?: unknown[] }).tool_calls?.length);
      } finally {
        await native.close();
      }
    });
  });

  describe('per-model deterministic failures answer 500 (§2.4)', () => {
    it("fails every load of a broken model with Ollama's text, other models unaffected", async () => {
      sim.failModel('qwen3:8b', 'load');
      for (let i = 0; i < 2; i += 1) {
        await assert.rejects(
          client.chat({ model: 'qwen3:8b', messages: user }),
          responseError(500, 'llama-server process has terminated: exit status 1'),
        );
      }
      assert.equal((await client.chat({ model: 'llama3.2:3b', messages: user })).done, true);
      assert.equal(sim.counts('qwen3:8b').loadsFailed, 2);
      assert.deepEqual(
        sim.loaded().map((m) => m.name),
        ['llama3.2:3b'],
      );
      assert.equal((await fetch(sim.url)).status, 200, 'GET / still answers');
      sim.failModel('qwen3:8b', undefined);
      assert.equal((await client.chat({ model: 'qwen3:8b', messages: user })).done, true);
    });

    it('answers out-of-memory and a load stall with their prefixes', async () => {
      sim.failModel('qwen3:8b', { kind: 'oom', detail: 'cudaMalloc failed' });
      await assert.rejects(
        client.generate({ model: 'qwen3:8b', prompt: '' }),
        responseError(500, 'llama-server reported out-of-memory during startup: cudaMalloc failed'),
      );
      sim.failModel('qwen3:8b', 'load-timeout');
      await assert.rejects(client.generate({ model: 'qwen3:8b', prompt: 'x' }), (err: Error) => {
        assert.match(err.message, /^timed out waiting for llama-server to start - /);
        return true;
      });
    });

    it('crashes the runner on each request: 500 before the first byte, and it leaves /api/ps', async () => {
      await client.generate({ model: 'qwen3:8b', prompt: '' });
      sim.failModel('qwen3:8b', 'crash');
      await assert.rejects(
        client.chat({ model: 'qwen3:8b', messages: user }),
        responseError(500, CRASHED),
      );
      assert.deepEqual((await client.ps()).models, []);
      assert.equal((await client.chat({ model: 'llama3.2:3b', messages: user })).done, true);
    });

    it('cuts a stream with an error line when the runner dies mid-stream', async () => {
      sim.failModel('qwen3:8b', { kind: 'crash', afterChunks: 2 });
      const lines = await collectNdjson(
        await post(sim, '/api/chat', { model: 'qwen3:8b', messages: user }),
      );
      assert.equal(lines.length, 3);
      assert.deepEqual(lines.at(-1), {
        error: 'an error was encountered while running the model: unexpected EOF',
      });
    });
  });

  describe('the bounded pending queue (§5)', () => {
    it('answers 503 when more requests wait for a load than OLLAMA_MAX_QUEUE, not for a loaded model', async () => {
      const busy = await startOllamaSimulator({ clock, maxQueue: 2, loadDelayMs: 60_000 });
      try {
        const c = new Ollama({ host: busy.url });
        const warm = c.generate({ model: 'llama3.2:3b', prompt: '' });
        await busy.waitFor('loading');
        clock.advance(60_000);
        await warm;
        const loading = busy.waitFor('loading');
        const first = c.generate({ model: 'qwen3:8b', prompt: '' });
        await loading;
        const waiting = [1, 2].map(() => c.chat({ model: 'qwen3:8b', messages: user }));
        await until(() => busy.requests.length === 4);
        const full = await post(busy, '/api/chat', { model: 'qwen3:8b', messages: user });
        assert.equal(full.status, 503);
        assert.deepEqual(await full.json(), { error: BUSY });
        // A loaded model's requests bypass the queue and wait on its slots instead.
        const loaded = await c.chat({ model: 'llama3.2:3b', messages: user });
        assert.equal(loaded.done, true);
        clock.advance(60_000);
        await first;
        await Promise.all(waiting);
      } finally {
        await busy.close();
      }
    });
  });

  describe('hangs and bursts on the clock', () => {
    it('hangFor: accepts and answers nothing until the window ends', async () => {
      sim.hangFor(3_000);
      const seen = sim.waitFor('request');
      const answer = client.list();
      await seen;
      clock.advance(2_999);
      assert.ok(await stillPending(answer));
      assert.equal(sim.inFlight(), 1);
      clock.advance(1);
      assert.equal((await answer).models.length, 3);
      assert.equal((await client.version()).version, '0.12.6', 'over once the window passed');
    });

    it('hangFor: pauses a stream already under way', async () => {
      sim.setChunkLatency(100);
      const stream = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      sim.hangFor(3_000);
      const next = it.next();
      clock.advance(2_999);
      assert.ok(await stillPending(next));
      clock.advance(1);
      assert.equal((await next).value?.message.content, ' from');
      sim.setChunkLatency(0);
      await until(() => clock.pending() > 0);
      clock.advance(100);
      for (let r = await it.next(); !r.done; r = await it.next());
    });

    it('failFor: a burst of 500s on inference routes for a window', async () => {
      sim.failFor(3_000);
      await assert.rejects(
        client.chat({ model: 'llama3.2:3b', messages: user }),
        responseError(500, 'an error was encountered while running the model'),
      );
      assert.equal(
        (await client.version()).version,
        '0.12.6',
        'the default scope spares /api/version',
      );
      clock.advance(3_000);
      assert.equal((await client.chat({ model: 'llama3.2:3b', messages: user })).done, true);
      sim.failFor(1_000, 503, undefined, 'any');
      await assert.rejects(client.version(), responseError(503, BUSY));
    });
  });

  describe('the generation log', () => {
    it('records order and concurrency of generations', async () => {
      const wide = await startOllamaSimulator({ clock, numParallel: 2, recordGenerations: true });
      try {
        const c = new Ollama({ host: wide.url });
        const gate = wide.hold();
        const streams = await Promise.all(
          [0, 1].map(() => c.chat({ model: 'llama3.2:3b', messages: user, stream: true })),
        );
        const third = c.chat({ model: 'llama3.2:3b', messages: user });
        await until(() => wide.requests.length === 3);
        assert.ok(await stillPending(third));
        assert.equal(wide.generations.length, 2, 'the third waits for a slot');
        gate.release();
        for (const s of streams) for await (const part of s) void part;
        await third;
        assert.equal(wide.maxConcurrency(), 2);
        assert.equal(wide.maxConcurrency('llama3.2:3b'), 2);
        assert.deepEqual(
          wide.generations.map((g) => g.requestId),
          wide.requests.map((r) => r.id),
          'in the order they started',
        );
        assert.deepEqual(
          wide.generations.slice(0, 2).map((g) => g.concurrent),
          [1, 2],
        );
        assert.ok(wide.generations.every((g) => g.endedAt !== undefined));
      } finally {
        await wide.close();
      }
    });
  });
});
