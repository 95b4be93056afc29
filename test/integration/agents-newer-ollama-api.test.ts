import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const THINKER = 'qwen3:8b';
const CLOUD = 'gpt-oss:20b-cloud';

async function run(h: AgentsHarness, body: Record<string, unknown>): Promise<AgentRun> {
  const res = await fetch(`${h.url}/agents/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as AgentRun;
}

const chats = (h: AgentsHarness) =>
  h.sim.requests
    .filter(
      (r) =>
        r.path === '/api/chat' && ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
    )
    .map((r) => r.body as { model: string; think?: unknown });

describe('agent runs against newer Ollama APIs', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness();
  });
  afterEach(() => h.close());

  describe('think levels', () => {
    it('passes a level from the request to Ollama and streams the thinking', async () => {
      const reply = { thinking: 'Let me see.', chunks: ['Four.'] };
      h.sim.script(THINKER, reply);
      const sse = await openSse(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: '2+2?', model: THINKER, think: 'high', stream: true },
      });
      await sse.ended;
      const types = sse.events().map((e) => e.event);
      assert.ok(types.includes('thinking.delta'), types.join(','));
      assert.equal(chats(h).at(-1)?.think, 'high');
    });

    it("takes the agent's level, overridden by the request's", async () => {
      h.sim.script(THINKER, { content: 'a' }, { content: 'b' });
      const agent = { model: THINKER, think: 'max' };
      await run(h, { agent, input: 'x' });
      assert.equal(chats(h).at(-1)?.think, 'max');
      await run(h, { agent, input: 'x', think: false });
      assert.equal(chats(h).at(-1)?.think, false);
    });

    it('refuses a level Ollama does not know, before any call', async () => {
      const res = await fetch(`${h.url}/agents/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: 'x', think: 'extreme' }),
      });
      assert.equal(res.status, 400);
      assert.equal(
        ((await res.json()) as { error: { code: string } }).error.code,
        'VALIDATION_FAILED',
      );
      assert.equal(chats(h).length, 0);
    });
  });

  describe('cloud models', () => {
    for (const [mode, code] of [
      ['unauthorized', 'OLLAMA_CLOUD_UNAUTHORIZED'],
      ['disabled', 'OLLAMA_CLOUD_FORBIDDEN'],
    ] as const) {
      it(`ends the run with ${code} when Ollama's ollama.com access is ${mode}`, async () => {
        h.sim.setCloud(mode);
        const out = await run(h, { agent: { model: CLOUD }, input: 'hi' });
        assert.equal(out.status, 'failed');
        assert.equal(out.stop_reason, 'model_error');
        assert.equal((out.error?.details as { error_code?: string }).error_code, code);
      });
    }

    it('passes a cloud 429 on as retryable, with when to retry', async () => {
      h.sim.setCloud({
        status: 429,
        body: { error: 'too many requests' },
        headers: { 'retry-after': '7' },
      });
      const out = await run(h, { agent: { model: CLOUD }, input: 'hi' });
      assert.equal(out.stop_reason, 'ollama_unavailable');
      assert.equal(out.error?.retryable, true);
      assert.deepEqual(
        {
          code: (out.error?.details as { error_code?: string }).error_code,
          retry: (out.error?.details as { retry_after_ms?: number }).retry_after_ms,
        },
        { code: 'OLLAMA_CLOUD_RATE_LIMITED', retry: 7000 },
      );
    });
  });

  describe('model names', () => {
    it('accepts a three-part name with a registry port in an inline agent and sends it as given', async () => {
      const name = 'registry.example.com:5000/team/model:v1';
      await run(h, { agent: { model: name }, input: 'hi' });
      // The model is not installed: its load (a chat without messages) is the call Ollama sees.
      const sent = h.sim.requests.filter((r) => r.path === '/api/chat').at(-1);
      assert.equal((sent?.body as { model?: string } | undefined)?.model, name);
    });

    it('answers a name Ollama would refuse with 400 before calling Ollama', async () => {
      const res = await fetch(`${h.url}/agents/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ agent: { model: 'hf.co/model' }, input: 'hi' }),
      });
      assert.equal(res.status, 400);
      assert.equal(chats(h).length, 0);
    });

    it("answers Ollama's own 400 for a name as a 400 (OLLAMA_BAD_REQUEST) on the model routes", async () => {
      await assert.rejects(
        h.ollama.show('hf.co/model'),
        (err: { code?: string; status?: number; details?: { upstream_message?: string } }) =>
          err.code === 'OLLAMA_BAD_REQUEST' &&
          err.status === 400 &&
          err.details?.upstream_message === 'invalid model name',
      );
    });
  });
});
