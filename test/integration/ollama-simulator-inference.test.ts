import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { collectNdjson, startOllamaSimulator } from '../support/ollama-simulator';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { responseError } from '../support/response-error';

const T0 = Date.parse('2026-01-05T10:00:00.000Z');
const user = [{ role: 'user', content: 'hi' }];

function post(sim: OllamaSimulator, path: string, body: unknown) {
  return fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
}

describe('ollama simulator: chat and generate', () => {
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    sim = await startOllamaSimulator({ now: () => T0 });
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  it('streams by default when `stream` is absent, one NDJSON object per chunk', async () => {
    const res = await post(sim, '/api/generate', { model: 'llama3.2:3b', prompt: 'hi' });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = await collectNdjson(res);
    assert.equal(lines.length, 6);
    assert.ok(lines.slice(0, 5).every((l) => l.done === false && typeof l.response === 'string'));
    const last = lines.at(-1) ?? {};
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'stop');
    for (const key of ['total_duration', 'load_duration', 'eval_count', 'eval_duration']) {
      assert.ok((last[key] as number) > 0, key);
    }
  });

  it('answers one JSON object when stream is false, with the content concatenated', async () => {
    sim.script('llama3.2:3b', { chunks: ['Hel', 'lo'] });
    const res = await post(sim, '/api/chat', {
      model: 'llama3.2:3b',
      messages: user,
      stream: false,
    });
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    const body = (await res.json()) as { message: { content: string }; done: boolean };
    assert.equal(body.message.content, 'Hello');
    assert.equal(body.done, true);
  });

  it('streams chat chunks through the client with scripted chunks', async () => {
    sim.script('qwen3:8b', { chunks: ['a', 'b', 'c'], evalCount: 3 });
    const stream = await client.chat({ model: 'qwen3:8b', messages: user, stream: true });
    const parts = [];
    for await (const part of stream) parts.push(part);
    assert.deepEqual(
      parts.map((p) => p.message.content),
      ['a', 'b', 'c', ''],
    );
    assert.equal(parts.at(-1)?.eval_count, 3);
  });

  it('generates non-streamed through the client, with the model named as sent', async () => {
    sim.script('llama3.2:3b', { content: 'Paris is the capital.' });
    const out = await client.generate({ model: 'LLAMA3.2:3b', prompt: 'capital?' });
    assert.equal(out.response, 'Paris is the capital.');
    assert.equal(out.model, 'LLAMA3.2:3b');
    assert.ok(Array.isArray(out.context));
  });

  it('returns scripted tool calls with object arguments, an index and a call id', async () => {
    const call = { function: { name: 'get_weather', arguments: { city: 'Oslo' } } };
    sim.script('llama3.2:3b', { tool_calls: [call] }, { tool_calls: [call] });
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: {} } }];
    const once = await client.chat({ model: 'llama3.2:3b', messages: user, tools });
    const [toolCall] = once.message.tool_calls ?? [];
    assert.deepEqual(toolCall?.function.arguments, { city: 'Oslo' });
    assert.equal((toolCall?.function as { index?: number }).index, 0);
    assert.match((toolCall as { id?: string }).id ?? '', /^call_[a-z0-9]{8}$/);
    const stream = await client.chat({ model: 'llama3.2:3b', messages: user, tools, stream: true });
    const parts = [];
    for await (const part of stream) parts.push(part);
    assert.equal(parts.length, 2);
    assert.equal(parts[0]?.message.content, '');
    assert.equal(parts[0]?.message.tool_calls?.[0]?.function.name, 'get_weather');
    assert.equal(parts[1]?.done_reason, 'stop');
  });

  it('answers JSON text for format json and for a schema', async () => {
    const json = await client.generate({ model: 'llama3.2:3b', prompt: 'x', format: 'json' });
    assert.equal(typeof JSON.parse(json.response ?? ''), 'object');
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, n: { type: 'integer' } },
    };
    const shaped = await client.chat({ model: 'llama3.2:3b', messages: user, format: schema });
    assert.deepEqual(JSON.parse(shaped.message.content), { city: 'example', n: 1 });
  });

  it('streams thinking chunks before content on a thinking model', async () => {
    sim.script('qwen3:8b', { thinking: 'Let me see.', content: 'Yes.' });
    const stream = await client.chat({
      model: 'qwen3:8b',
      messages: user,
      think: true,
      stream: true,
    });
    const parts = [];
    for await (const part of stream) parts.push(part.message);
    assert.deepEqual(
      parts.filter((m) => m.thinking).map((m) => m.thinking),
      ['Let', ' me', ' see.'],
    );
    const firstContent = parts.findIndex((m) => m.content !== '');
    assert.ok(firstContent > parts.findIndex((m) => m.thinking));
    await assert.rejects(
      client.chat({ model: 'llama3.2:3b', messages: user, think: true }),
      responseError(400, '"llama3.2:3b" does not support thinking'),
    );
  });

  it('reports the catalogue of request errors', async () => {
    await assert.rejects(
      client.chat({ model: '', messages: user }),
      responseError(400, 'model is required'),
    );
    await assert.rejects(
      client.generate({ model: '', prompt: 'x' }),
      responseError(404, "model '' not found"),
    );
    await assert.rejects(
      client.embed({ model: '', input: 'x' }),
      responseError(404, "model '' not found"),
    );
    await assert.rejects(
      client.chat({ model: 'llama3.2:3b', messages: user, format: 'xml' }),
      responseError(500, 'invalid format: "xml"; expected "json" or a valid JSON Schema object'),
    );
    await assert.rejects(
      client.chat({ model: 'nope', messages: user }),
      responseError(404, "model 'nope' not found"),
    );
    await assert.rejects(
      client.chat({ model: 'nomic-embed-text', messages: user }),
      responseError(400, '"nomic-embed-text" does not support chat'),
    );
    sim.script('qwen3:8b', { error: 'model is overloaded', status: 503 });
    await assert.rejects(
      client.chat({ model: 'qwen3:8b', messages: user }),
      responseError(503, 'model is overloaded'),
    );
  });

  it('rejects tools on a model without the tools capability', async () => {
    const small = await startOllamaSimulator({ models: [{ name: 'smollm2:135m' }] });
    try {
      const res = await post(small, '/api/chat', {
        model: 'smollm2:135m',
        messages: user,
        tools: [{ type: 'function', function: { name: 'f' } }],
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: string };
      assert.equal(body.error, 'registry.ollama.ai/library/smollm2:135m does not support tools');
    } finally {
      await small.close();
    }
  });

  it('accepts keep_alive as seconds, Go durations and negatives, and rejects a bare string', async () => {
    const preload = (keep_alive: unknown) =>
      post(sim, '/api/generate', { model: 'llama3.2:3b', keep_alive });
    await preload('1h30m');
    const ps = (await (await fetch(`${sim.url}/api/ps`)).json()) as {
      models: Array<{ expires_at: string }>;
    };
    assert.equal(ps.models[0]?.expires_at, new Date(T0 + 90 * 60_000).toISOString());
    await preload(42.5);
    assert.equal(sim.loaded()[0]?.keepAliveMs, 42_500);
    await preload(-1);
    assert.ok((sim.loaded()[0]?.expiresAt.getUTCFullYear() ?? 0) > 2300);
    await preload('-1m');
    assert.ok((sim.loaded()[0]?.expiresAt.getUTCFullYear() ?? 0) > 2300);
    const bare = await preload('300');
    assert.equal(bare.status, 400);
    assert.deepEqual(await bare.json(), { error: 'time: missing unit in duration "300"' });
    // Omitted keep_alive keeps what the model has.
    await post(sim, '/api/generate', { model: 'llama3.2:3b', prompt: 'x', stream: false });
    assert.ok((sim.loaded()[0]?.expiresAt.getUTCFullYear() ?? 0) > 2300);
  });

  it('unloads a model when its keep-alive expires', async () => {
    const unloaded = sim.waitFor('unload', (e) => e.model === 'qwen3:8b');
    await client.generate({ model: 'qwen3:8b', prompt: 'x', keep_alive: '20ms' });
    assert.equal((await unloaded).model, 'qwen3:8b');
    assert.deepEqual(sim.loaded(), []);
  });

  it('evicts an idle model beyond maxLoadedModels', async () => {
    const small = await startOllamaSimulator({ maxLoadedModels: 1 });
    try {
      const c = new Ollama({ host: small.url });
      await c.generate({ model: 'llama3.2:3b', prompt: '' });
      const evicted = small.waitFor('unload');
      await c.generate({ model: 'qwen3:8b', prompt: '' });
      assert.equal((await evicted).model, 'llama3.2:3b');
      assert.deepEqual(
        small.loaded().map((m) => m.name),
        ['qwen3:8b'],
      );
    } finally {
      await small.close();
    }
  });
});
