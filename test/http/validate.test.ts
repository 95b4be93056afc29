import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { createJsonBody } from '../../middleware/json-body';
import { createErrorHandler } from '../../middleware/error-handler';
import { createRequestContext } from '../../middleware/request-context';
import { createValidate } from '../../middleware/validate';
import { createRequestContextStore } from '../../src/request-context';
import { createSchemaRegistry } from '../../src/validation';
import { createCaptureLogger } from '../support/capture-logger';
import { assertErrorShape } from '../support/error-shape';

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
