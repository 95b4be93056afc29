import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { buildTestApp, listen, type TestApp } from '../support/build-app';
import { parseExposition, seriesKey as k } from '../support/exposition';
import type { OllamaSimulator } from '../support/ollama-simulator';
import { runCommand } from '../support/run-command';
import { parseServerTiming } from '../support/server-timing';
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
      defaultMetrics: true,
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

  async function scrapeText(): Promise<string> {
    const res = await fetch(`${served.url}/metrics`);
    assert.equal(res.status, 200);
    scrapes += 1;
    return res.text();
  }
  const scrape = async () => parseExposition(await scrapeText());

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
    sim.setLoadDelay(120); // llama3.2 is not loaded yet: the gateway loads it before A
    // The gateway times the load on its own clock: 120 ms pass on it while the simulator loads.
    void sim
      .waitFor('loading', (e) => e.model === LLAMA)
      .then(() => {
        clock += 120;
      });
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
      k('inference_requests_total', { api: 'agents', model, operation, outcome });
    assert.deepEqual(family(s, 'inference_requests_total'), {
      [inferenceKey(LLAMA, 'chat', 'success')]: 4, // A, B, and C's two model steps
      [inferenceKey(LLAMA, 'chat', 'error')]: 1, // D
      [inferenceKey(LLAMA, 'preload', 'success')]: 1, // the gateway's load before A
      [inferenceKey(QWEN, 'preload', 'success')]: 1,
      [inferenceKey(LLAMA, 'unload', 'success')]: 1,
    });
    // The clock moved 1.5 s while A ran and B waited, and 0.12 s while A waited for its load.
    const dur = (model: string, operation: string) => ({ model, operation });
    assert.equal(s.get(k('inference_duration_seconds_count', dur(LLAMA, 'chat'))), 5);
    assert.equal(s.get(k('inference_duration_seconds_sum', dur(LLAMA, 'chat'))), 3.12);
    assert.equal(s.get(k('inference_duration_seconds_count', dur(QWEN, 'preload'))), 1);
    assert.equal(s.get(k('inference_duration_seconds_count', dur(LLAMA, 'unload'))), 1);
    // Answered runs stream from Ollama too: A, B and C's two steps saw a first token (D failed).
    assert.equal(
      s.get(k('inference_time_to_first_token_seconds_count', { api: 'agents', model: LLAMA })),
      4,
    );
    // Tokens as the simulator counted them: 12+8+20+30 prompt, 3+4+5+6 completion.
    assert.deepEqual(family(s, 'inference_tokens_total'), {
      [k('inference_tokens_total', { api: 'agents', model: LLAMA, kind: 'prompt' })]: 70,
      [k('inference_tokens_total', { api: 'agents', model: LLAMA, kind: 'completion' })]: 18,
    });
    // The simulator takes 10 ms per generated token: 100 tokens/s on each of the four answers.
    assert.equal(s.get(k('inference_tokens_per_second_count', { model: LLAMA })), 4);
    assert.equal(s.get(k('inference_tokens_per_second_sum', { model: LLAMA })), 400);
    assert.equal(s.get(k('inference_tokens_per_second_bucket', { model: LLAMA, le: '75' })), 0);
    assert.equal(s.get(k('inference_tokens_per_second_bucket', { model: LLAMA, le: '100' })), 4);
    // Loads are timed by the gateway (a preload answer carries no durations): llama3.2's before A
    // took 0.12 s on its clock; no time passed on it during qwen3's load for the switch, and a
    // load shorter than MODEL_LOAD_MIN_S is not observed.
    assert.equal(s.get(k('inference_model_load_seconds_count', { model: LLAMA })), 1);
    assert.equal(s.get(k('inference_model_load_seconds_sum', { model: LLAMA })), 0.12);
    assert.equal(s.has(k('inference_model_load_seconds_count', { model: QWEN })), false);
    // Every chat call passed the queue: B waited the 1.5 s, the others not at all.
    assert.equal(s.get(k('inference_queue_wait_seconds_count', { api: 'agents' })), 5);
    assert.equal(s.get(k('inference_queue_wait_seconds_sum', { api: 'agents' })), 1.5);
    assert.equal(
      s.get(k('inference_queue_wait_seconds_bucket', { api: 'agents', le: '0.001' })),
      4,
    );
    assert.equal(s.get(k('inference_queue_wait_seconds_bucket', { api: 'agents', le: '2.5' })), 5);

    const runKey = (status: string, stop_reason: string) =>
      k('agent_runs_total', { agent: 'default', status, stop_reason });
    assert.deepEqual(family(s, 'agent_runs_total'), {
      [runKey('completed', 'end_turn')]: 3,
      [runKey('failed', 'model_error')]: 1,
    });
    assert.equal(s.get(k('agent_run_duration_seconds_count', { agent: 'default' })), 4);
    assert.equal(s.get(k('agent_run_duration_seconds_sum', { agent: 'default' })), 3.12); // A waited 0.12 s for its load
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

  it('`promtool check metrics` passes the scrape taken after that traffic', async () => {
    const text = await scrapeText();
    // The families only traffic creates are all in this scrape.
    for (const name of [
      'inference_requests_total',
      'inference_time_to_first_token_seconds_bucket',
      'inference_tokens_per_second_bucket',
      'inference_model_load_seconds_bucket',
      'agent_runs_total',
      'agent_tool_calls_total',
      'model_switch_total',
      'rate_limit_hits_total',
      'errors_total',
      'ollama_model_vram_bytes',
      'process_cpu_user_seconds_total',
    ]) {
      assert.match(text, new RegExp(`^${name}(\\{|\\s)`, 'm'), name);
    }
    const lint = await runCommand('promtool', ['check', 'metrics'], { input: text });
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
    assert.equal((lint.stdout + lint.stderr).trim(), '');
  });
});

