import assert from 'node:assert/strict';
import { DEFAULT_MODELS } from '../support/ollama-simulator/catalog';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startServerProcess, type ServerProcess } from '../support/server-process';

const HF = 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M';

describe('a three-part model name as the active model (the built server)', () => {
  let sim: OllamaSimulator;
  let server: ServerProcess | undefined;
  before(async () => {
    sim = await startOllamaSimulator({
      models: [
        ...DEFAULT_MODELS,
        {
          name: HF,
          family: 'llama',
          parameterSize: '1.2B',
          quantization: 'Q4_K_M',
          capabilities: ['completion', 'tools'],
          contextLength: 131072,
          sizeBytes: 807694464,
        },
      ],
    });
  });
  after(async () => {
    server?.kill();
    await sim.close();
  });

  it('starts, preloads it, reports it installed and runs an agent on it', async () => {
    server = await startServerProcess({
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: HF,
      OLLAMA_PRELOAD: 'true',
    });
    await server.waitForLine((l) => l.message === 'startup complete');
    const ready = await fetch(`${server.url}/health/ready`);
    assert.equal(ready.status, 200, await ready.text());
    const preload = sim.requests.find(
      (r) =>
        (r.path === '/api/generate' || r.path === '/api/chat') &&
        (r.body as { model?: string }).model === HF,
    );
    assert.ok(preload, 'the preload named the model as configured');

    const run = await fetch(`${server.url}/agents/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi' }),
    });
    const body = (await run.json()) as { status: string; model: string };
    assert.equal(run.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'completed');
    assert.equal(body.model, HF);

    const models = (await (await fetch(`${server.url}/ollama/models`)).json()) as {
      models: Array<{ name: string; active: boolean }>;
    };
    assert.deepEqual(
      models.models.filter((m) => m.active).map((m) => m.name),
      [HF],
    );
  });
});
