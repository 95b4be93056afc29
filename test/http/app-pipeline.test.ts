import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createRequestContextStore } from '../../src/request-context';
import { createSchemaRegistry } from '../../src/validation';
import { composeAppDeps } from '../support/build-app';
import { createCaptureLogger } from '../support/capture-logger';
import { assertErrorShape } from '../support/error-shape';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function buildApp(env: Record<string, string> = {}) {
  const schemas = createSchemaRegistry();
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env }, schemas);
  const context = createRequestContextStore();
  const capture = createCaptureLogger({ context, level: 'info' });
  const build = { name: 'ollama-agent-gateway', version: '9.9.9' };
  const deps = composeAppDeps({ config, schemas, logger: capture.logger, context, build });
  const app = createApp({ ...deps, startedAt: 1_000_000, now: () => 1_061_500 });
  return { app, ...capture };
}

describe('the app pipeline (createApp)', () => {
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
