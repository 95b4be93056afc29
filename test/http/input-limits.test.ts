import assert from 'node:assert/strict';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import {
  ADMIN_KEY,
  TEST_API_KEYS,
  bearer,
  firstResponse,
  isErrorShape,
  rawHttp,
  send,
} from '../support/security';

/**
 * Each input limit of the request schemas, one row each, with a value far past any sane
 * limit so the row does not depend on the exact number a schema picks. The limits live in
 * `schemas/agent-run.request.schema.json` (agents router) and
 * `schemas/ollama-*.schema.json` (Ollama router); the body and header sizes in the
 * configuration (BODY_LIMIT, MAX_HEADER_SIZE). Each row runs against the real routers.
 */
interface LimitRow {
  limit: string;
  method: 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  /** Extra headers; such a row is sent as raw bytes (the server may cut the connection). */
  headers?: Record<string, string>;
  code: 'VALIDATION_FAILED' | 'PAYLOAD_TOO_LARGE' | 'HEADERS_TOO_LARGE';
}

const BAD_MODEL_NAMES = [
  '../../etc/passwd',
  'a/b/c/d',
  'hf.co/model',
  'model\u0000',
  'mo\ndel',
  '/abs',
  'x'.repeat(1000),
  '',
];

const ROWS: LimitRow[] = [
  ...BAD_MODEL_NAMES.map((model): LimitRow => ({
    limit: `model name ${JSON.stringify(model.slice(0, 20))}`,
    method: 'POST',
    path: '/ollama/model/switch',
    body: { model },
    code: 'VALIDATION_FAILED',
  })),
  ...BAD_MODEL_NAMES.map((model): LimitRow => ({
    limit: `pull model name ${JSON.stringify(model.slice(0, 20))}`,
    method: 'POST',
    path: '/ollama/models/pull',
    body: { model },
    code: 'VALIDATION_FAILED',
  })),
  {
    limit: 'model name in a DELETE path',
    method: 'DELETE',
    path: '/ollama/models/..%2F..%2Fetc',
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'JSON nesting (a response_format schema 100 levels deep)',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      response_format: {
        type: 'json_schema',
        schema: JSON.parse(`${'{"type":"array","items":'.repeat(100)}{}${'}'.repeat(100)}`),
      },
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'an $async response_format schema (its validator would answer with a promise)',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      response_format: {
        type: 'json_schema',
        schema: { $async: true, type: 'object', required: ['total'] },
      },
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'an $async client tool parameters schema',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      tools: [
        {
          type: 'client',
          name: 'lookup',
          description: 'd',
          parameters: { $async: true, type: 'object', properties: { q: { type: 'string' } } },
        },
      ],
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'a pattern RE2 cannot run in linear time (a lookahead)',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      response_format: { type: 'json_schema', schema: { type: 'string', pattern: '^(?=a)a+$' } },
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'percent-encoding of a path parameter',
    method: 'DELETE',
    path: '/ollama/models/%ZZ',
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'inline agent model name',
    method: 'POST',
    path: '/agents/run',
    body: { agent: { system: 's', model: '../x' }, input: 'hi' },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'message count',
    method: 'POST',
    path: '/agents/run',
    body: { messages: Array.from({ length: 5000 }, () => ({ role: 'user', content: 'x' })) },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'message length',
    method: 'POST',
    path: '/agents/run',
    body: { messages: [{ role: 'user', content: 'x'.repeat(900_000) }] },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'tools per request',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      tools: Array.from({ length: 1000 }, (_, i) => ({ type: 'server', name: `t${i}` })),
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'metadata entries',
    method: 'POST',
    path: '/agents/run',
    body: {
      input: 'hi',
      metadata: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, 'v'])),
    },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'metadata value size',
    method: 'POST',
    path: '/agents/run',
    body: { input: 'hi', metadata: { k: 'v'.repeat(100_000) } },
    code: 'VALIDATION_FAILED',
  },
  {
    limit: 'body size (BODY_LIMIT)',
    method: 'POST',
    path: '/agents/run',
    body: { input: 'x'.repeat(2 * 1024 * 1024) },
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    limit: 'header size (MAX_HEADER_SIZE)',
    method: 'POST',
    path: '/agents/run',
    body: { input: 'hi' },
    headers: { 'x-padding': 'h'.repeat(40 * 1024) },
    code: 'HEADERS_TOO_LARGE',
  },
];

/** Sends a row as raw HTTP bytes and reads the first response (status and JSON body). */
async function sendRaw(
  running: RunningApp,
  row: LimitRow,
): Promise<{ status: number; json: unknown; text: string }> {
  const body = JSON.stringify(row.body ?? {});
  const headers = {
    Host: 'x',
    Authorization: `Bearer ${ADMIN_KEY}`,
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    ...row.headers,
  };
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const text = await rawHttp(
    running.port,
    `${row.method} ${row.path} HTTP/1.1\r\n${head}\r\n${body}`,
  );
  const first = firstResponse(text);
  return { status: first.status, json: JSON.parse(first.body) as unknown, text };
}

describe('input limits (one row per limit, real routers)', () => {
  let t: TestApp;
  let running: RunningApp;
  before(async () => {
    t = await buildTestApp({ env: { API_KEYS: TEST_API_KEYS, RATE_LIMIT_PER_MINUTE: '100000' } });
    running = await t.listen();
  });
  after(() => t.close());

  for (const row of ROWS) {
    it(`${row.method} ${row.path}: ${row.limit} → 4xx ${row.code}`, async () => {
      const res = row.headers
        ? await sendRaw(running, row)
        : await send(running, row.method, row.path, {
            headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
            body: row.body === undefined ? undefined : JSON.stringify(row.body),
          });
      assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text.slice(0, 200)}`);
      assert.ok(isErrorShape(res.json), res.text.slice(0, 200));
      assert.equal((res.json as { error: { code: string } }).error.code, row.code);
    });
  }

  it('a path parameter that is not percent-encoding is a 400 in each API’s shape', async () => {
    const auth = { headers: bearer(ADMIN_KEY) };
    for (const path of ['/agents/runs/%ZZ', '/agents/runs/%ZZ/events', '/agents/%E0%A4%A']) {
      const res = await send(running, 'GET', path, auth);
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.ok(isErrorShape(res.json));
      assert.equal((res.json as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    }
    const openai = await send(running, 'GET', '/v1/models/%ZZ', auth);
    assert.equal(openai.status, 400, openai.text);
    const { error } = openai.json as { error: { type: string; code: string } };
    assert.deepEqual([error.type, error.code], ['invalid_request_error', 'VALIDATION_FAILED']);
  });

  it('every limit is below what reaches Ollama: the simulator saw none of these requests', () => {
    const seen = t.sim?.requests.filter((r) => r.path !== '/api/version') ?? [];
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.path}`),
      [],
    );
  });
});
