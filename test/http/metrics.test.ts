import assert from 'node:assert/strict';
import request from 'supertest';
import type { LoadedModel } from '../../services/ollama/types';
import { parseExposition, seriesKey as k, seriesWithPrefix } from '../support/exposition';
import { buildMetricsApp, healthSnapshot } from '../support/metrics-app';
import type { Express } from 'express';

async function scrape(app: Express, token?: string): Promise<Map<string, number>> {
  const req = request(app).get('/metrics');
  if (token) req.set('Authorization', `Bearer ${token}`);
  const res = await req.expect(200);
  return parseExposition(res.text);
}

const snapshot = healthSnapshot;

const loaded = (name: string, vramBytes: number): LoadedModel => ({
  name,
  sizeBytes: vramBytes,
  vramBytes,
  expiresAt: '2026-01-05T10:16:12Z',
});

describe('GET /metrics', () => {
  it('answers the Prometheus text format with the registry content type and app_info', async () => {
    const { app } = buildMetricsApp();
    const res = await request(app).get('/metrics').expect(200);
    assert.match(
      String(res.headers['content-type']),
      /^text\/plain; version=0\.0\.4; charset=utf-8$/,
    );
    assert.equal(res.headers['cache-control'], 'no-store');
    const series = parseExposition(res.text);
    assert.equal(series.get(k('app_info', { version: '9.9.9', node_version: 'v20.0.0' })), 1);
    assert.ok(series.has('process_cpu_user_seconds_total'), 'default process metrics');
    assert.ok(series.has('nodejs_eventloop_lag_seconds'), 'default Node metrics');
  });

  it('answers 405 for another method', async () => {
    const { app } = buildMetricsApp();
    const res = await request(app).post('/metrics').expect(405);
    assert.equal((res.body as { error: { code: string } }).error.code, 'METHOD_NOT_ALLOWED');
  });

  describe('when METRICS_TOKEN is set', () => {
    const env = { METRICS_TOKEN: 's3cret-token' };

    for (const [name, header] of [
      ['no Authorization header', undefined],
      ['a wrong token', 'Bearer s3cret-tokem'],
      ['a longer token', 'Bearer s3cret-token-and-more'],
      ['another scheme', 'Basic czNjcmV0LXRva2Vu'],
    ] as const) {
      it(`answers 401 UNAUTHENTICATED in the error shape for ${name}`, async () => {
        const { app } = buildMetricsApp({ env });
        const req = request(app).get('/metrics');
        if (header) req.set('Authorization', header);
        const res = await req.expect(401);
        const body = res.body as { error: { code: string; request_id: string } };
        assert.equal(body.error.code, 'UNAUTHENTICATED');
        assert.equal(body.error.request_id, res.headers['x-request-id']);
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"');
        assert.doesNotMatch(res.text, /s3cret/);
      });
    }

    it('answers the scrape for the right Bearer token and counts refusals', async () => {
      const { app } = buildMetricsApp({ env });
      await request(app).get('/metrics').expect(401);
      const series = await scrape(app, 's3cret-token');
      assert.equal(series.get(k('errors_total', { code: 'UNAUTHENTICATED' })), 1);
    });
  });
});

describe('HTTP metrics', () => {
  it('labels requests by route template, method and status, and counts errors by code', async () => {
    const { app } = buildMetricsApp();
    await request(app).get('/health').expect(200);
    await request(app).get('/health').expect(200);
    await request(app).delete('/health').expect(405);
    await request(app).get('/no/such/path').expect(404);
    await request(app).get('/another/unknown').expect(404);
    await request(app)
      .post('/health')
      .set('Content-Type', 'application/json')
      .send('{bad')
      .expect(400);
    const series = await scrape(app);

    const req = (method: string, route: string, status: string) =>
      series.get(k('http_requests_total', { method, route, status_code: status }));
    assert.equal(req('GET', '/health', '200'), 2);
    assert.equal(req('DELETE', '/health', '405'), 1);
    assert.equal(req('GET', '<unmatched>', '404'), 2);
    assert.equal(req('POST', '<unmatched>', '400'), 1);
    assert.equal(
      series.get(
        k('http_request_duration_seconds_count', {
          method: 'GET',
          route: '/health',
          status_code: '200',
        }),
      ),
      2,
    );
    assert.equal(series.get(k('errors_total', { code: 'NOT_FOUND' })), 2);
    assert.equal(series.get(k('errors_total', { code: 'METHOD_NOT_ALLOWED' })), 1);
    assert.equal(series.get(k('errors_total', { code: 'INVALID_JSON' })), 1);
    // The scrape itself is in flight while it is rendered.
    assert.equal(series.get('http_requests_in_flight'), 1);
    const after = await scrape(app);
    assert.equal(
      after.get(k('http_requests_total', { method: 'GET', route: '/metrics', status_code: '200' })),
      1,
    );
  });

  it('counts rate-limited requests by the route the limiter names', async () => {
    const { app, metrics } = buildMetricsApp();
    metrics.rateLimited('/agents/run');
    metrics.rateLimited('/agents/run');
    metrics.rateLimited('default');
    const series = await scrape(app);
    assert.equal(series.get(k('rate_limit_hits_total', { route: '/agents/run' })), 2);
    assert.equal(series.get(k('rate_limit_hits_total', { route: 'default' })), 1);
  });
});

