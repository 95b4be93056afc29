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

    it('answers a cloud 429 as a 429 with its Retry-After (refused before any work)', async () => {
      h.sim.setCloud({
        status: 429,
        body: { error: 'too many requests' },
        headers: { 'retry-after': '7' },
      });
      const res = await fetch(`${h.url}/agents/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ agent: { model: CLOUD }, input: 'hi' }),
      });
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'OLLAMA_CLOUD_RATE_LIMITED');
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
  describe('long transcripts and tool results', () => {
    it('sends truncate: false and ends a run whose transcript outgrows the context as context_exceeded', async () => {
      const out = await run(h, { input: 'word '.repeat(5000) });
      assert.equal(out.status, 'incomplete');
      assert.equal(out.stop_reason, 'context_exceeded');
      const sent = h.sim.requests.filter((r) => r.path === '/api/chat').at(-1)?.body as {
        truncate?: boolean;
      };
      assert.equal(sent.truncate, false);
    });

    it('ties each tool result to its call by tool_call_id, and sends the call back with its index', async () => {
      h.sim.script(
        'llama3.2:3b',
        { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '2+3' } } }] },
        { content: 'The sum is 5.' },
      );
      const out = await run(h, { input: '2+3?' });
      assert.equal(out.status, 'completed');
      const second = h.sim.requests.filter((r) => r.path === '/api/chat').at(-1)?.body as {
        messages: Array<{
          role: string;
          tool_call_id?: string;
          tool_calls?: Array<{ id?: string; function: { index?: number } }>;
        }>;
      };
      const call = second.messages.find((m) => m.role === 'assistant')?.tool_calls?.[0];
      const result = second.messages.find((m) => m.role === 'tool');
      assert.ok(call?.id, 'the call has an id');
      assert.equal(result?.tool_call_id, call?.id);
      assert.equal(call?.function.index, 0);
    });
  });
});
