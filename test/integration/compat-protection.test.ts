import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI, { APIError } from 'openai';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import { createCaptureLogger } from '../support/capture-logger';
import { AGENT_KEY, TEST_API_KEYS } from '../support/security';

const MODEL = 'llama3.2:3b';
const KEYED = { API_KEYS: TEST_API_KEYS, RATE_LIMIT_COMPAT_PER_MINUTE: '1000' };
const headers = { authorization: `Bearer ${AGENT_KEY}`, 'content-type': 'application/json' };

function chat(running: RunningApp, stream: boolean, signal?: AbortSignal): Promise<Response> {
  return fetch(`${running.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream }),
    signal,
  });
}

describe('drop-in endpoints: the queue, the circuit and clients that leave', () => {
  let t: TestApp;
  afterEach(() => t.close());

  describe('when the admission queue is full', () => {
    it("answers 429 QUEUE_FULL with Retry-After, in OpenAI's shape on /v1 and Ollama's on /api", async () => {
      t = await buildTestApp({ env: { ...KEYED, OLLAMA_MAX_CONCURRENCY: '1', QUEUE_MAX: '0' } });
      const running = await t.listen();
      const gate = t.sim!.hold();
      const first = await chat(running, true);
      const reader = first.body!.getReader();
      await reader.read(); // the slot is taken: the first chunk came through
      const refused = await chat(running, false);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      const body = (await refused.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'QUEUE_FULL');
      assert.equal(body.error.type, 'rate_limit_error');
      const native = await fetch(`${running.url}/api/generate`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: MODEL, prompt: 'x' }),
      });
      assert.equal(native.status, 429);
      assert.equal(typeof ((await native.json()) as { error: unknown }).error, 'string');
      gate.release();
      while (!(await reader.read()).done);
    });
  });

  describe('when the circuit is open', () => {
    it('fails fast with 503 and Retry-After, without calling Ollama', async () => {
      t = await buildTestApp({
        env: {
          ...KEYED,
          CIRCUIT_FAILURE_THRESHOLD: '1',
          CIRCUIT_RESET_MS: '60000',
          OLLAMA_RETRY_MAX: '0',
        },
      });
      const running = await t.listen();
      await t.sim!.stop();
      const failed = await chat(running, false);
      assert.equal(failed.status, 503);
      assert.equal(
        ((await failed.json()) as { error: { code: string } }).error.code,
        'OLLAMA_UNAVAILABLE',
      );
      assert.equal(t.ollama.circuitState(), 'open');
      await t.sim!.start();
      const before = t.sim!.requests.length;
      const fast = await chat(running, true);
      assert.equal(fast.status, 503);
      assert.ok(Number(fast.headers.get('retry-after')) >= 1);
      const body = (await fast.json()) as { error: { code: string; type: string } };
      assert.deepEqual([body.error.code, body.error.type], ['OLLAMA_UNAVAILABLE', 'api_error']);
      assert.equal(t.sim!.requests.length, before, 'Ollama was not called');
    });
  });

  describe('when the client disconnects mid-stream', () => {
    it('aborts the Ollama request (the simulator sees it), frees the slot, logs no error', async () => {
      const capture = createCaptureLogger({ level: 'debug' });
      t = await buildTestApp({
        env: { ...KEYED, OLLAMA_MAX_CONCURRENCY: '1' },
        deps: { logger: capture.logger },
      });
      const running = await t.listen();
      t.sim!.hold();
      const controller = new AbortController();
      const res = await chat(running, true, controller.signal);
      const reader = res.body!.getReader();
      await reader.read();
      const aborted = t.sim!.waitFor('aborted', (e) => e.path === '/v1/chat/completions');
      controller.abort();
      await aborted;
      t.sim!.reset();
      t.sim!.script(MODEL, { content: 'next' });
      const next = await chat(running, false);
      assert.equal(next.status, 200, 'the slot was given back');
      assert.deepEqual(
        capture.lines().filter((l) => l.level === 'error'),
        [],
        'a client that leaves is not an error',
      );
    });
  });
});

describe('drop-in endpoints: deadlines and streams that break', () => {
  let t: TestApp;
  afterEach(() => t.close());

  describe('when Ollama does not start answering in time', () => {
    it("answers 504 OLLAMA_TIMEOUT in the API's shape and aborts the Ollama request", async () => {
      t = await buildTestApp({
        env: { ...KEYED, OLLAMA_FIRST_BYTE_TIMEOUT_MS: '100', OLLAMA_RETRY_MAX: '0' },
      });
      const running = await t.listen();
      // One answer first: the gateway then knows the model is loaded and sends the chat as it is.
      const first = await chat(running, false);
      assert.equal(first.status, 200);
      await first.text();
      t.sim!.hang(true);
      const aborted = t.sim!.waitFor('aborted', (e) => e.path === '/v1/chat/completions');
      const sent = t.sim!.waitFor('request', (e) => e.path === '/v1/chat/completions');
      const answer = chat(running, true);
      await sent;
      t.clock.advance(200); // past the first-byte deadline, on the gateway's clock
      const res = await answer;
      assert.equal(res.status, 504);
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.deepEqual([body.error.code, body.error.type], ['OLLAMA_TIMEOUT', 'api_error']);
      await aborted;
    });
  });

  describe('when Ollama cuts a stream in the middle', () => {
    it('ends an SSE stream with a data: {"error"} event the openai SDK raises', async () => {
      t = await buildTestApp({ env: KEYED });
      const running = await t.listen();
      t.sim!.script(MODEL, { chunks: ['a', 'b', 'c', 'd'] });
      t.sim!.dropMidStream(2);
      const openai = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: AGENT_KEY, maxRetries: 0 });
      const stream = await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      let text = '';
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        })(),
        (err: unknown) => err instanceof APIError && err.code === 'OLLAMA_UNAVAILABLE',
      );
      assert.equal(text, 'ab');
    });

    it('ends an NDJSON stream with an {"error"} line ollama-js raises', async () => {
      t = await buildTestApp({ env: KEYED });
      const running = await t.listen();
      t.sim!.script(MODEL, { chunks: ['a', 'b', 'c', 'd'] });
      t.sim!.dropMidStream(2);
      const ollama = new Ollama({
        host: running.url,
        headers: { Authorization: `Bearer ${AGENT_KEY}` },
      });
      const stream = await ollama.chat({
        model: MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) void chunk;
        })(),
        /Ollama is not reachable/,
      );
    });
  });
});
