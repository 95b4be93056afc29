import assert from 'node:assert/strict';
import type { ApiKeyEntry } from '../../src/config';
import { modelKey } from '../../src/model-name';
import { buildTestApp, listen, type RunningApp, type TestApp } from '../support/build-app';
import { parseExposition } from '../support/exposition';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { assertMatchesSchema } from '../support/schema-assert';
import { ADMIN_KEY, AGENT_KEY, AGENT_KEY_2 } from '../support/security';

const LLAMA = 'llama3.2:3b';
const EMBED = 'nomic-embed-text:latest';
const KEYS: ApiKeyEntry[] = [
  { id: 'ops', role: 'admin', key: ADMIN_KEY },
  { id: 'team-a', role: 'agent', key: AGENT_KEY },
  { id: 'team-b', role: 'agent', key: AGENT_KEY_2, budgets: { tokensPerDay: 60 } },
];

type Counts = Record<string, { prompt: number; completion: number }>;

/**
 * The token counts the simulator wrote in its answers, per model: Ollama's `prompt_eval_count`
 * and `eval_count` on a final native object, or OpenAI's `usage` (written by Ollama's /v1 from the
 * same counts). What the gateway shows in /usage must equal these.
 */
function countSimulatorTokens(sim: OllamaSimulator): Counts {
  const counts: Counts = {};
  sim.on('chunk', (e: { data?: Record<string, unknown> }) => {
    const d = e.data ?? {};
    const usage = d.usage as { prompt_tokens?: number; completion_tokens?: number } | undefined;
    let prompt: number | undefined;
    let completion = 0;
    if (usage) {
      prompt = usage.prompt_tokens ?? 0;
      completion = usage.completion_tokens ?? 0;
    } else if (typeof d.prompt_eval_count === 'number') {
      prompt = d.prompt_eval_count;
      completion = typeof d.eval_count === 'number' ? d.eval_count : 0;
    }
    if (prompt === undefined || typeof d.model !== 'string') return;
    const c = (counts[modelKey(d.model)] ??= { prompt: 0, completion: 0 });
    c.prompt += prompt;
    c.completion += completion;
  });
  return counts;
}

/**
 * Token usage through the whole app (auth, routers, the agents runtime and the drop-in
 * endpoints) against the simulator: /usage shows what Ollama counted, per key and model; a
 * key's budget refuses new generations once used up, until the next UTC midnight.
 */
