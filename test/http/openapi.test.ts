import assert from 'node:assert/strict';
import type { Express } from 'express';
import request from 'supertest';
import { testApps } from '../support/build-app';

interface Layer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** Every `METHOD /path` the app's routers serve, read from Express's own route table. */
function servedRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: readonly Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const path = `${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}') || '/';
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all') out.push(`${method.toUpperCase()} ${path}`);
        }
      } else if (layer.handle.stack) {
        const mount = layer.rawPath && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out.sort();
}

describe('GET /openapi.json', () => {
  const apps = testApps();
  afterEach(() => apps.closeAll());

  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const app = await apps.app({ API_KEYS: 'k-0123456789abcdef:agent' });
    const res = await request(app).get('/openapi.json').expect(200);
    assert.equal(res.body.openapi, '3.1.0');
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(res.body as Parameters<typeof validator.validate>[0]);
    assert.deepEqual(result.errors, undefined);
    assert.equal(result.valid, true);
  });

  it('has an operation for every route the app serves, and no other', async () => {
    const app = await apps.app();
    const doc = (await request(app).get('/openapi.json').expect(200)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const served = servedRoutes(app);
    assert.ok(
      served.length > 30,
      `expected every router to be mounted, saw ${served.length} routes`,
    );
    assert.deepEqual(
      served.filter((r) => !documented.includes(r)),
      [],
      'routes without an OpenAPI entry',
    );
    assert.deepEqual(
      documented.filter((r) => !served.includes(r)),
      [],
      'OpenAPI entries without a route',
    );
  });

  it("describes each API's error shape and the bearer key", async () => {
    const app = await apps.app();
    const doc = (await request(app).get('/openapi.json')).body as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, unknown>; security?: unknown }>
      >;
      components: { securitySchemes: Record<string, { scheme?: string; name?: string }> };
    };
    const errorRef = (path: string, method: string) =>
      JSON.stringify(doc.paths[path]?.[method]?.responses['4XX']);
    assert.match(errorRef('/v1/chat/completions', 'post'), /openai-error\.response/);
    assert.match(errorRef('/api/chat', 'post'), /ollama-native-error\.response/);
    assert.match(errorRef('/agents/run', 'post'), /#\/components\/schemas\/error\.response/);
    assert.equal(doc.components.securitySchemes.bearerAuth?.scheme, 'bearer');
    assert.equal(doc.components.securitySchemes.apiKeyHeader?.name, 'X-API-Key');
    const headers = (path: string, method: string) =>
      JSON.stringify(
        (doc.paths[path]?.[method] as { parameters?: unknown } | undefined)?.parameters,
      );
    assert.match(headers('/agents/run', 'post'), /"name":"Idempotency-Key","in":"header"/);
    assert.match(
      headers('/agents/runs/{id}/events', 'get'),
      /"name":"Last-Event-ID","in":"header"/,
    );
    assert.deepEqual(doc.paths['/health/live']?.get?.security, []);
    // Response headers: the run's Location on a 202, Retry-After on errors, the rate-limit
    // headers on every route but the open ones.
    const answer = (path: string, method: string, status: string) =>
      Object.keys(
        (doc.paths[path]?.[method]?.responses[status] as { headers?: object } | undefined)
          ?.headers ?? {},
      );
    assert.ok(answer('/agents/run', 'post', '202').includes('Location'));
    assert.ok(answer('/v1/chat/completions', 'post', '4XX').includes('Retry-After'));
    assert.ok(answer('/agents/run', 'post', '200').includes('RateLimit'));
    assert.deepEqual(answer('/health/live', 'get', '200'), ['X-Request-ID']);
  });
});