describe('telemetry hooks', () => {
  const knownModels = () => ['llama3.2:latest', 'qwen3:8b'];

  it('turns inference events into exact series, with unknown models as `other`', async () => {
    const { app, metrics } = buildMetricsApp({ knownModels });
    metrics.inference({
      model: 'llama3.2',
      operation: 'chat',
      outcome: 'success',
      durationS: 1.5,
      queueWaitS: 0.02,
      ttftS: 0.3,
      promptTokens: 30,
      completionTokens: 50,
      evalDurationNs: 1e9,
      loadDurationNs: 15e6,
    });
    metrics.inference({
      model: 'QWEN3:8B',
      operation: 'chat',
      outcome: 'success',
      durationS: 9,
      queueWaitS: 0,
      promptTokens: 10,
      completionTokens: 10,
      evalDurationNs: 0.5e9,
      loadDurationNs: 4.2e9,
    });
    metrics.inference({
      model: 'nope:1b',
      operation: 'chat',
      outcome: 'not_found',
      durationS: 0.01,
    });
    metrics.inference({
      model: 'llama3.2',
      operation: 'chat',
      outcome: 'queue_full',
      durationS: 0,
    });
    const s = await scrape(app);

    const llama = 'llama3.2:latest';
    assert.equal(
      s.get(
        k('inference_requests_total', {
          api: 'agents',
          model: llama,
          operation: 'chat',
          outcome: 'success',
        }),
      ),
      1,
    );
    assert.equal(
      s.get(
        k('inference_requests_total', {
          api: 'agents',
          model: llama,
          operation: 'chat',
          outcome: 'queue_full',
        }),
      ),
      1,
    );
    assert.equal(
      s.get(
        k('inference_requests_total', {
          api: 'agents',
          model: 'qwen3:8b',
          operation: 'chat',
          outcome: 'success',
        }),
      ),
      1,
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
      1,
    );
    // Refused calls are counted but not timed.
    assert.equal(
      s.get(k('inference_duration_seconds_count', { model: llama, operation: 'chat' })),
      1,
    );
    assert.equal(
      s.get(k('inference_duration_seconds_sum', { model: llama, operation: 'chat' })),
      1.5,
    );
    assert.equal(
      s.has(k('inference_duration_seconds_count', { model: 'other', operation: 'chat' })),
      false,
    );
    assert.equal(
      s.get(k('inference_time_to_first_token_seconds_count', { api: 'agents', model: llama })),
      1,
    );
    assert.equal(
      s.get(
        k('inference_time_to_first_token_seconds_bucket', {
          api: 'agents',
          model: llama,
          le: '0.25',
        }),
      ),
      0,
    );
    assert.equal(
      s.get(
        k('inference_time_to_first_token_seconds_bucket', {
          api: 'agents',
          model: llama,
          le: '0.5',
        }),
      ),
      1,
    );
    assert.equal(
      s.get(k('inference_tokens_total', { api: 'agents', model: llama, kind: 'prompt' })),
      30,
    );
    assert.equal(
      s.get(k('inference_tokens_total', { api: 'agents', model: llama, kind: 'completion' })),
      50,
    );
    assert.equal(s.get(k('inference_tokens_per_second_sum', { model: llama })), 50);
    assert.equal(s.get(k('inference_tokens_per_second_sum', { model: 'qwen3:8b' })), 20);
    // 15 ms of load_duration is a warm model; 4.2 s is a load.
    assert.equal(s.has(k('inference_model_load_seconds_count', { model: llama })), false);
    assert.equal(s.get(k('inference_model_load_seconds_sum', { model: 'qwen3:8b' })), 4.2);
    assert.equal(s.get(k('inference_queue_wait_seconds_count', { api: 'agents' })), 2);
    assert.equal(
      s.get(k('inference_queue_wait_seconds_bucket', { api: 'agents', le: '0.001' })),
      1,
    );
  });

  it('turns agent, tool, webhook, switch and health events into series with bounded labels', async () => {
    const { app, metrics } = buildMetricsApp({
      knownAgents: () => ['support'],
      knownTools: () => ['calculator'],
    });
    metrics.agentRun({
      agent: 'support',
      status: 'completed',
      stopReason: 'end_turn',
      durationS: 2,
    });
    metrics.agentRun({
      agent: 'inline',
      status: 'incomplete',
      stopReason: 'max_steps',
      durationS: 5,
    });
    metrics.agentRun({ agent: 'made-up', status: 'weird', stopReason: 'because', durationS: 1 });
    metrics.agentStep({ agent: 'support', kind: 'model' });
    metrics.agentStep({ agent: 'support', kind: 'tool' });
    metrics.toolCall({ tool: 'calculator', outcome: 'ok' });
    metrics.toolCall({ tool: 'rm -rf', outcome: 'rejected' });
    metrics.webhook({ outcome: 'delivered', attempts: 2 });
    metrics.modelSwitch({ outcome: 'success', durationS: 3 });
    metrics.modelSwitch({ outcome: 'conflict', durationS: 0 });
    metrics.healthCheck({ up: true, durationS: 0.004 });
    const s = await scrape(app);

    const run = (agent: string, status: string, stop_reason: string) =>
      s.get(k('agent_runs_total', { agent, status, stop_reason }));
    assert.equal(run('support', 'completed', 'end_turn'), 1);
    assert.equal(run('inline', 'incomplete', 'max_steps'), 1);
    assert.equal(run('other', 'other', 'other'), 1);
    assert.equal(s.get(k('agent_run_duration_seconds_sum', { agent: 'support' })), 2);
    assert.equal(s.get(k('agent_steps_total', { agent: 'support', kind: 'model' })), 1);
    assert.equal(s.get(k('agent_steps_total', { agent: 'support', kind: 'tool' })), 1);
    assert.equal(s.get(k('agent_tool_calls_total', { tool: 'calculator', outcome: 'ok' })), 1);
    assert.equal(s.get(k('agent_tool_calls_total', { tool: 'other', outcome: 'rejected' })), 1);
    assert.equal(s.get(k('webhook_notifications_total', { outcome: 'delivered' })), 1);
    assert.equal(s.get(k('model_switch_total', { outcome: 'success' })), 1);
    assert.equal(s.get(k('model_switch_total', { outcome: 'conflict' })), 1);
    assert.equal(s.get('model_switch_duration_seconds_count'), 2);
    assert.equal(s.get('ollama_health_check_duration_seconds_count'), 1);
    assert.equal(s.get(k('ollama_health_check_duration_seconds_bucket', { le: '0.005' })), 1);
  });

  it('never throws on bad numbers and drops them', async () => {
    const { app, metrics } = buildMetricsApp({ knownModels });
    metrics.inference({
      model: 'llama3.2',
      operation: 'chat',
      outcome: 'success',
      durationS: Number.NaN,
      ttftS: -1,
      completionTokens: -5,
      evalDurationNs: 0,
    });
    const s = await scrape(app);
    assert.equal(
      s.get(
        k('inference_requests_total', {
          api: 'agents',
          model: 'llama3.2:latest',
          operation: 'chat',
          outcome: 'success',
        }),
      ),
      1,
    );
    assert.equal(
      s.has(k('inference_duration_seconds_count', { model: 'llama3.2:latest', operation: 'chat' })),
      false,
    );
    assert.equal(
      s.has(
        k('inference_tokens_total', {
          api: 'agents',
          model: 'llama3.2:latest',
          kind: 'completion',
        }),
      ),
      false,
    );
  });
});

