import assert from 'node:assert/strict';
import fc from 'fast-check';
import { POST_ENDPOINTS } from '../support/endpoints';
import { hostileRequests, injectedHeaderValues } from '../support/hostile-input';
import {
  ADMIN_KEY,
  TEST_API_KEYS,
  bearer,
  buildTestApp,
  firstResponse,
  rawHttp,
  isErrorShape,
  listen,
  send,
  testConfig,
  type RunningApp,
} from '../support/security';

/** Generated cases per endpoint (the issue asks for at least 1,000 in CI). */
const RUNS = 1000;
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function prototypeSnapshot(): string {
  return JSON.stringify(
    Object.getOwnPropertyNames(Object.prototype)
      .sort()
      .map((name) => [name, typeof Object.getOwnPropertyDescriptor(Object.prototype, name)?.value]),
  );
}

describe('bad-input suite (fast-check, hostile requests at every POST endpoint)', function () {
  this.timeout(120_000);
  let running: RunningApp;
  const config = testConfig({
    API_KEYS: TEST_API_KEYS,
    RATE_LIMIT_PER_MINUTE: '1000000',
    RATE_LIMIT_RUNS_PER_MINUTE: '1000000',
  });
  const before0 = prototypeSnapshot();

  before(async () => {
    running = await listen(buildTestApp({}, { config }), config);
  });
  after(async () => {
    await running.close();
  });

  async function stillServes(): Promise<void> {
    const health = await send(running, 'GET', '/health');
    assert.equal(health.status, 200);
    for (const row of POST_ENDPOINTS) {
      if (!row.landed || row.validBody === undefined) continue;
      const res = await send(running, 'POST', row.path, {
        headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
        body: JSON.stringify(row.validBody),
      });
      assert.ok(
        res.status >= 200 && res.status < 300,
        `${row.path} after the attack: ${res.status} ${res.text}`,
      );
    }
  }

  for (const row of POST_ENDPOINTS) {
    it(`POST ${row.path}: ${RUNS} hostile bodies all get a 4xx in the error shape`, async () => {
      const kinds = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(hostileRequests(), async (hostile) => {
          const res = await send(running, 'POST', row.path, {
            headers: { ...bearer(ADMIN_KEY), ...hostile.headers },
            body: hostile.body,
          });
          const label = `${hostile.kind}: ${res.status} ${res.text.slice(0, 200)}`;
          assert.ok(res.status >= 400 && res.status < 500, label);
          assert.ok(isErrorShape(res.json), label);
          const id = String(res.headers['x-request-id']);
          // HTTP strips the whitespace around a header value before the service sees it.
          const sent = hostile.headers['x-request-id']?.trim();
          assert.ok(
            sent !== undefined && SAFE_ID.test(sent) ? id === sent : UUID.test(id),
            `X-Request-ID ${JSON.stringify(sent)} → ${id}`,
          );
          assert.equal((res.json as { error: { request_id: string } }).error.request_id, id);
          kinds.set(hostile.kind, (kinds.get(hostile.kind) ?? 0) + 1);
        }),
        { numRuns: RUNS },
      );
      // Every family of hostile input was exercised, not just the commonest.
      assert.ok(kinds.size >= 10, `only ${[...kinds.keys()].join(', ')}`);
      assert.equal(prototypeSnapshot(), before0, 'Object.prototype changed');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
      await stillServes();
    });
  }

  it('answers CR, LF, NUL and control bytes in X-Request-ID with 400 in the error shape, never reflecting them', async () => {
    await fc.assert(
      fc.asyncProperty(injectedHeaderValues(), async (value) => {
        const head =
          `POST /agents/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n` +
          `X-Request-ID: ${value}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`;
        const response = await rawHttp(running.port, head);
        // Only the first response counts (an injected blank line can make a second request).
        const { status, head: headers, body } = firstResponse(response);
        assert.ok(
          status >= 400 && status < 500,
          `${JSON.stringify(value)} → ${response.slice(0, 120)}`,
        );
        assert.ok(isErrorShape(JSON.parse(body)), response);
        assert.ok(!/^(Set-Cookie|X-Evil):/im.test(headers), `header injected: ${headers}`);
        const echoed = /\r\nX-Request-ID: ([^\r\n]*)/i.exec(headers)?.[1] ?? '';
        assert.ok(SAFE_ID.test(echoed), `unsafe X-Request-ID echoed: ${JSON.stringify(echoed)}`);
      }),
      { numRuns: 200 },
    );
    await stillServes();
  });
});
