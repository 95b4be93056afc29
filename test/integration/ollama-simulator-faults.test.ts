import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startOllamaSimulator } from '../support/ollama-simulator';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { responseError } from '../support/response-error';

const user = [{ role: 'user', content: 'hi' }];
// Written out rather than imported: the two spaces are the point.
const BUSY = 'server busy, please try again.  maximum pending requests exceeded';

function chatBody(model: string, extra: Record<string, unknown> = {}) {
  return { method: 'POST', body: JSON.stringify({ model, messages: user, ...extra }) };
}

describe('ollama simulator: faults and lifecycle', () => {
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    sim = await startOllamaSimulator();
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  it('surfaces a mid-stream error line as a thrown error while iterating', async () => {
    sim.errorMidStream(2, 'boom');
    const stream = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const part of stream) seen.push(part.message.content);
    }, /^Error: boom$/);
    assert.equal(seen.length, 2);
  });

  it('surfaces a dropped connection as an error while iterating', async () => {
    sim.dropMidStream(1);
    const aborted: string[] = [];
    sim.on('aborted', () => aborted.push('aborted'));
    const closed = sim.waitFor('request-closed');
    const stream = await client.generate({ model: 'llama3.2:3b', prompt: 'x', stream: true });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const part of stream) seen.push(part.response ?? '');
    });
    assert.deepEqual(seen, ['Hello']);
    await closed;
    assert.deepEqual(aborted, [], 'a drop by the simulator is not a client abort');
  });

  it('answers a runner error in the middle of a non-streamed generation with a 500', async () => {
    sim.errorMidStream(2, 'boom');
    await assert.rejects(
      client.chat({ model: 'llama3.2:3b', messages: user }),
      responseError(500, 'boom'),
    );
  });

  it('closes the connection without an answer on a drop in a non-streamed generation', async () => {
    sim.dropMidStream(1);
    const closed = sim.waitFor('request-closed');
    const res = fetch(`${sim.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2:3b', prompt: 'x', stream: false }),
    });
    await assert.rejects(res, TypeError);
    await closed;
  });

  it('generates a non-streamed answer chunk by chunk: held by hold(), then answered whole', async () => {
    const gate = sim.hold();
    const chunks: unknown[] = [];
    sim.on('chunk', (e: { data?: unknown }) => chunks.push(e.data));
    const answer = client.chat({ model: 'llama3.2:3b', messages: user });
    await sim.waitFor('chunk');
    // The generation reaches the gate in the microtasks after its first chunk.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gate.held, 1, 'paused after its first chunk, like a stream');
    gate.release();
    const whole = await answer;
    assert.equal(whole.done, true);
    const parts = chunks.slice(0, -1) as Array<{ message: { content: string } }>;
    assert.equal(whole.message.content, parts.map((c) => c.message.content).join(''));
    assert.deepEqual(chunks.at(-1), JSON.parse(JSON.stringify(whole)), 'the last one is written');
  });

  it('answers the exact two-space 503 busy message via failNext', async () => {
    sim.failNext(1, 503);
    await assert.rejects(
      client.chat({ model: 'llama3.2:3b', messages: user }),
      responseError(503, BUSY),
    );
    const ok = await client.chat({ model: 'llama3.2:3b', messages: user });
    assert.equal(ok.done, true);
    sim.failNext(1, 503);
    const tags = await fetch(`${sim.url}/api/tags`);
    assert.equal(tags.status, 200, 'the default scope spares non-inference routes');
  });

  it('answers 503 busy when the pending load queue is full', async () => {
    const busy = await startOllamaSimulator({ maxQueue: 1, loadDelayMs: 60_000 });
    try {
      const loading = busy.waitFor('loading');
      const first = fetch(`${busy.url}/api/chat`, chatBody('llama3.2:3b')).catch((e: Error) => e);
      await loading;
      const queued = busy.waitFor('queued', (e) => e.model === 'qwen3:8b');
      const second = fetch(`${busy.url}/api/chat`, chatBody('qwen3:8b')).catch((e: Error) => e);
      await queued;
      const third = await fetch(`${busy.url}/api/chat`, chatBody('qwen3:8b'));
      assert.equal(third.status, 503);
      assert.equal(await third.text(), JSON.stringify({ error: BUSY }));
      assert.equal(busy.inFlight(), 2);
      await busy.close();
      await Promise.all([first, second]);
    } finally {
      await busy.close();
    }
  });

  it('refuses connections after stop() and serves again after start()', async () => {
    const port = sim.port;
    await sim.stop();
    await assert.rejects(client.version(), (err: Error) => {
      assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
      return true;
    });
    await sim.start();
    assert.equal(sim.port, port);
    assert.deepEqual(await client.version(), { version: '0.12.6' });
  });

  it('cuts open streams on stop()', async () => {
    const gate = sim.hold();
    const stream = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await sim.stop();
    await assert.rejects(async () => {
      for (let r = await iterator.next(); !r.done; r = await iterator.next());
    });
    gate.release();
    assert.equal(sim.inFlight(), 0);
  });

  it('keeps a hung request open in inFlight until the client aborts', async () => {
    sim.hang(true);
    const seen = sim.waitFor('request');
    const controller = new AbortController();
    const pending = fetch(`${sim.url}/api/tags`, { signal: controller.signal }).catch(
      (e: Error) => e,
    );
    await seen;
    assert.equal(sim.inFlight(), 1);
    const aborted = sim.waitFor('aborted');
    controller.abort();
    await aborted;
    assert.equal(sim.inFlight(), 0);
    assert.equal(((await pending) as Error).name, 'AbortError');
  });

  it('lets hung requests continue after hang(false)', async () => {
    sim.hang(1);
    const seen = sim.waitFor('request');
    const pending = client.list();
    await seen;
    sim.hang(false);
    assert.equal((await pending).models.length, 3);
  });

  it('holds streams after their first chunk until the gate steps or releases', async () => {
    const gate = sim.hold();
    let chunks = 0;
    sim.on('chunk', () => (chunks += 1));
    const stream = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.message.content, 'Hello');
    assert.equal(chunks, 1);
    gate.step();
    assert.equal((await iterator.next()).value?.message.content, ' from');
    assert.equal(chunks, 2);
    gate.release();
    let rest = 0;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest += 1;
    assert.equal(rest, 4);
  });

  it('queues requests FIFO on a busy model slot and counts them in flight', async () => {
    const gate = sim.hold();
    const first = await client.chat({ model: 'llama3.2:3b', messages: user, stream: true });
    const iterator = first[Symbol.asyncIterator]();
    await iterator.next();
    const waiting = sim.waitFor('request');
    const second = client.chat({ model: 'llama3.2:3b', messages: user });
    await waiting;
    assert.equal(sim.inFlight(), 2);
    gate.release();
    for (let r = await iterator.next(); !r.done; r = await iterator.next());
    assert.equal((await second).done, true);
  });

  it('serves /v1/chat/completions non-streamed by default and as SSE on request', async () => {
    const url = `${sim.url}/v1/chat/completions`;
    const plain = await fetch(url, chatBody('llama3.2:3b'));
    assert.equal(plain.headers.get('content-type'), 'application/json; charset=utf-8');
    const body = (await plain.json()) as {
      object: string;
      choices: Array<{ finish_reason: string }>;
    };
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.choices[0]?.finish_reason, 'stop');
    const sse = await fetch(url, chatBody('llama3.2:3b', { stream: true }));
    assert.equal(sse.headers.get('content-type'), 'text/event-stream');
    const events = (await sse.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const finish = JSON.parse(events.at(-2)?.slice('data: '.length) ?? '{}') as {
      choices: Array<{ delta: object; finish_reason: string }>;
    };
    assert.deepEqual(finish.choices[0], { index: 0, delta: {}, finish_reason: 'stop' });
    const missing = await fetch(url, chatBody('nope'));
    assert.equal(missing.status, 404);
    assert.equal(
      ((await missing.json()) as { error: { type: string } }).error.type,
      'not_found_error',
    );
  });
});