describe('state gauges', () => {
  it('read the cached state at scrape time, and only then', async () => {
    let calls = 0;
    let snap = snapshot({ loadedModels: [loaded('qwen3:8b', 6_654_289_920)] });
    let circuit: 'closed' | 'half-open' | 'open' = 'closed';
    const { app } = buildMetricsApp({
      state: {
        health: () => {
          calls += 1;
          return snap;
        },
        circuitState: () => circuit,
        queueStats: () => ({ inFlight: 3, queued: 7, maxConcurrency: 4, maxQueue: 100 }),
        activeModel: () => 'qwen3:8b',
      },
    });
    assert.equal(calls, 0, 'building the app reads no state');
    let s = await scrape(app);
    assert.ok(calls > 0);
    assert.equal(s.get('ollama_up'), 1);
    assert.equal(s.get('ollama_circuit_breaker_state'), 0);
    assert.equal(s.get('active_requests'), 3);
    assert.equal(s.get('inference_queue_depth'), 7);
    assert.equal(s.get('inference_queue_capacity'), 100);
    assert.equal(s.get('inference_concurrency_limit'), 4);
    assert.equal(s.get(k('ollama_model_loaded', { model: 'qwen3:8b' })), 1);
    assert.equal(s.get(k('ollama_model_loaded', { model: 'llama3.2:latest' })), 0);
    assert.equal(s.get(k('ollama_model_vram_bytes', { model: 'qwen3:8b' })), 6_654_289_920);
    assert.equal(s.get(k('ollama_active_model_info', { model: 'qwen3:8b' })), 1);

    snap = snapshot({ status: 'down', loadedModels: [loaded('llama3.2:latest', 2e9)] });
    circuit = 'open';
    s = await scrape(app);
    assert.equal(s.get('ollama_up'), 0);
    assert.equal(s.get('ollama_circuit_breaker_state'), 2);
    assert.equal(s.get(k('ollama_model_loaded', { model: 'qwen3:8b' })), 0);
    assert.equal(s.get(k('ollama_model_loaded', { model: 'llama3.2:latest' })), 1);
    assert.equal(
      s.has(k('ollama_model_vram_bytes', { model: 'qwen3:8b' })),
      false,
      'unloaded: gone',
    );
    assert.equal(s.get(k('ollama_model_vram_bytes', { model: 'llama3.2:latest' })), 2e9);
  });

  it('report Ollama as down before the first health check', async () => {
    const { app } = buildMetricsApp({ state: { health: () => snapshot({ status: 'unknown' }) } });
    assert.equal((await scrape(app)).get('ollama_up'), 0);
  });
});

