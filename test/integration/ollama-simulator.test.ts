import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startOllamaSimulator } from '../support/ollama-simulator';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { responseError } from '../support/response-error';

function post(sim: OllamaSimulator, path: string, body: unknown, method = 'POST') {
  return fetch(`${sim.url}${path}`, {
    method,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('ollama simulator: models and routing', () => {
  let sim: OllamaSimulator;
  let client: Ollama;

  beforeEach(async () => {
    sim = await startOllamaSimulator();
    client = new Ollama({ host: sim.url });
  });
  afterEach(() => sim.close());

  it('answers liveness and version like Ollama', async () => {
    const res = await fetch(sim.url);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await res.text(), 'Ollama is running');
    assert.deepEqual(await client.version(), { version: '0.12.6' });
  });

  it('lists installed models newest first with hex digests and details', async () => {
    const { models } = await client.list();
    assert.deepEqual(
      models.map((m) => m.name),
      ['llama3.2:3b', 'qwen3:8b', 'nomic-embed-text:latest'],
    );
    const first = models[0];
    assert.ok(first);
    assert.match(first.digest, /^[0-9a-f]{64}$/);
    assert.equal(first.details.family, 'llama');
    assert.equal(first.details.quantization_level, 'Q4_K_M');
  });

  it('shows a model with capabilities and a context length under its architecture', async () => {
    const info = await client.show({ model: 'qwen3:8b' });
    assert.deepEqual(info.capabilities, ['completion', 'tools', 'thinking']);
    // Typed as a Map by ollama-js, but it arrives as a plain JSON object.
    const modelInfo = info.model_info as unknown as Record<string, unknown>;
    const arch = modelInfo['general.architecture'] as string;
    assert.equal(modelInfo[`${arch}.context_length`], 40960);
  });

  it('surfaces an unknown model in show as a 404 ResponseError with the canonical name', async () => {
    await assert.rejects(
      client.show({ model: 'nope' }),
      responseError(404, "model 'nope:latest' not found"),
    );
    const res = await post(sim, '/api/show', {});
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: 'model is required' });
  });

  it('lists a preloaded model in ps and drops it after a keep_alive 0 unload', async () => {
    assert.deepEqual(await client.ps(), { models: [] });
    const loaded = await client.generate({ model: 'llama3.2:3b', prompt: '' });
    assert.equal(loaded.done_reason, 'load');
    const { models } = await client.ps();
    assert.equal(models.length, 1);
    assert.equal(models[0]?.name, 'llama3.2:3b');
    assert.equal((models[0] as unknown as { context_length: number }).context_length, 4096);
    const unloaded = await client.chat({ model: 'llama3.2:3b', messages: [], keep_alive: 0 });
    assert.equal(unloaded.done_reason, 'unload');
    assert.deepEqual(unloaded.message, { role: 'assistant', content: '' });
    assert.deepEqual(await client.ps(), { models: [] });
    await client.chat({ model: 'qwen3:8b', messages: [], options: { num_ctx: 8192 } });
    const [qwen] = (await client.ps()).models as unknown as Array<{ context_length: number }>;
    assert.equal(qwen?.context_length, 8192);
  });

  it('answers HEAD without a body', async () => {
    const head = await fetch(`${sim.url}/api/tags`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });

  it('pulls a model with progress ending in success, after which it is installed', async () => {
    const stream = await client.pull({ model: 'smollm2:135m', stream: true });
    const lines = [];
    for await (const line of stream) lines.push(line);
    assert.equal(lines[0]?.status, 'pulling manifest');
    const layer = lines.find((l) => /^pulling [0-9a-f]{12}$/.test(l.status));
    assert.ok(layer);
    assert.match(layer.digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(lines.some((l) => l.completed === l.total && l.total > 0));
    assert.deepEqual(
      lines.slice(-3).map((l) => l.status),
      ['verifying sha256 digest', 'writing manifest', 'success'],
    );
    // ollama-js sends `name`, not `model`.
    assert.equal((sim.requests.at(-1)?.body as { name?: string }).name, 'smollm2:135m');
    assert.ok((await client.list()).models.some((m) => m.name === 'smollm2:135m'));
  });

  it('fails a pull of an unknown model after "pulling manifest"', async () => {
    const stream = await client.pull({ model: 'nope', stream: true });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const line of stream) seen.push(line.status);
    }, /^Error: pull model manifest: file does not exist$/);
    assert.deepEqual(seen, ['pulling manifest']);
    await assert.rejects(
      client.pull({ model: 'nope' }),
      responseError(500, 'pull model manifest: file does not exist'),
    );
  });

  it('deletes with an empty 200 body and 404s an unknown name as sent', async () => {
    const res = await post(sim, '/api/delete', { model: 'qwen3:8b' }, 'DELETE');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), null);
    assert.equal(await res.text(), '');
    assert.deepEqual(await client.delete({ model: 'llama3.2:3b' }), { status: 'success' });
    assert.deepEqual(
      (await client.list()).models.map((m) => m.name),
      ['nomic-embed-text:latest'],
    );
    await assert.rejects(
      client.delete({ model: 'nope' }),
      responseError(404, "model 'nope' not found"),
    );
  });

  it('copies a model and 404s a missing source with double quotes', async () => {
    await client.copy({ source: 'llama3.2:3b', destination: 'mine:v1' });
    assert.ok((await client.list()).models.some((m) => m.name === 'mine:v1'));
    await assert.rejects(
      client.copy({ source: 'nope', destination: 'x' }),
      responseError(404, 'model "nope" not found'),
    );
  });

  it('embeds into L2-normalised vectors and preloads on empty input', async () => {
    const out = await client.embed({ model: 'nomic-embed-text', input: ['a', 'b'] });
    assert.equal(out.embeddings.length, 2);
    for (const vector of out.embeddings) {
      assert.equal(vector.length, 768);
      const norm = Math.sqrt(vector.reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - 1) < 1e-9);
    }
    await assert.rejects(
      client.embed({ model: 'all-minilm', input: 'x' }),
      responseError(404, 'model "all-minilm" not found, try pulling it first'),
    );
    await assert.rejects(
      client.generate({ model: 'nomic-embed-text', prompt: 'x' }),
      responseError(400, '"nomic-embed-text" does not support generate'),
    );
    const preload = await post(sim, '/api/embed', { model: 'nomic-embed-text:latest', input: '' });
    assert.deepEqual(await preload.json(), { model: 'nomic-embed-text:latest', embeddings: [] });
    assert.ok(sim.loaded().some((m) => m.name === 'nomic-embed-text:latest'));
  });

  it('answers 405 for a wrong method on a known path and 404 otherwise', async () => {
    const wrong = await fetch(`${sim.url}/api/show`);
    assert.equal(wrong.status, 405);
    assert.equal(await wrong.text(), '405 method not allowed');
    const missing = await fetch(`${sim.url}/api/nope`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), '404 page not found');
  });

  it('rejects empty and malformed bodies with 400', async () => {
    const empty = await post(sim, '/api/chat', '');
    assert.equal(empty.status, 400);
    assert.deepEqual(await empty.json(), { error: 'missing request body' });
    const bad = await post(sim, '/api/chat', 'x{');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('content-type'), 'application/json; charset=utf-8');
  });

  it('lists models the OpenAI way at /v1/models', async () => {
    const res = await fetch(`${sim.url}/v1/models`);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const body = (await res.json()) as { object: string; data: Array<{ id: string }> };
    assert.equal(body.object, 'list');
    assert.deepEqual(
      body.data.map((m) => m.id),
      ['llama3.2:3b', 'qwen3:8b', 'nomic-embed-text:latest'],
    );
  });
});
