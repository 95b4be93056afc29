import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/build-app';
import { OLLAMA_HOST_VARIANTS } from '../support/ollama-hosts';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { until } from '../support/ollama-simulator/settle';

/** Parses an NDJSON body into its objects. */
function lines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Supertest collects an NDJSON body as text with this parser. */
const asText = ((res: http.IncomingMessage, done: (err: Error | null, body: string) => void) => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (part: string) => (text += part));
  res.on('end', () => done(null, text));
}) as unknown as Parameters<request.Test['parse']>[0];

for (const variant of OLLAMA_HOST_VARIANTS) {
  describe(`/ollama router (${variant.name})`, () => {
    let sim: OllamaSimulator;
    let t: TestApp;

    const schemaOk = (id: string, body: unknown): void => {
      assert.deepEqual(t.deps.schemas.check(id, body, 'response'), []);
    };
    const errorCode = (res: request.Response, code: string, status: number): void => {
      assert.equal(res.status, status);
      assert.equal((res.body as { error: { code: string } }).error.code, code);
    };

    beforeEach(async () => {
      sim = await startOllamaSimulator();
      t = await buildTestApp({
        simulator: sim,
        env: { OLLAMA_HOST: variant.host(sim), OLLAMA_RETRY_BASE_MS: '1', OLLAMA_RETRY_MAX: '0' },
      });
    });
    afterEach(async () => {
      await t.close();
      await sim.close();
    });

    describe('GET /ollama/health', () => {
      it('answers 503 before the first check and 200 once Ollama is up, from the cache', async () => {
        const before = await request(t.app).get('/ollama/health');
        assert.equal(before.status, 503);
        assert.equal(before.body.status, 'unknown');
        schemaOk('ollama-health.response', before.body);
        await t.ollamaHealth.refresh();
        const versionCalls = sim.requests.length;
        const after = await request(t.app).get('/ollama/health');
        assert.equal(after.status, 200);
        assert.equal(after.body.status, 'up');
        schemaOk('ollama-health.response', after.body);
        assert.equal(sim.requests.length, versionCalls); // read from the cache
      });

      it('answers 503 when Ollama is down', async () => {
        await sim.stop();
        await t.ollamaHealth.refresh();
        const res = await request(t.app).get('/ollama/health');
        assert.equal(res.status, 503);
        assert.equal(res.body.status, 'down');
      });

      it('answers 405 for another method', async () => {
        errorCode(await request(t.app).post('/ollama/health'), 'METHOD_NOT_ALLOWED', 405);
      });
    });

    describe('GET /ollama/health/detailed', () => {
      it('shows version, models, circuit, queue, last error and recent switches', async () => {
        await t.models.switchModel({ model: 'qwen3:8b' });
        await t.ollamaHealth.refresh();
        const res = await request(t.app).get('/ollama/health/detailed');
        assert.equal(res.status, 200);
        schemaOk('ollama-health-detailed.response', res.body);
        assert.equal(res.body.version, '0.12.6');
        assert.equal(res.body.active_model, 'qwen3:8b');
        assert.equal(res.body.circuit, 'closed');
        assert.equal(res.body.queue.max_concurrency, t.config.OLLAMA_MAX_CONCURRENCY);
        assert.deepEqual(
          res.body.loaded_models.map((m: { name: string }) => m.name),
          ['qwen3:8b'],
        );
        assert.equal(res.body.recent_switches[0].to, 'qwen3:8b');
        assert.equal(res.body.last_error, null);
      });
    });

    describe('GET /ollama/models', () => {
      it('lists installed models with active and loaded flags', async () => {
        const res = await request(t.app).get('/ollama/models');
        assert.equal(res.status, 200);
        schemaOk('ollama-models.response', res.body);
        assert.equal(res.body.active, 'llama3.2:3b');
        const active = res.body.models.filter((m: { active: boolean }) => m.active);
        assert.deepEqual(
          active.map((m: { name: string }) => m.name),
          ['llama3.2:3b'],
        );
      });

      it('rejects a bad query with 400', async () => {
        errorCode(
          await request(t.app).get('/ollama/models?refresh=maybe'),
          'VALIDATION_FAILED',
          400,
        );
        errorCode(await request(t.app).get('/ollama/models?x=1'), 'VALIDATION_FAILED', 400);
      });

      it('answers 503 OLLAMA_UNAVAILABLE with Retry-After when Ollama is stopped', async () => {
        await sim.stop();
        const res = await request(t.app).get('/ollama/models');
        errorCode(res, 'OLLAMA_UNAVAILABLE', 503);
        assert.ok(Number(res.headers['retry-after']) >= 1);
      });

      it('answers 504 OLLAMA_TIMEOUT when Ollama hangs', async () => {
        await t.close();
        t = await buildTestApp({
          simulator: sim,
          env: { OLLAMA_HOST: variant.host(sim), OLLAMA_TIMEOUT_MS: '150', OLLAMA_RETRY_MAX: '0' },
        });
        sim.hang(true);
        const before = sim.requests.length;
        const answer = request(t.app)
          .get('/ollama/models')
          .then((res) => res);
        await until(() => sim.requests.length >= before + 2); // /api/tags and /api/ps, both hung
        t.clock.advance(150); // the deadlines run on the service's clock
        errorCode(await answer, 'OLLAMA_TIMEOUT', 504);
      });
    });

    describe('GET /ollama/model-info', () => {
      it('describes the active model by default and another with ?model=', async () => {
        const active = await request(t.app).get('/ollama/model-info');
        assert.equal(active.status, 200);
        schemaOk('ollama-model-info.response', active.body);
        assert.equal(active.body.name, 'llama3.2:3b');
        assert.equal(active.body.active, true);
        const qwen = await request(t.app).get('/ollama/model-info?model=qwen3:8b');
        assert.equal(qwen.body.context_length, 40960);
        assert.ok(qwen.body.capabilities.includes('thinking'));
      });

      it('answers 404 for an unknown model and 400 for a bad name', async () => {
        errorCode(
          await request(t.app).get('/ollama/model-info?model=nope'),
          'MODEL_NOT_FOUND',
          404,
        );
        errorCode(
          await request(t.app).get('/ollama/model-info?model=bad%20name'),
          'VALIDATION_FAILED',
          400,
        );
      });
    });

    describe('POST /ollama/model/switch', () => {
      it('switches and answers {previous, active, load_ms, pulled}', async () => {
        const res = await request(t.app).post('/ollama/model/switch').send({ model: 'qwen3:8b' });
        assert.equal(res.status, 200);
        schemaOk('ollama-switch.response', res.body);
        assert.equal(res.body.previous, 'llama3.2:3b');
        assert.equal(res.body.active, 'qwen3:8b');
        assert.equal(res.body.pulled, false);
        assert.equal(t.models.active(), 'qwen3:8b');
      });

      it('streams pull and load progress as NDJSON ending in a result line', async () => {
        const res = await request(t.app)
          .post('/ollama/model/switch')
          .set('Accept', 'application/x-ndjson')
          .send({ model: 'smollm2:135m', pull: true })
          .buffer(true)
          .parse(asText);
        assert.equal(res.status, 200);
        assert.match(String(res.headers['content-type']), /application\/x-ndjson/);
        const out = lines(res.body as string);
        for (const line of out) schemaOk('ollama-progress.line', line);
        assert.ok(out.some((l) => l.phase === 'pull' && typeof l.percent === 'number'));
        assert.deepEqual(out.at(-1), {
          phase: 'done',
          status: 'success',
          previous: 'llama3.2:3b',
          active: 'smollm2:135m',
          load_ms: out.at(-1)?.load_ms,
          pulled: true,
        });
      });

      it('ends the NDJSON stream with an error line when the preload fails', async () => {
        sim.failNext(1, 500);
        const res = await request(t.app)
          .post('/ollama/model/switch')
          .set('Accept', 'application/x-ndjson')
          .send({ model: 'qwen3:8b' })
          .buffer(true)
          .parse(asText);
        const last = lines(res.body as string).at(-1) as { error: { code: string } };
        assert.equal(last.error.code, 'OLLAMA_UPSTREAM_ERROR');
        assert.equal(t.models.active(), 'llama3.2:3b');
      });

      it('answers 404 for an unknown model without pull, even when streaming', async () => {
        errorCode(
          await request(t.app).post('/ollama/model/switch').send({ model: 'smollm2:135m' }),
          'MODEL_NOT_FOUND',
          404,
        );
        const streamed = await request(t.app)
          .post('/ollama/model/switch')
          .set('Accept', 'application/x-ndjson')
          .send({ model: 'smollm2:135m' });
        errorCode(streamed, 'MODEL_NOT_FOUND', 404);
      });

      it('answers 409 SWITCH_IN_PROGRESS to a concurrent switch', async () => {
        sim.setLoadDelay(100);
        const first = request(t.app).post('/ollama/model/switch').send({ model: 'qwen3:8b' });
        const started = sim.waitFor('loading');
        const pending = first.then((r) => r);
        await started;
        errorCode(
          await request(t.app).post('/ollama/model/switch').send({ model: 'llama3.2:3b' }),
          'SWITCH_IN_PROGRESS',
          409,
        );
        assert.equal((await pending).status, 200);
      });

      it('rejects invalid bodies with 400 and every bad field', async () => {
        const res = await request(t.app)
          .post('/ollama/model/switch')
          .send({ model: 'bad name', keep_alive: '300', extra: 1 });
        errorCode(res, 'VALIDATION_FAILED', 400);
        const paths = (res.body.error.details as Array<{ path: string }>).map((d) => d.path).sort();
        assert.deepEqual([...new Set(paths)], ['/extra', '/keep_alive', '/model']);
        errorCode(
          await request(t.app).post('/ollama/model/switch').send({}),
          'VALIDATION_FAILED',
          400,
        );
      });
    });

    describe('POST /ollama/models/pull', () => {
      it('streams progress with a percent per layer', async () => {
        const res = await request(t.app)
          .post('/ollama/models/pull')
          .set('Accept', 'application/x-ndjson')
          .send({ model: 'smollm2:135m' })
          .buffer(true)
          .parse(asText);
        const out = lines(res.body as string);
        assert.equal(out[0]?.status, 'pulling manifest');
        assert.ok(out.some((l) => typeof l.percent === 'number' && typeof l.digest === 'string'));
        assert.equal(out.at(-1)?.status, 'success');
      });

      it('answers one JSON object when not streamed, and a pull error as 502', async () => {
        const ok = await request(t.app).post('/ollama/models/pull').send({ model: 'smollm2:135m' });
        assert.equal(ok.status, 200);
        schemaOk('ollama-pull.response', ok.body);
        const bad = await request(t.app).post('/ollama/models/pull').send({ model: 'nothere:1b' });
        errorCode(bad, 'OLLAMA_UPSTREAM_ERROR', 502);
      });

      it('aborts the pull in Ollama when the HTTP client goes away', async () => {
        const server = http.createServer(t.app);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        sim.hold();
        const aborted = sim.waitFor('aborted', (e) => e.path === '/api/pull');
        const req = http.request({
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/ollama/models/pull',
          headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
        });
        req.on('error', () => undefined);
        req.end(JSON.stringify({ model: 'smollm2:135m' }));
        const res = await new Promise<http.IncomingMessage>((resolve) =>
          req.on('response', resolve),
        );
        await new Promise((resolve) => res.once('data', resolve)); // the first progress line
        assert.equal(sim.inFlight(), 1);
        req.destroy();
        await aborted;
        assert.equal(sim.inFlight(), 0);
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });
    });

    describe('DELETE /ollama/models/:name', () => {
      it('deletes a model (204), refuses the active one (409) and an unknown one (404)', async () => {
        assert.equal((await request(t.app).delete('/ollama/models/qwen3:8b')).status, 204);
        errorCode(await request(t.app).delete('/ollama/models/qwen3:8b'), 'MODEL_NOT_FOUND', 404);
        errorCode(await request(t.app).delete('/ollama/models/llama3.2:3b'), 'MODEL_IN_USE', 409);
        errorCode(
          await request(t.app).delete('/ollama/models/bad%20name'),
          'VALIDATION_FAILED',
          400,
        );
      });

      it('shows a deleted model gone from the list at once', async () => {
        await request(t.app).get('/ollama/models');
        await request(t.app).delete('/ollama/models/qwen3:8b');
        const res = await request(t.app).get('/ollama/models');
        assert.ok(!res.body.models.some((m: { name: string }) => m.name === 'qwen3:8b'));
      });
    });
  });
}

describe('/ollama router without a simulator', () => {
  it('answers 503 OLLAMA_UNAVAILABLE when nothing listens at OLLAMA_HOST', async () => {
    const sim = await startOllamaSimulator();
    const host = sim.url;
    await sim.close(); // a port that was just free again: connections are refused
    const t = await buildTestApp({
      simulator: false,
      env: { OLLAMA_HOST: host, OLLAMA_RETRY_MAX: '0' },
    });
    const res = await request(t.app).get('/ollama/models');
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'OLLAMA_UNAVAILABLE');
    assert.ok(!JSON.stringify(res.body).includes('ECONNREFUSED'));
    await t.close();
  });
});