describe('cardinality', () => {
  // Unknown paths and unknown models sent over HTTP through the whole app (Ollama answers those
  // with 404): test/integration/metrics-traffic.test.ts. Here, answers Ollama gave for models
  // the cached list does not name (a model pulled behind the gateway's back), with every series
  // a success creates: tokens, time to first token, tokens/s and loads.
  it('keeps 1,000 answered unknown model names under one `other` label', async () => {
    const { app, metrics } = buildMetricsApp({
      knownModels: () => ['llama3.2:latest'],
      defaultMetrics: false,
    });
    const ours = ['inference_'];
    const answer = (from: number, to: number): void => {
      for (let i = from; i < to; i += 1) {
        metrics.inference({
          model: `unknown-model-${i}:latest`,
          operation: 'chat',
          outcome: 'success',
          durationS: 0.1,
          queueWaitS: 0.01,
          ttftS: 0.05,
          promptTokens: 1,
          completionTokens: 1,
          evalDurationNs: 1e7,
          loadDurationNs: 2e9,
        });
      }
    };
    answer(0, 10);
    const after10 = seriesWithPrefix(await scrape(app), ours);
    answer(10, 1000);
    const s = await scrape(app);
    const after1000 = seriesWithPrefix(s, ours);
    assert.deepEqual(after1000, after10);
    assert.ok(after1000.length < 100, `${after1000.length} series`);
    assert.equal(
      s.get(
        k('inference_requests_total', {
          api: 'agents',
          model: 'other',
          operation: 'chat',
          outcome: 'success',
        }),
      ),
      1000,
    );
    assert.equal(
      s.get(k('inference_tokens_total', { api: 'agents', model: 'other', kind: 'completion' })),
      1000,
    );
    assert.equal(s.get(k('inference_model_load_seconds_count', { model: 'other' })), 1000);
    assert.equal(after1000.filter((x) => x.includes('unknown')).length, 0);
  });
});
