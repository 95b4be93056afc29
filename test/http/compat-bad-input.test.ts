import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import { hostileRequests, postHostile } from '../support/hostile-input';
import { ADMIN_KEY, TEST_API_KEYS, bearer, send } from '../support/security';

/** Generated cases per endpoint. */
const RUNS = 200;
/** The families whose bodies can be valid requests (then Ollama answers, maybe with a 4xx). */
const ACCEPTABLE = new Set(['near-valid', 'wrong-types', 'proto-keys']);

function isOpenAiError(body: unknown): boolean {
  const e = (body as { error?: Record<string, unknown> } | undefined)?.error;
  return (
    typeof e?.message === 'string' &&
    typeof e.type === 'string' &&
    typeof e.code === 'string' &&
    /^[A-Z][A-Z_]*$/.test(e.code)
  );
}

function isOllamaError(body: unknown): boolean {
  const keys = body && typeof body === 'object' ? Object.keys(body) : [];
  return keys.length === 1 && typeof (body as { error?: unknown }).error === 'string';
}

/**
 * The drop-in POST endpoints under generated hostile bodies (the same generator as the
 * gateway's own bad-input suite): never a 500, every error in the API's own shape, and an
 * answer that streams is read to its end.
 */
describe('drop-in endpoints under hostile bodies (fast-check)', function () {
  this.timeout(120_000);
  let t: TestApp;
  let running: RunningApp;
  before(async () => {
    t = await buildTestApp({
      env: {
        API_KEYS: TEST_API_KEYS,
        RATE_LIMIT_COMPAT_PER_MINUTE: '1000000',
        OLLAMA_RETRY_MAX: '0',
      },
    });
    running = await t.listen();
  });
  after(() => t.close());

  const rows = [
    { path: '/v1/chat/completions', shape: isOpenAiError },
    { path: '/v1/embeddings', shape: isOpenAiError },
    { path: '/api/chat', shape: isOllamaError },
    { path: '/api/show', shape: isOllamaError },
  ];
  for (const row of rows) {
    it(`POST ${row.path}: ${RUNS} hostile bodies, never a 500, errors in the API's shape`, async () => {
      await fc.assert(
        fc.asyncProperty(hostileRequests(), async (hostile) => {
          const { res, label } = await postHostile(running, row.path, ADMIN_KEY, hostile);
          const upstream = ACCEPTABLE.has(hostile.kind) && [502, 503, 504].includes(res.status);
          assert.ok(res.status >= 200 && (res.status < 500 || upstream), label);
          if (res.status >= 400) assert.ok(row.shape(res.json), label);
        }),
        { numRuns: RUNS },
      );
      const ok = await send(running, 'POST', row.path, {
        headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'llama3.2:3b',
          messages: [{ role: 'user', content: 'x' }],
          input: 'x',
          stream: false,
        }),
      });
      assert.equal(ok.status, 200, `${row.path} after the attack: ${ok.text.slice(0, 200)}`);
    });
  }
});
