import assert from 'node:assert/strict';
import type { Express } from 'express';
import request from 'supertest';
import { testApps } from '../support/build-app';
import { metricValue } from '../support/exposition';
import { createCaptureLogger } from '../support/capture-logger';
import {
  ADMIN_KEY,
  AGENT_KEY,
  AGENT_KEY_2,
  TEST_API_KEYS,
  bearer,
  isErrorShape,
} from '../support/security';

const LIMITS = {
  API_KEYS: TEST_API_KEYS,
  RATE_LIMIT_PER_MINUTE: '3',
  RATE_LIMIT_RUNS_PER_MINUTE: '2',
};

describe('rate limits (HTTP)', () => {
  // A whole app (real routers, its own simulator) per test.
  const apps = testApps();
  afterEach(() => apps.closeAll());
  describe('per key, over budget', () => {
    it('answers 429 RATE_LIMITED in the error shape with Retry-After and RateLimit headers', async () => {
      const t = await apps.build({ env: LIMITS });
      const { app } = t;
      for (let i = 0; i < 3; i += 1) {
        const ok = await request(app).get('/ollama/models').set(bearer(AGENT_KEY));
        assert.equal(ok.status, 200);
        assert.match(String(ok.headers.ratelimit), /^"api"; r=\d+; t=\d+$/);
        assert.match(String(ok.headers['ratelimit-policy']), /^"api"; q=3; w=60; pk=:/);
      }
      const res = await request(app).get('/ollama/models').set(bearer(AGENT_KEY));
      assert.equal(res.status, 429);
      assert.ok(isErrorShape(res.body));
      assert.equal(res.body.error.code, 'RATE_LIMITED');
      assert.deepEqual(res.body.error.details, { budget: 'api', limit: 3, window_s: 60 });
      const retry = Number(res.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      assert.match(String(res.headers.ratelimit), /^"api"; r=0; t=\d+$/);
      const hits = await t.metrics.registry.getSingleMetricAsString('rate_limit_hits_total');
      assert.match(hits, /^rate_limit_hits_total\{route="\/ollama\/models"\} 1$/m);
    });

    it('gives each key its own budget', async () => {
      const app = await apps.app(LIMITS);
      for (let i = 0; i < 3; i += 1) await request(app).get('/agents').set(bearer(AGENT_KEY));
      assert.equal((await request(app).get('/agents').set(bearer(AGENT_KEY))).status, 429);
      assert.equal((await request(app).get('/agents').set(bearer(AGENT_KEY_2))).status, 200);
      assert.equal((await request(app).get('/agents').set('x-api-key', ADMIN_KEY)).status, 200);
    });

    it('keeps agent runs and everything else in separate budgets', async () => {
      const app = await apps.app(LIMITS);
      const run = () =>
        request(app).post('/agents/run').set(bearer(AGENT_KEY)).send({ input: 'hi' });
      assert.notEqual((await run()).status, 429);
      const second = await run();
      assert.notEqual(second.status, 429);
      assert.match(String(second.headers['ratelimit-policy']), /^"runs"; q=2;/);
      const third = await run();
      assert.equal(third.status, 429);
      assert.equal(third.body.error.details.budget, 'runs');
      // The general budget is untouched by the runs.
      assert.equal((await request(app).get('/agents').set(bearer(AGENT_KEY))).status, 200);
    });

    it('never limits probes or /metrics, and sends them no RateLimit headers', async () => {
      const app = await apps.app(LIMITS);
      for (let i = 0; i < 10; i += 1) {
        const res = await request(app).get('/health');
        assert.equal(res.status, 200);
        assert.equal(res.headers.ratelimit, undefined);
        assert.notEqual((await request(app).get('/metrics')).status, 429);
      }
    });

    it('counts requests with a wrong key against the client IP (key guessing is limited)', async () => {
      const app = await apps.app(LIMITS);
      for (let i = 0; i < 3; i += 1) {
        const res = await request(app)
          .get('/agents')
          .set(bearer(`guess-${i}-0123456789abcdef`));
        assert.equal(res.status, 401);
      }
      const res = await request(app).get('/agents').set(bearer('guess-x-0123456789abcdef'));
      assert.equal(res.status, 429);
      // A valid key has its own budget, untouched by the guesses from the same IP.
      assert.equal((await request(app).get('/agents').set(bearer(AGENT_KEY))).status, 200);
    });
  });

  describe('per client IP when anonymous, and TRUST_PROXY', () => {
    const spoofed = (app: Express, ip: string) =>
      request(app).get('/ollama/models').set('X-Forwarded-For', ip);

    it('with TRUST_PROXY=0, a spoofed X-Forwarded-For does not buy a fresh budget', async () => {
      const app = await apps.app({ RATE_LIMIT_PER_MINUTE: '3' });
      for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
        assert.equal((await spoofed(app, ip)).status, 200);
      assert.equal((await spoofed(app, '10.0.0.4')).status, 429);
    });

    it('with TRUST_PROXY=1, the client IP comes from the proxy hop: each client its own budget', async () => {
      const app = await apps.app({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1' });
      for (let i = 0; i < 3; i += 1) assert.equal((await spoofed(app, '10.0.0.1')).status, 200);
      assert.equal((await spoofed(app, '10.0.0.1')).status, 429);
      assert.equal((await spoofed(app, '10.0.0.2')).status, 200);
      // Only one hop is trusted: a client prepending its own entry is still 10.0.0.1.
      assert.equal((await spoofed(app, '1.2.3.4, 10.0.0.1')).status, 429);
    });

    it('groups IPv6 clients by /56 (ipKeyGenerator), so rotating addresses does not help', async () => {
      const app = await apps.app({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1' });
      for (const ip of ['2001:db8:0:1::1', '2001:db8:0:2::1', '2001:db8:0:3::1']) {
        assert.equal((await spoofed(app, ip)).status, 200);
      }
      assert.equal((await spoofed(app, '2001:db8:0:4::1')).status, 429);
      assert.equal((await spoofed(app, '2001:db8:1:1::1')).status, 200);
    });
  });

  describe('when the store fails', () => {
    it('serves the request (fail open), counts every failure and logs once per interval', async () => {
      const { logger, lines } = createCaptureLogger();
      let now = 0;
      const failing = {
        localKeys: false,
        prefix: 'x',
        init: () => undefined,
        increment: () => Promise.reject(new Error('store down')),
        decrement: () => Promise.resolve(),
        resetKey: () => Promise.resolve(),
      };
      const t = await apps.build({
        env: LIMITS,
        deps: { logger, now: () => now, rateLimitStore: () => ({ ...failing }) },
      });
      const { app } = t;
      for (let i = 0; i < 6; i += 1) {
        assert.equal((await request(app).get('/agents').set(bearer(AGENT_KEY))).status, 200);
      }
      now = 60_000;
      await request(app).get('/agents').set(bearer(AGENT_KEY));
      assert.equal(await metricValue(t.metrics.registry, 'rate_limit_store_errors_total'), 7);
      const warned = lines().filter((l) => /rate limit store failed/.test(String(l.message)));
      assert.equal(warned.length, 2);
      assert.equal(warned[1]?.suppressed_since_last_log, 5);
    });
  });
});