describe('token usage and budgets (HTTP, against the simulator)', function () {
  this.timeout(20_000);
  let t: TestApp;
  let sim: OllamaSimulator;
  let served: RunningApp;
  let now = Date.UTC(2026, 11, 6, 23, 0, 0);

  const call = async (
    key: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; text: string; json: unknown }> => {
    const res = await fetch(`${served.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };

  before(async () => {
    t = await buildTestApp({
      now: () => now,
      apiKeys: KEYS,
      env: {
        OLLAMA_MODEL: LLAMA,
        ALLOW_ANY_INSTALLED_MODEL: 'true',
        RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
    sim = t.sim as OllamaSimulator;
    served = await listen(t.app);
    await t.ollamaHealth.refresh();
  });
  after(async () => {
    await served?.close();
    await t?.close();
  });

  it("/usage and tokens_total{key_id, model} equal the simulator's counts for agent runs and every drop-in API", async () => {
    const counts = countSimulatorTokens(sim);
    // The simulator writes its OpenAI-shaped answers and embeddings in one write without a chunk
    // event: their counts are read from its answers as the client got them (passed through
    // unchanged by the gateway).
    const fromAnswer = (model: string, r: { status: number; text: string; json: unknown }) => {
      assert.equal(r.status, 200, r.text);
      const body = r.json as {
        usage?: { prompt_tokens?: number; completion_tokens?: number };
        prompt_eval_count?: number;
      };
      const c = (counts[model] ??= { prompt: 0, completion: 0 });
      c.prompt += body.usage?.prompt_tokens ?? body.prompt_eval_count ?? 0;
      c.completion += body.usage?.completion_tokens ?? 0;
    };
    const chat = { model: LLAMA, messages: [{ role: 'user', content: 'count my tokens please' }] };
    const ok = (r: { status: number; text: string }) => assert.equal(r.status, 200, r.text);
    ok(await call(AGENT_KEY, 'POST', '/agents/run', { input: 'what is two and two' }));
    ok(await call(AGENT_KEY, 'POST', '/agents/run', { input: 'again, streamed', stream: true }));
    fromAnswer(LLAMA, await call(AGENT_KEY, 'POST', '/v1/chat/completions', chat));
    ok(await call(AGENT_KEY, 'POST', '/v1/chat/completions', { ...chat, stream: true }));
    fromAnswer(
      LLAMA,
      await call(AGENT_KEY, 'POST', '/v1/completions', { model: LLAMA, prompt: 'one two' }),
    );
    ok(await call(AGENT_KEY, 'POST', '/api/chat', chat));
    ok(
      await call(AGENT_KEY, 'POST', '/api/generate', {
        model: LLAMA,
        prompt: 'x y',
        stream: false,
      }),
    );
    fromAnswer(
      EMBED,
      await call(AGENT_KEY, 'POST', '/api/embed', { model: EMBED, input: ['a b', 'c'] }),
    );
    fromAnswer(
      EMBED,
      await call(AGENT_KEY, 'POST', '/v1/embeddings', { model: EMBED, input: 'd e f' }),
    );
    // Another key's traffic is its own.
    const teamA = structuredClone(counts);
    ok(
      await call(ADMIN_KEY, 'POST', '/api/generate', { model: LLAMA, prompt: 'z', stream: false }),
    );

    const ops = {
      prompt: counts[LLAMA]!.prompt - teamA[LLAMA]!.prompt,
      completion: counts[LLAMA]!.completion - teamA[LLAMA]!.completion,
    };
    const own = await call(AGENT_KEY, 'GET', '/usage');
    assert.equal(own.status, 200, own.text);
    assertMatchesSchema(t.schemas, 'usage.response', own.json);
    const report = own.json as { date: string; data: Array<Record<string, unknown>> };
    assert.equal(report.date, '2026-12-06');
    assert.ok(counts[LLAMA]!.completion > 0 && counts[EMBED]!.prompt > 0);

    const all = await call(ADMIN_KEY, 'GET', '/usage?period=month');
    const rows = (all.json as { data: Array<Record<string, number | string>> }).data;
    const sum = (key: string, model: string, field: string): number =>
      rows
        .filter((r) => r.key_id === key && r.model === model)
        .reduce((n, r) => n + Number(r[field]), 0);
    // Every model, every key: what the simulator counted for that key's traffic.
    for (const model of [LLAMA, EMBED]) {
      assert.equal(sum('team-a', model, 'prompt_tokens'), teamA[model]!.prompt, `${model} prompt`);
      assert.equal(
        sum('team-a', model, 'completion_tokens'),
        teamA[model]!.completion,
        `${model} completion`,
      );
      assert.equal(
        sum('team-a', model, 'total_tokens'),
        teamA[model]!.prompt + teamA[model]!.completion,
      );
    }
    assert.equal(sum('ops', LLAMA, 'prompt_tokens'), ops.prompt);
    assert.equal(sum('ops', LLAMA, 'completion_tokens'), ops.completion);
    assert.deepEqual(
      report.data.map((r) => r.model),
      [LLAMA, EMBED].sort(),
    );

    // Filtered by model, and by key.
    const embeds = await call(ADMIN_KEY, 'GET', `/usage?model=${EMBED}`);
    assert.deepEqual(
      (embeds.json as { data: Array<{ key_id: string; model: string }> }).data.map((r) => [
        r.key_id,
        r.model,
      ]),
      [['team-a', EMBED]],
    );
    const forbidden = await call(AGENT_KEY, 'GET', '/usage?key_id=ops');
    assert.equal(forbidden.status, 403);
    assert.equal((await call('', 'GET', '/usage')).status, 401);
    const bad = await call(ADMIN_KEY, 'GET', '/usage?period=week');
    assert.equal(bad.status, 400);

    // The metric: by key id (never the key) and model, prompt and completion.
    const series = parseExposition((await call(ADMIN_KEY, 'GET', '/metrics')).text);
    const metric = (key: string, model: string, kind: string): number =>
      series.get(`tokens_total{key_id="${key}",kind="${kind}",model="${model}"}`) ?? 0;
    for (const model of [LLAMA, EMBED]) {
      assert.equal(metric('team-a', model, 'prompt'), teamA[model]!.prompt);
      assert.equal(metric('team-a', model, 'completion'), teamA[model]!.completion);
    }
    assert.equal(metric('ops', LLAMA, 'prompt'), ops.prompt);
    assert.ok(![...series.keys()].some((k) => k.includes(AGENT_KEY) || k.includes(ADMIN_KEY)));
  });

  it("a used-up daily budget answers 429 TOKEN_BUDGET_EXCEEDED with Retry-After at midnight, in each API's shape, and passes again after it", async () => {
    now = Date.UTC(2026, 11, 6, 23, 0, 0);
    const gen = { model: LLAMA, prompt: 'budget', stream: false };
    sim.script(LLAMA, { content: 'one', promptEvalCount: 30, evalCount: 20 });
    const first = await call(AGENT_KEY_2, 'POST', '/api/generate', gen);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('token-budget-warning'), null);
    // 50 of 60 used: still served, with the warning (used, limit, seconds to the reset).
    sim.script(LLAMA, { content: 'two', promptEvalCount: 5, evalCount: 5 });
    const second = await call(AGENT_KEY_2, 'POST', '/api/generate', gen);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('token-budget-warning'), 'day;used=50;limit=60;reset=3600');

    // 60 of 60: every new generation is refused, whichever API it comes through.
    now += 600_000;
    const requests = sim.requests.length;
    const native = await call(AGENT_KEY_2, 'POST', '/api/generate', gen);
    assert.equal(native.status, 429);
    assert.equal(native.headers.get('retry-after'), '3000');
    assert.match((native.json as { error: string }).error, /token budget/);
    const openai = await call(AGENT_KEY_2, 'POST', '/v1/chat/completions', {
      model: LLAMA,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(openai.status, 429);
    assert.equal((openai.json as { error: { code: string } }).error.code, 'TOKEN_BUDGET_EXCEEDED');
    const run = await call(AGENT_KEY_2, 'POST', '/agents/run', { input: 'hi' });
    assert.equal(run.status, 429);
    const body = run.json as { error: { code: string; details: unknown } };
    assert.equal(body.error.code, 'TOKEN_BUDGET_EXCEEDED');
    assert.deepEqual(body.error.details, [
      { period: 'day', limit: 60, used: 60, resets_at: '2026-12-07T00:00:00.000Z' },
    ]);
    assert.equal(sim.requests.length, requests, 'nothing reached Ollama');
    // Reading usage and models is not a generation.
    assert.equal((await call(AGENT_KEY_2, 'GET', '/usage')).status, 200);
    assert.equal((await call(AGENT_KEY_2, 'GET', '/v1/models')).status, 200);
    // Other keys are not affected.
    assert.equal((await call(AGENT_KEY, 'POST', '/api/generate', gen)).status, 200);

    now = Date.UTC(2026, 11, 7, 0, 0, 1);
    const after = await call(AGENT_KEY_2, 'POST', '/api/generate', gen);
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('token-budget-warning'), null);
    const usage = (await call(AGENT_KEY_2, 'GET', '/usage?date=2026-12-06')).json as {
      budgets: unknown;
    };
    assert.deepEqual(usage.budgets, [{ key_id: 'team-b', limit: 60, used: 60, remaining: 0 }]);
  });
});
