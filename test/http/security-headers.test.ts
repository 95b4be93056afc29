import assert from 'node:assert/strict';
import request from 'supertest';
import { testApps, type RunningApp } from '../support/build-app';
import {
  ADMIN_KEY,
  TEST_API_KEYS,
  bearer,
  firstResponse,
  isErrorShape,
  rawHttp,
  testConfig,
} from '../support/security';

describe('headers and transport (HTTP)', () => {
  // A whole app (real routers, its own simulator) per test.
  const apps = testApps();
  afterEach(() => apps.closeAll());
  describe('security headers', () => {
    it('sends the API policy: CSP none, no framing, nosniff, no referrer, no X-Powered-By', async () => {
      const res = await request(await apps.app()).get('/health');
      assert.equal(
        res.headers['content-security-policy'],
        "default-src 'none';frame-ancestors 'none'",
      );
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['x-powered-by'], undefined);
    });

    it('sends the same headers on error responses', async () => {
      const res = await request(await apps.app({ API_KEYS: TEST_API_KEYS })).get('/agents');
      assert.equal(res.status, 401);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(
        res.headers['content-security-policy'],
        "default-src 'none';frame-ancestors 'none'",
      );
    });

    it('sends HSTS only when the request came over TLS through a trusted proxy', async () => {
      const plain = await request(await apps.app()).get('/health');
      assert.equal(plain.headers['strict-transport-security'], undefined);
      const untrusted = await request(await apps.app())
        .get('/health')
        .set('X-Forwarded-Proto', 'https');
      assert.equal(untrusted.headers['strict-transport-security'], undefined);
      const trusted = await request(await apps.app({ TRUST_PROXY: '1' }))
        .get('/health')
        .set('X-Forwarded-Proto', 'https');
      assert.equal(
        trusted.headers['strict-transport-security'],
        'max-age=31536000; includeSubDomains',
      );
    });
  });

  describe('CORS', () => {
    it('sends no CORS headers at all without ALLOWED_ORIGINS', async () => {
      const res = await request(await apps.app())
        .get('/health')
        .set('Origin', 'https://evil.example');
      assert.equal(res.headers['access-control-allow-origin'], undefined);
    });

    it('allows only the configured origins, never with credentials', async () => {
      const app = await apps.app({ ALLOWED_ORIGINS: 'https://console.example.com' });
      const ok = await request(app).get('/health').set('Origin', 'https://console.example.com');
      assert.equal(ok.headers['access-control-allow-origin'], 'https://console.example.com');
      assert.equal(ok.headers['access-control-allow-credentials'], undefined);
      const other = await request(app).get('/health').set('Origin', 'https://evil.example');
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    });

    it('answers a preflight without a key (browsers send none), still only for allowed origins', async () => {
      const app = await apps.app({
        ALLOWED_ORIGINS: 'https://console.example.com',
        API_KEYS: TEST_API_KEYS,
      });
      const res = await request(app)
        .options('/agents/run')
        .set('Origin', 'https://console.example.com')
        .set('Access-Control-Request-Method', 'POST');
      assert.equal(res.status, 204);
      assert.equal(res.headers['access-control-allow-origin'], 'https://console.example.com');
    });

    it('refuses ALLOWED_ORIGINS=* at configuration time', () => {
      assert.throws(() => testConfig({ ALLOWED_ORIGINS: '*' }), /ALLOWED_ORIGINS/);
    });
  });

  describe('size and time limits of the HTTP server', () => {
    const limited = testApps();
    let running: RunningApp;
    before(async () => {
      const t = await limited.build({
        env: { API_KEYS: TEST_API_KEYS, MAX_HEADER_SIZE: '2048', BODY_LIMIT: '1kb' },
      });
      running = await t.listen();
    });
    after(() => limited.closeAll());

    it('answers headers over MAX_HEADER_SIZE with 431 HEADERS_TOO_LARGE in the error shape', async () => {
      const response = await rawHttp(
        running.port,
        `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`,
      );
      assert.match(response, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
      assert.match(response, /\r\nContent-Type: application\/json; charset=utf-8\r\n/);
      const body = JSON.parse(firstResponse(response).body) as {
        error: { code: string; request_id: string };
      };
      assert.ok(isErrorShape(body));
      assert.equal(body.error.code, 'HEADERS_TOO_LARGE');
      assert.ok(response.includes(`X-Request-ID: ${body.error.request_id}`));
    });

    it('answers malformed HTTP with 400 in the error shape', async () => {
      const response = await rawHttp(
        running.port,
        'GET /health HTTP/1.1\r\nHost: x\r\nX-Id: a\nb\u0000c\r\n\r\n',
      );
      assert.match(response, /^HTTP\/1\.1 400 /);
      assert.ok(isErrorShape(JSON.parse(firstResponse(response).body)));
    });

    it('answers what Node would answer bare in the error shape: no Host, an odd Expect, CONNECT', async () => {
      const cases: Array<[string, number, string]> = [
        ['GET /health HTTP/1.1\r\n\r\n', 400, 'VALIDATION_FAILED'],
        ['GET /health HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n', 417, 'EXPECTATION_FAILED'],
        [
          'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
          405,
          'METHOD_NOT_ALLOWED',
        ],
      ];
      for (const [bytes, status, code] of cases) {
        const response = await rawHttp(running.port, bytes);
        const first = firstResponse(response);
        assert.equal(first.status, status, response);
        const body = JSON.parse(first.body) as { error: { code: string; request_id: string } };
        assert.ok(isErrorShape(body));
        assert.equal(body.error.code, code);
        assert.ok(response.includes(`X-Request-ID: ${body.error.request_id}`), response);
      }
      // HTTP/1.0 needs no Host, and the server still answers after all of them.
      assert.match(await rawHttp(running.port, 'GET /health HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /);
    });

    it('answers a body over BODY_LIMIT with 413 PAYLOAD_TOO_LARGE', async () => {
      const res = await request(running.url)
        .post('/agents/run')
        .set(bearer(ADMIN_KEY))
        .set('content-type', 'application/json')
        .send(JSON.stringify({ input: 'a'.repeat(2000) }));
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, 'PAYLOAD_TOO_LARGE');
      assert.deepEqual(res.body.error.details, { limit_bytes: 1024 });
    });

    it('applies the configured server timeouts', () => {
      const c = testConfig();
      const s = running.server;
      assert.equal(s.keepAliveTimeout, c.KEEP_ALIVE_TIMEOUT_MS);
      assert.equal(s.headersTimeout, c.HEADERS_TIMEOUT_MS);
      assert.equal(s.requestTimeout, c.REQUEST_TIMEOUT_MS);
    });
  });
});
