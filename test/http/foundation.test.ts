import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';
import { createErrorHandler, createNotFound } from '../../middleware/error-handler';
import { createJsonBody } from '../../middleware/json-body';
import { createRequestContext } from '../../middleware/request-context';
import { createRequestContextStore } from '../../src/request-context';
import { createValidate } from '../../middleware/validate';
import { createMetrics } from '../../services/metrics/metrics';
import { createCaptureLogger } from '../support/capture-logger';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Asserts the one error shape and that the body's request_id is the header's. */
function assertErrorShape(res: request.Response, status: number, code: string): void {
  assert.equal(res.status, status);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(res.body as object), ['error']);
  const { error } = res.body as { error: Record<string, unknown> };
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  assert.equal(error.request_id, res.headers['x-request-id']);
  for (const key of Object.keys(error)) {
    assert.ok(['code', 'message', 'details', 'request_id'].includes(key), `unexpected ${key}`);
  }
}

function buildApp(env: Record<string, string> = {}) {
  const schemas = createSchemaRegistry();
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env }, schemas);
  const context = createRequestContextStore();
  const capture = createCaptureLogger({ context, level: 'info' });
  const build = { name: 'ollama-agent-gateway', version: '9.9.9' };
  const app = createApp({
    config,
    logger: capture.logger,
    schemas,
    context,
    build,
    metrics: createMetrics({ registry: new Registry(), build, defaultMetrics: false }),
    startedAt: 1_000_000,
    now: () => 1_061_500,
  });
  return { app, ...capture };
}

describe('the foundation app', () => {
  describe('GET /health', () => {
    it('answers status, service, version and uptime without I/O', async () => {
      const res = await request(buildApp().app).get('/health').expect(200);
      assert.deepEqual(res.body, {
        status: 'ok',
        service: 'ollama-agent-gateway',
        version: '9.9.9',
        uptime_s: 61,
      });
    });

    it('answers 405 in the error shape for another method', async () => {
      const res = await request(buildApp().app).delete('/health');
      assertErrorShape(res, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, 'GET, HEAD');
    });
  });

  describe('when the route is unknown', () => {
    it('answers 404 NOT_FOUND in the one error shape', async () => {
      const res = await request(buildApp().app).get('/no/such/thing');
      assertErrorShape(res, 404, 'NOT_FOUND');
    });
  });

  describe('when the body is malformed JSON', () => {
    it('answers 400 INVALID_JSON', async () => {
      const res = await request(buildApp().app)
        .post('/health')
        .set('Content-Type', 'application/json')
        .send('{"a":');
      assertErrorShape(res, 400, 'INVALID_JSON');
    });
  });

  describe('when the body is larger than BODY_LIMIT', () => {
    it('answers 413 PAYLOAD_TOO_LARGE with the limit', async () => {
      const res = await request(buildApp({ BODY_LIMIT: '1kb' }).app)
        .post('/health')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ input: 'x'.repeat(2000) }));
      assertErrorShape(res, 413, 'PAYLOAD_TOO_LARGE');
      assert.deepEqual((res.body as { error: { details: unknown } }).error.details, {
        limit_bytes: 1024,
      });
    });
  });

  describe('when the content type is not JSON', () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      it(`answers 415 for ${type}`, async () => {
        const res = await request(buildApp().app)
          .post('/health')
          .set('Content-Type', type)
          .send('a=b');
        assertErrorShape(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      });
    }

    it('accepts application/json with a charset and +json types', async () => {
      for (const type of ['application/json; charset=utf-8', 'application/merge-patch+json']) {
        const res = await request(buildApp().app)
          .post('/health')
          .set('Content-Type', type)
          .send('{}');
        assertErrorShape(res, 405, 'METHOD_NOT_ALLOWED');
      }
    });
  });

  describe('X-Request-ID', () => {
    it('keeps a safe incoming id and echoes it', async () => {
      const res = await request(buildApp().app).get('/health').set('X-Request-ID', 'abc.DEF_123-x');
      assert.equal(res.headers['x-request-id'], 'abc.DEF_123-x');
    });

    const unsafe = ['a b', 'x'.repeat(129), 'id\tx', '../../etc', 'a;b', 'caf\u00e9', ''];
    for (const id of unsafe) {
      it(`replaces ${JSON.stringify(id.slice(0, 20))} with a new UUID`, async () => {
        const res = await request(buildApp().app).get('/nope').set('X-Request-ID', id);
        assert.match(String(res.headers['x-request-id']), UUID);
        assert.equal(
          (res.body as { error: { request_id: string } }).error.request_id,
          res.headers['x-request-id'],
        );
      });
    }

    it('is generated when absent', async () => {
      const res = await request(buildApp().app).get('/health');
      assert.match(String(res.headers['x-request-id']), UUID);
    });
  });

  describe('the access log', () => {
    it('writes one JSON line per request with the route template and the request id, never the key', async () => {
      const { app, lines, text } = buildApp();
      await request(app)
        .get('/health')
        .set('X-Request-ID', 'req-1')
        .set('Authorization', 'Bearer sk-very-secret-key-123456')
        .set('X-API-Key', 'another-secret-key-123456')
        .expect(200);
      const access = lines().filter((l) => l.message === 'request');
      assert.equal(access.length, 1);
      const line = access[0]!;
      assert.equal(line.request_id, 'req-1');
      assert.equal(line.method, 'GET');
      assert.equal(line.route, '/health');
      assert.equal(line.status, 200);
      assert.equal(typeof line.duration_ms, 'number');
      assert.equal(typeof line.bytes, 'number');
      assert.doesNotMatch(text(), /very-secret|another-secret/);
    });

    it('logs unknown paths under one route value, not the raw URL', async () => {
      const { app, lines } = buildApp();
      await request(app).get('/secret/path/123').expect(404);
      const line = lines().find((l) => l.message === 'request');
      assert.equal(line?.route, '<unmatched>');
      assert.doesNotMatch(JSON.stringify(line), /secret\/path/);
    });
  });
});

