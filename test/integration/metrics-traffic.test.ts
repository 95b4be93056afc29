import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { buildTestApp, type TestApp } from '../support/build-app';
import { parseExposition, seriesKey as k } from '../support/exposition';
import { listen } from '../support/listen';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { openSse } from '../support/sse-client';

const LLAMA = 'llama3.2:3b';
const QWEN = 'qwen3:8b';
const EMBED = 'nomic-embed-text:latest';
/** The simulator's /api/ps reports size and size_vram as 1.25 × the model file. */
const vramOf = (fileBytes: number) => Math.round(fileBytes * 1.25);
const call = (name: string, args: Record<string, unknown>) => ({
  function: { name, arguments: args },
});
const json = { 'content-type': 'application/json' };

/** One metric family: every series named `name` (or `name{…}`), key → value. */
function family(series: Map<string, number>, name: string): Record<string, number> {
  return Object.fromEntries(
    [...series].filter(([key]) => key === name || key.startsWith(`${name}{`)),
  );
}

/**
 * Traffic of every kind through the whole app (auth, rate limits, routers, agents runtime, the
 * real Ollama adapter) against the simulator over HTTP, then the exact series `/metrics` shows.
 * The services' clock is a hand-moved one, so every duration the gateway measures is exact:
 * it stands still except for 1.5 s moved while one run holds the only Ollama slot.
 */