describe('Server-Timing on an answered agent run through the whole app', () => {
  let t: TestApp;
  let served: Awaited<ReturnType<typeof listen>>;

  before(async () => {
    t = await buildTestApp({ env: { OLLAMA_MODEL: LLAMA } });
    served = await listen(t.app);
  });
  after(async () => {
    await served?.close();
    await t?.close();
  });

  it('splits the answer time into gateway, queue and Ollama', async () => {
    const sim = t.sim as OllamaSimulator;
    // Four gaps of 20 ms between five chunks: the Ollama part is about 80 ms (timers may fire
    // a millisecond early, and clocks tick in whole ms).
    sim.setChunkLatency(20);
    sim.script(LLAMA, { chunks: ['one ', 'two ', 'three ', 'four ', 'five'], evalCount: 5 });
    const res = await fetch(`${served.url}/agents/run`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ input: 'Count to five' }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as AgentRun).status, 'completed');
    const header = res.headers.get('server-timing');
    assert.ok(header, 'the answer carries Server-Timing');
    const parts = parseServerTiming(header);
    for (const name of ['gateway', 'queue', 'ollama', 'total']) {
      assert.equal(typeof parts[name], 'number', `${name} in ${header}`);
    }
    const { gateway = NaN, queue = NaN, ollama = NaN, total = NaN } = parts;
    assert.ok(ollama >= 70, `ollama ${ollama} ms`);
    assert.equal(queue, 0, 'nothing else was running');
    // Each part is rounded to 0.1 ms on its own.
    assert.ok(Math.abs(gateway + queue + ollama - total) <= 0.2, header);
    assert.equal(res.headers.get('x-response-time'), `${total.toFixed(1)}ms`);
  });
});

describe('metric series stay bounded under unknown paths and model names sent over HTTP', () => {
  it('1,000 unknown paths and 1,000 runs on unknown models add no series', async function () {
    this.timeout(60_000);
    const t = await buildTestApp({
      env: {
        OLLAMA_MODEL: LLAMA,
        // 2,000 requests from one client: lift the limits, which are not what is measured here.
        RATE_LIMIT_PER_MINUTE: '100000',
        RATE_LIMIT_RUNS_PER_MINUTE: '100000',
      },
    });
    const served = await listen(t.app);
    try {
      await t.ollamaHealth.refresh();
      const scrape = async () =>
        parseExposition(await (await fetch(`${served.url}/metrics`)).text());
      const statuses = new Map<string, number>();
      const one = async (i: number): Promise<void> => {
        const path = await fetch(`${served.url}/unknown/${i}?q=${i}`);
        await path.arrayBuffer();
        assert.equal(path.status, 404);
        const res = await fetch(`${served.url}/agents/run`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ input: 'hi', model: `unknown-model-${i}:latest` }),
        });
        const body = (await res.json()) as AgentRun;
        const key = `${res.status} ${body.status}/${body.stop_reason}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      };
      /** Requests `from`…`to`-1, eight at a time. */
      const drive = async (from: number, to: number): Promise<void> => {
        let next = from;
        const worker = async (): Promise<void> => {
          while (next < to) await one((next += 1) - 1);
        };
        await Promise.all(Array.from({ length: 8 }, worker));
      };
      // Our metric families; the scrape's own /metrics series are left out (they appear once).
      const ours = (s: Map<string, number>) =>
        [...s.keys()]
          .filter((key) => /^(http_|inference_|agent_|errors_total)/.test(key))
          .filter((key) => !key.includes('route="/metrics"'))
          .sort();

      await drive(0, 10);
      const after10 = ours(await scrape());
      await drive(10, 1000);
      const s = await scrape();
      const after1000 = ours(s);

      // Ollama answers 404 for each: the run fails as model_error (an answer, not an error).
      assert.deepEqual(Object.fromEntries(statuses), { '200 failed/model_error': 1000 });
      assert.deepEqual(after1000, after10);
      assert.ok(after1000.length < 150, `${after1000.length} series`);
      assert.equal(after1000.filter((key) => key.includes('unknown')).length, 0);
      assert.equal(
        s.get(
          k('http_requests_total', { method: 'GET', route: '<unmatched>', status_code: '404' }),
        ),
        1000,
      );
      assert.equal(
        s.get(
          k('inference_requests_total', {
            api: 'agents',
            model: 'other',
            operation: 'chat',
            outcome: 'not_found',
          }),
        ),
        1000,
      );
      assert.equal(
        s.get(
          k('agent_runs_total', { agent: 'default', status: 'failed', stop_reason: 'model_error' }),
        ),
        1000,
      );
    } finally {
      await served.close();
      await t.close();
    }
  });
});

describe('route labels of errors answered for a router mounted under a path', () => {
  it('are the full template, not the mounted router’s own path', async () => {
    const t = await buildTestApp();
    try {
      const served = await listen(t.app);
      try {
        const wrongMethod = await fetch(`${served.url}/ollama/health`, { method: 'DELETE' });
        assert.equal(wrongMethod.status, 405);
        const unknown = await fetch(`${served.url}/ollama/model-info?model=nope:1b`);
        assert.equal(unknown.status, 404);
        const s = parseExposition(await (await fetch(`${served.url}/metrics`)).text());
        const http = (method: string, route: string, status_code: string) =>
          k('http_requests_total', { method, route, status_code });
        assert.deepEqual(family(s, 'http_requests_total'), {
          // Before: `/health` (the probe's label) and `/model-info`.
          [http('DELETE', '/ollama/health', '405')]: 1,
          [http('GET', '/ollama/model-info', '404')]: 1,
        });
      } finally {
        await served.close();
      }
    } finally {
      await t.close();
    }
  });
});
