import assert from 'node:assert/strict';
import request from 'supertest';
import type { AgentRun } from '../../services/agents/types';
import { startAgentsHarness, storedEvents, type AgentsHarness } from '../support/agents-harness';

const MODEL = 'llama3.2:3b';

/** The options of the chat requests the simulator received, in order. */
function chatOptions(h: AgentsHarness): Array<{ seed?: number }> {
  return h.sim.requests
    .filter(
      (r) =>
        r.path === '/api/chat' && ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
    )
    .map((r) => ((r.body as { options?: { seed?: number } }).options ?? {}) as { seed?: number });
}

describe('groupthink: vote and judge', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness({ env: { GROUPTHINK_MAX_SAMPLES: '6' } });
  });
  afterEach(() => h.close());

  it('vote: 5 samples answering 3 to 2 return the majority answer, with the votes and summed usage', async () => {
    h.sim.script(
      MODEL,
      { content: 'Paris.', evalCount: 2, promptEvalCount: 10 },
      { content: 'Lyon', evalCount: 1, promptEvalCount: 10 },
      { content: ' paris', evalCount: 2, promptEvalCount: 10 },
      { content: 'Lyon.', evalCount: 1, promptEvalCount: 10 },
      { content: 'PARIS', evalCount: 2, promptEvalCount: 10 },
    );
    const res = await request(h.url)
      .post('/agents/run')
      .send({
        input: 'Capital of France?',
        agent: { system: 'Answer in one word.' },
        options: { seed: 100 },
        strategy: { type: 'vote', samples: 5 },
      })
      .expect(200);
    const run = res.body as AgentRun;
    assert.deepEqual(h.schemas.check('agent-run.response', run, 'response'), []);
    assert.equal(run.status, 'completed');
    assert.match(run.output.text, /^\s*paris\.?$/i);
    const g = run.groupthink;
    assert.equal(g?.candidates.length, 5);
    assert.deepEqual(
      g?.votes?.map((v) => [v.answer, v.count]),
      [
        ['paris', 3],
        ['lyon', 2],
      ],
    );
    assert.ok(g?.winner !== null && g?.votes?.[0]?.candidates.includes(g?.winner ?? -1));
    // Independent samples: one seed each.
    assert.deepEqual(
      chatOptions(h)
        .map((o) => o.seed)
        .sort(),
      [100, 101, 102, 103, 104],
    );
    assert.deepEqual(
      { ...run.usage, wall_ms: 0 },
      {
        input_tokens: 50,
        output_tokens: 8,
        total_tokens: 58,
        model_calls: 5,
        tool_calls: 0,
        wall_ms: 0,
      },
    );
    assert.deepEqual([...new Set(run.steps.map((s) => s.candidate))].sort(), [0, 1, 2, 3, 4]);
    const handle = await h.agents.service.find(run.id, undefined);
    const types = (await storedEvents(handle)).map((e) => e.type);
    assert.equal(types.filter((t) => t === 'candidate.completed').length, 5);
    assert.ok(types.indexOf('candidate.completed') < types.indexOf('run.completed'));
  });

  it('judge: the judge model picks a candidate (events, rationale, usage with the judge call)', async () => {
    h.sim.script(
      MODEL,
      { content: 'Answer A', evalCount: 1 },
      { content: 'Answer B', evalCount: 1 },
      { content: 'Answer C', evalCount: 1 },
    );
    h.sim.script('qwen3:8b', {
      content: '{"winner": 1, "rationale": "The second is the most complete."}',
      evalCount: 7,
    });
    const res = await request(h.url)
      .post('/agents/run')
      .send({
        input: 'Explain.',
        agent: { system: 'Be helpful.' },
        strategy: { type: 'judge', samples: 3, judge_model: 'qwen3:8b' },
        stream: true,
      })
      .expect(200);
    const events = String(res.text);
    assert.match(events, /event: judge\.completed/);
    const runId = String(res.headers['x-run-id']);
    const run = (await request(h.url).get(`/agents/runs/${runId}`).expect(200)).body as AgentRun;
    assert.deepEqual(h.schemas.check('agent-run.response', run, 'response'), []);
    assert.equal(run.groupthink?.winner, 1);
    assert.deepEqual(run.groupthink?.judge, {
      model: 'qwen3:8b',
      rationale: 'The second is the most complete.',
      fallback: false,
    });
    assert.equal(run.output.text, run.groupthink?.candidates[1]?.output.text);
    assert.equal(run.usage.model_calls, 4);
    assert.equal(run.usage.output_tokens, 10);
    const judgeCall = h.sim.requests.find(
      (r) =>
        (r.body as { model?: string }).model === 'qwen3:8b' &&
        ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
    );
    const body = judgeCall?.body as {
      format?: unknown;
      tools?: unknown;
      messages: Array<{ content: string }>;
    };
    assert.ok(body.format, 'the judge is asked for JSON');
    assert.equal(body.tools, undefined);
    assert.match(body.messages[1]?.content ?? '', /\[0\][\s\S]*\[1\][\s\S]*\[2\]/);
  });

  it('refuses more samples than GROUPTHINK_MAX_SAMPLES with a 400, never clamping', async () => {
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'x', strategy: { type: 'vote', samples: 7 } })
      .expect(400);
    assert.match(JSON.stringify(res.body), /GROUPTHINK_MAX_SAMPLES/);
    assert.equal(h.sim.requests.filter((r) => r.path === '/api/chat').length, 0);
    await request(h.url)
      .post('/agents/run')
      .send({
        input: 'x',
        strategy: { type: 'vote', samples: 2 },
        tools: [
          { type: 'client', name: 'ask', description: 'Ask.', parameters: { type: 'object' } },
        ],
      })
      .expect(400);
  });
});