describe('/metrics after real traffic against the Ollama simulator', function () {
  this.timeout(20_000);
  let t: TestApp;
  let sim: OllamaSimulator;
  let served: Awaited<ReturnType<typeof listen>>;
  let clock = Date.parse('2026-01-05T10:00:00Z');
  let scrapes = 0;

  before(async () => {
    t = await buildTestApp({
      agents: true,
      now: () => clock,
      env: {
        OLLAMA_MODEL: LLAMA,
        // One generation at a time, so a second run waits in the gateway's queue.
        OLLAMA_MAX_CONCURRENCY: '1',
        // Four runs pass; the fifth is refused.
        RATE_LIMIT_RUNS_PER_MINUTE: '4',
      },
    });
    sim = t.sim as OllamaSimulator;
    served = await listen(t.app);
  });
  after(async () => {
    await served?.close();
    await t?.close();
  });

  async function scrape(): Promise<Map<string, number>> {
    const res = await fetch(`${served.url}/metrics`);
    assert.equal(res.status, 200);
    scrapes += 1;
    return parseExposition(await res.text());
  }

  async function run(body: Record<string, unknown>): Promise<{ status: number; run: AgentRun }> {
    const res = await fetch(`${served.url}/agents/run`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(body),
    });
    return { status: res.status, run: (await res.json()) as AgentRun };
  }

  it('counts answered, streamed, queued, failed, tool, switch and rate-limited traffic exactly', async () => {
    // The first health check lists the installed models: the bounded set of model labels.
    await t.ollamaHealth.refresh();

    // --- answered (non-streamed) run A holds the only slot; streamed run B queues behind it.
    sim.setLoadDelay(120); // llama3.2 is not loaded yet: A's answer reports a 120 ms load
    sim.script(LLAMA, { content: 'Hello there.', promptEvalCount: 12, evalCount: 3 });
    sim.script(LLAMA, { content: 'Streaming three words', promptEvalCount: 8, evalCount: 4 });
    const gate = sim.hold();
    const aAtGate = sim.waitFor('chunk');
    const answered = run({ input: 'Say hello' });
    await aAtGate;
    const streamed = await openSse(`${served.url}/agents/run`, {
      method: 'POST',
      body: { input: 'Stream please', stream: true },
    });
    assert.equal(streamed.status, 200);
    // B announced its model step: it is now waiting for A's slot in the admission queue.
    await streamed.until((raw) => raw.includes('event: step.started'));
    const during = await scrape();
    assert.equal(during.get('active_requests'), 1);
    assert.equal(during.get('inference_queue_depth'), 1);
    assert.equal(during.get('inference_concurrency_limit'), 1);
    assert.equal(during.get('inference_queue_capacity'), 100);
    // A, B and this scrape.
    assert.equal(during.get('http_requests_in_flight'), 3);
    clock += 1500;
    gate.release();
    const a = await answered;
    assert.equal(a.status, 200);
    assert.deepEqual([a.run.status, a.run.stop_reason], ['completed', 'end_turn']);
    await streamed.ended;
    const terminal = streamed.events().at(-1);
    assert.equal(terminal?.event, 'run.completed');
    sim.setLoadDelay(0);

    // --- an agent run with tools: calculator, then the final answer.
    sim.script(
      LLAMA,
      {
        tool_calls: [call('calculator', { expression: '6 * 7' })],
        promptEvalCount: 20,
        evalCount: 5,
      },
      { content: 'It is 42.', promptEvalCount: 30, evalCount: 6 },
    );
    const c = await run({ input: 'What is 6*7?' });
    assert.equal(c.status, 200);
    assert.deepEqual([c.run.status, c.run.output.text], ['completed', 'It is 42.']);

    // --- a failed run: Ollama answers 500.
    sim.failNext(1, 500, 'boom');
    const d = await run({ input: 'fail please' });
    assert.equal(d.status, 200);
    assert.deepEqual([d.run.status, d.run.stop_reason], ['failed', 'model_error']);

    // --- rate-limited: the fifth run of the minute.
    const e = await run({ input: 'one too many' });
    assert.equal(e.status, 429);

    // What /api/ps says now: llama3.2 loaded.
    await t.ollamaHealth.refresh();
    const beforeSwitch = await scrape();
    assert.deepEqual(family(beforeSwitch, 'ollama_model_loaded'), {
      [k('ollama_model_loaded', { model: LLAMA })]: 1,
      [k('ollama_model_loaded', { model: QWEN })]: 0,
      [k('ollama_model_loaded', { model: EMBED })]: 0,
    });
    assert.deepEqual(family(beforeSwitch, 'ollama_model_vram_bytes'), {
      [k('ollama_model_vram_bytes', { model: LLAMA })]: vramOf(2019393189),
    });

    // --- a model switch to qwen3 (loads it, unloads llama3.2), and one to a missing model.
    const switched = await fetch(`${served.url}/ollama/model/switch`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ model: QWEN }),
    });
    assert.equal(switched.status, 200);
    const missing = await fetch(`${served.url}/ollama/model/switch`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ model: 'missing:1b' }),
    });
    assert.equal(missing.status, 404);
    await t.ollamaHealth.refresh();

    const s = await scrape();
    const inferenceKey = (model: string, operation: string, outcome: string) =>
      k('inference_requests_total', { model, operation, outcome });
    assert.deepEqual(family(s, 'inference_requests_total'), {
      [inferenceKey(LLAMA, 'chat', 'success')]: 4, // A, B, and C's two model steps
      [inferenceKey(LLAMA, 'chat', 'error')]: 1, // D
      [inferenceKey(QWEN, 'preload', 'success')]: 1,
      [inferenceKey(LLAMA, 'unload', 'success')]: 1,
    });
    // The clock moved 1.5 s while A ran and B waited; nothing else took gateway time.
    const dur = (model: string, operation: string) => ({ model, operation });
    assert.equal(s.get(k('inference_duration_seconds_count', dur(LLAMA, 'chat'))), 5);
    assert.equal(s.get(k('inference_duration_seconds_sum', dur(LLAMA, 'chat'))), 3);
    assert.equal(s.get(k('inference_duration_seconds_count', dur(QWEN, 'preload'))), 1);
    assert.equal(s.get(k('inference_duration_seconds_count', dur(LLAMA, 'unload'))), 1);
    // Streams with content: A, B and C's answer (C's first step carried only tool calls, which
    // count as the first token too), not the failed call.
    assert.equal(s.get(k('inference_time_to_first_token_seconds_count', { model: LLAMA })), 4);
    // Tokens as the simulator counted them: 12+8+20+30 prompt, 3+4+5+6 completion.
    assert.deepEqual(family(s, 'inference_tokens_total'), {
      [k('inference_tokens_total', { model: LLAMA, kind: 'prompt' })]: 70,
      [k('inference_tokens_total', { model: LLAMA, kind: 'completion' })]: 18,
    });
    // The simulator takes 10 ms per generated token: 100 tokens/s on each of the four answers.
    assert.equal(s.get(k('inference_tokens_per_second_count', { model: LLAMA })), 4);
    assert.equal(s.get(k('inference_tokens_per_second_sum', { model: LLAMA })), 400);
    assert.equal(s.get(k('inference_tokens_per_second_bucket', { model: LLAMA, le: '75' })), 0);
    assert.equal(s.get(k('inference_tokens_per_second_bucket', { model: LLAMA, le: '100' })), 4);
    // A's answer reported the 120 ms load; later answers ran on the loaded model.
    assert.equal(s.get(k('inference_model_load_seconds_count', { model: LLAMA })), 1);
    const loadS = s.get(k('inference_model_load_seconds_sum', { model: LLAMA })) ?? 0;
    assert.ok(loadS >= 0.12 && loadS < 5, `load ${loadS}`);
    // A preload answer carries no durations (Ollama sends none): the switch is timed instead.
    assert.equal(s.has(k('inference_model_load_seconds_count', { model: QWEN })), false);
    // Every chat call passed the queue: B waited the 1.5 s, the others not at all.
    assert.equal(s.get('inference_queue_wait_seconds_count'), 5);
    assert.equal(s.get('inference_queue_wait_seconds_sum'), 1.5);
    assert.equal(s.get(k('inference_queue_wait_seconds_bucket', { le: '0.001' })), 4);
    assert.equal(s.get(k('inference_queue_wait_seconds_bucket', { le: '2.5' })), 5);

    const runKey = (status: string, stop_reason: string) =>
      k('agent_runs_total', { agent: 'default', status, stop_reason });
    assert.deepEqual(family(s, 'agent_runs_total'), {
      [runKey('completed', 'end_turn')]: 3,
      [runKey('failed', 'model_error')]: 1,
    });
    assert.equal(s.get(k('agent_run_duration_seconds_count', { agent: 'default' })), 4);
    assert.equal(s.get(k('agent_run_duration_seconds_sum', { agent: 'default' })), 3);
    assert.deepEqual(family(s, 'agent_steps_total'), {
      [k('agent_steps_total', { agent: 'default', kind: 'model' })]: 5,
      [k('agent_steps_total', { agent: 'default', kind: 'tool' })]: 1,
    });
    assert.deepEqual(family(s, 'agent_tool_calls_total'), {
      [k('agent_tool_calls_total', { tool: 'calculator', outcome: 'ok' })]: 1,
    });
    assert.deepEqual(family(s, 'webhook_notifications_total'), {});

    assert.deepEqual(family(s, 'model_switch_total'), {
      [k('model_switch_total', { outcome: 'success' })]: 1,
      [k('model_switch_total', { outcome: 'error' })]: 1,
    });
    assert.equal(s.get('model_switch_duration_seconds_count'), 2);
    assert.deepEqual(family(s, 'rate_limit_hits_total'), {
      [k('rate_limit_hits_total', { route: '/agents/run' })]: 1,
    });
    assert.equal(s.get('rate_limit_store_errors_total'), 0);
    assert.deepEqual(family(s, 'errors_total'), {
      [k('errors_total', { code: 'RATE_LIMITED' })]: 1,
      [k('errors_total', { code: 'MODEL_NOT_FOUND' })]: 1,
    });

    const http = (method: string, route: string, status_code: string) =>
      k('http_requests_total', { method, route, status_code });
    assert.deepEqual(family(s, 'http_requests_total'), {
      [http('POST', '/agents/run', '200')]: 4, // A, B (the stream), C, D
      // Refused by the rate limiter before any router matched it.
      [http('POST', '<unmatched>', '429')]: 1,
      [http('POST', '/ollama/model/switch', '200')]: 1,
      [http('POST', '/ollama/model/switch', '404')]: 1,
      [http('GET', '/metrics', '200')]: scrapes - 1, // this scrape is still in flight
    });
    assert.equal(
      s.get(
        k('http_request_duration_seconds_count', {
          method: 'POST',
          route: '/agents/run',
          status_code: '200',
        }),
      ),
      4,
    );
    assert.equal(s.get('http_requests_in_flight'), 1);

    // State read at scrape time from the cached health, breaker and queue.
    assert.equal(s.get('ollama_up'), 1);
    assert.equal(s.get('ollama_circuit_breaker_state'), 0);
    assert.equal(s.get('active_requests'), 0);
    assert.equal(s.get('inference_queue_depth'), 0);
    assert.equal(s.get('ollama_health_check_duration_seconds_count'), 3);
    assert.deepEqual(family(s, 'ollama_active_model_info'), {
      [k('ollama_active_model_info', { model: QWEN })]: 1,
    });
    assert.deepEqual(family(s, 'ollama_model_loaded'), {
      [k('ollama_model_loaded', { model: LLAMA })]: 0,
      [k('ollama_model_loaded', { model: QWEN })]: 1,
      [k('ollama_model_loaded', { model: EMBED })]: 0,
    });
    assert.deepEqual(family(s, 'ollama_model_vram_bytes'), {
      [k('ollama_model_vram_bytes', { model: QWEN })]: vramOf(5225388164),
    });
  });
});
