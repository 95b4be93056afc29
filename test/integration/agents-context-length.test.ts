import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentsFileError, loadAgentsFile } from '../../services/agents/registry';
import { createSchemaRegistry } from '../../src/validation';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';

const MODEL = 'llama3.2:3b';

const post = (h: AgentsHarness, body: Record<string, unknown>) =>
  fetch(`${h.url}/agents/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/**
 * Ollama reloads a model when a request's num_ctx differs from the loaded runner's, including
 * a preload without one followed by a request with one (ollama-api.md §3.5b). The gateway owns
 * the context length: one setting, sent the same on the preload and on every request.
 */
describe('the context length the gateway owns (OLLAMA_NUM_CTX, OLLAMA_NUM_CTX_MODELS)', () => {
  let h: AgentsHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('sends the same num_ctx on the preload and every run, so Ollama loads once and never reloads', async () => {
    const gw = await startAgentsHarness({
      env: { OLLAMA_NUM_CTX: '4096', OLLAMA_NUM_CTX_MODELS: `${MODEL}=8192` },
    });
    h = gw;
    await gw.ollama.preload(MODEL);
    for (let i = 0; i < 3; i += 1) {
      const res = await post(gw, { input: 'hi' });
      assert.equal(res.status, 200);
    }
    const sent = gw.sim.requests
      .filter((r) => r.path === '/api/chat')
      .map((r) => (r.body as { options?: { num_ctx?: number } }).options?.num_ctx);
    assert.deepEqual(sent, [8192, 8192, 8192, 8192]);
    assert.equal(gw.sim.counts(MODEL).loads, 1);
    assert.equal(gw.sim.counts(MODEL).reloads, 0);
  });

  it('refuses a run whose agent or request asks for another num_ctx, naming both values', async () => {
    const gw = await startAgentsHarness({ env: { OLLAMA_NUM_CTX_MODELS: `${MODEL}=8192` } });
    h = gw;
    for (const body of [
      { agent: { model: MODEL, options: { num_ctx: 4096 } }, input: 'hi' },
      { input: 'hi', options: { num_ctx: 2048 } },
    ]) {
      const res = await post(gw, body);
      const out = (await res.json()) as {
        error: { code: string; details: Array<{ message: string }> };
      };
      assert.equal(res.status, 400);
      assert.equal(out.error.code, 'VALIDATION_FAILED');
      const message = out.error.details.map((d) => d.message).join(' ');
      assert.match(message, /num_ctx is (4096|2048), but the gateway sends 8192 for llama3\.2:3b/);
    }
    const same = await post(gw, { input: 'hi', options: { num_ctx: 8192 } });
    assert.equal(same.status, 200);
    assert.equal(gw.sim.counts(MODEL).reloads, 0);
  });

  it('refuses an agents file whose agent asks for another num_ctx, naming the agent', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'agents-'));
    try {
      const file = path.join(dir, 'agents.yaml');
      writeFileSync(
        file,
        'agents:\n  - name: long\n    model: qwen3:8b\n    options: { num_ctx: 32768 }\n',
      );
      assert.throws(
        () =>
          loadAgentsFile(file, {
            toolNames: [],
            schemas: createSchemaRegistry(),
            numCtx: { for: () => 8192, defaultModel: () => MODEL },
          }),
        (err: unknown) =>
          err instanceof AgentsFileError &&
          /\(long\): options\.num_ctx is 32768, but the gateway sends 8192 for qwen3:8b/.test(
            err.message,
          ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