describe('the error handler', () => {
  function appWith(route: express.RequestHandler) {
    const store = createRequestContextStore();
    const capture = createCaptureLogger({ context: store });
    const app = express();
    app.use(createRequestContext({ store }));
    app.use(createJsonBody({ limit: 1024 }));
    app.get('/boom', route);
    app.use(createNotFound());
    app.use(createErrorHandler({ logger: capture.logger }));
    return { app, ...capture };
  }

  describe('when a handler throws an unexpected error', () => {
    it('answers 500 with a generic message; the stack goes to the log with the request id', async () => {
      const { app, lines } = appWith(() => {
        throw new Error('db password=hunter2 at /srv/internal.ts');
      });
      const res = await request(app).get('/boom').set('X-Request-ID', 'r-500');
      assertErrorShape(res, 500, 'INTERNAL_ERROR');
      assert.equal((res.body as { error: { message: string } }).error.message, 'Internal error.');
      assert.doesNotMatch(JSON.stringify(res.body), /hunter2|internal\.ts|at /);
      const logged = lines().find((l) => l.message === 'request failed');
      assert.ok(logged);
      assert.equal(logged.request_id, 'r-500');
      assert.match(JSON.stringify(logged.error), /hunter2/);
      assert.match(JSON.stringify(logged.error), /stack/);
    });

    it('catches rejected promises of async handlers (Express 5)', async () => {
      const { app } = appWith(async () => {
        await Promise.resolve();
        throw new TypeError('x is undefined');
      });
      assertErrorShape(await request(app).get('/boom'), 500, 'INTERNAL_ERROR');
    });
  });
});

describe('validate()', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'schemas-'));
  writeFileSync(
    path.join(dir, 'thing.schema.json'),
    JSON.stringify({
      $id: 'thing.request',
      type: 'object',
      additionalProperties: false,
      required: ['name', 'count'],
      properties: {
        name: { type: 'string', minLength: 1 },
        count: { type: 'integer', minimum: 1 },
        kind: { enum: ['a', 'b'] },
        tags: { type: 'array', items: { type: 'string' } },
      },
    }),
  );
  writeFileSync(
    path.join(dir, 'thing-query.schema.json'),
    JSON.stringify({
      $id: 'thing.query',
      type: 'object',
      additionalProperties: false,
      properties: {
        limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
        verbose: { type: 'boolean' },
      },
    }),
  );
  const schemas = createSchemaRegistry(dir);
  after(() => rmSync(dir, { recursive: true, force: true }));

  function appFor() {
    const store = createRequestContextStore();
    const { logger } = createCaptureLogger({ context: store });
    const validate = createValidate({ schemas });
    const app = express();
    app.use(createRequestContext({ store }));
    app.use(createJsonBody({ limit: 10_000 }));
    app.post('/things', validate({ body: 'thing.request' }), (req, res) => {
      res.json(req.body);
    });
    app.get('/things', validate({ query: 'thing.query' }), (req, res) => {
      res.json(req.query);
    });
    app.use(createErrorHandler({ logger }));
    return app;
  }

  it('lists each bad field by JSON path and reason', async () => {
    const res = await request(appFor())
      .post('/things')
      .send({ count: 0, kind: 'z', tags: ['ok', 3], extra: true });
    assertErrorShape(res, 400, 'VALIDATION_FAILED');
    const details = (res.body as { error: { details: Array<Record<string, string>> } }).error
      .details;
    const byPath = Object.fromEntries(details.map((d) => [d.path, d.message]));
    assert.deepEqual(byPath, {
      '/name': 'is required',
      '/count': 'must be >= 1',
      '/kind': 'must be one of: a, b',
      '/tags/1': 'must be string',
      '/extra': 'is not an allowed property',
    });
    for (const d of details) assert.equal(d.in, 'body');
  });

  it('rejects a missing body', async () => {
    const res = await request(appFor()).post('/things');
    assertErrorShape(res, 400, 'VALIDATION_FAILED');
  });

  it('passes a valid body through', async () => {
    await request(appFor())
      .post('/things')
      .send({ name: 'n', count: 2 })
      .expect(200, { name: 'n', count: 2 });
  });

  it('converts query strings by the schema and applies defaults', async () => {
    const res = await request(appFor()).get('/things?verbose=true').expect(200);
    assert.deepEqual(res.body, { verbose: true, limit: 10 });
    const bad = await request(appFor()).get('/things?limit=abc&x=1');
    assertErrorShape(bad, 400, 'VALIDATION_FAILED');
    assert.equal(
      (bad.body as { error: { details: Array<{ in: string }> } }).error.details[0]?.in,
      'query',
    );
  });

  it('fails at start for an unknown schema id', () => {
    assert.throws(() => createValidate({ schemas })({ body: 'no.such' }), /unknown schema/);
  });
});

describe('the schema registry', () => {
  it('compiles every schema in schemas/ and each has an $id', () => {
    const schemas = createSchemaRegistry();
    assert.ok(schemas.ids.includes('config'));
    for (const id of schemas.ids) assert.equal(typeof schemas.get(id), 'function');
  });
});
