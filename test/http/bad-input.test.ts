import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import { POST_ENDPOINTS, withRunId } from '../support/endpoints';
import { hostileRequests, injectedHeaderValues, postHostile } from '../support/hostile-input';
import {
  ADMIN_KEY,
  TEST_API_KEYS,
  bearer,
  firstResponse,
  rawHttp,
  isErrorShape,
  send,
} from '../support/security';

/** Generated cases per endpoint: at least 1,000 in CI. */
const RUNS = 1000;
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** The families whose bodies can be valid requests (then a 2xx is the right answer). */
const ACCEPTABLE = new Set(['near-valid', 'wrong-types', 'proto-keys']);
/**
 * The one 5xx a request may get: a valid request reached Ollama and Ollama's refusal was
 * classified (e.g. a pull of a name the registry does not have: 502 OLLAMA_UPSTREAM_ERROR
 * with the registry's message). Never 500, never INTERNAL_ERROR.
 */
function isUpstreamAnswer(kind: string, res: { status: number; json: unknown }): boolean {
  const code = (res.json as { error?: { code?: string } } | undefined)?.error?.code ?? '';
  return ACCEPTABLE.has(kind) && res.status !== 500 && /^OLLAMA_/.test(code);
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function prototypeSnapshot(): string {
  return JSON.stringify(
    Object.getOwnPropertyNames(Object.prototype)
      .sort()
      .map((name) => [name, typeof Object.getOwnPropertyDescriptor(Object.prototype, name)?.value]),
  );
}

/**
 * One server for the whole suite (keep-alive, high rate limits), the real routers against the
 * simulator. A generated body is hostile but may happen to be valid (`{"input":"x"}` runs an
 * agent, `{"model":"a"}` asks for a switch): then it must be answered quickly like any valid
 * request; never with a 5xx.
 */
describe('bad-input suite (fast-check, hostile requests at every POST endpoint)', function () {
  this.timeout(120_000);
  let t: TestApp;
  let running: RunningApp;
  const before0 = prototypeSnapshot();
  /** An installed model with tools that no hostile body names (the active one is llama3.2:3b). */
  const RESUME_MODEL = 'qwen3:8b';

  before(async () => {
    t = await buildTestApp({
      env: {
        API_KEYS: TEST_API_KEYS,
        RATE_LIMIT_PER_MINUTE: '1000000',
        RATE_LIMIT_RUNS_PER_MINUTE: '1000000',
        OLLAMA_RETRY_MAX: '0',
      },
    });
    running = await t.listen();
  });
  after(() => t.close());

  const post = (path: string, body: unknown) =>
    send(running, 'POST', path, {
      headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** Every POST endpoint still does its job; the cancel row gets a run of its own to cancel. */
  async function stillServes(): Promise<void> {
    const health = await send(running, 'GET', '/health');
    assert.equal(health.status, 200);
    for (const row of POST_ENDPOINTS) {
      if (row.validBody === undefined) continue;
      let path = row.path;
      if (path.endsWith('/resume')) {
        // A run paused for a client tool's output, which the row's body then gives. It runs on
        // a model the attacks never ask for, so no run they left going takes its scripted reply
        // (scripts are FIFO per model); should one still miss it, another try scripts it again.
        let run: { id: string; required_action: { tool_calls: Array<{ id: string }> } | null };
        for (let attempt = 1; ; attempt += 1) {
          t.sim?.script(RESUME_MODEL, {
            tool_calls: [{ function: { name: 'ask_user', arguments: {} } }],
          });
          const paused = await post('/agents/run', {
            model: RESUME_MODEL,
            input: 'hi',
            tools: [
              {
                type: 'client',
                name: 'ask_user',
                description: 'Asks the user.',
                parameters: { type: 'object' },
              },
            ],
          });
          assert.equal(paused.status, 200, paused.text);
          run = paused.json as typeof run;
          if (run.required_action || attempt === 5) break;
        }
        assert.ok(run.required_action, 'the run paused for its client tool');
        const res = await post(withRunId(path, run.id), {
          tool_outputs: run.required_action.tool_calls.map((c) => ({
            tool_call_id: c.id,
            output: 'yes',
          })),
        });
        assert.equal(res.status, 200, `${path} after the attack: ${res.text.slice(0, 300)}`);
        continue;
      }
      if (path.includes('/runs/')) {
        const created = await post('/agents/run', { input: 'hi', background: true });
        assert.equal(created.status, 202, created.text);
        path = withRunId(path, (created.json as { id: string }).id);
      }
      const res = await post(path, row.validBody);
      assert.ok(
        res.status >= 200 && res.status < 300,
        `${path} after the attack: ${res.status} ${res.text.slice(0, 300)}`,
      );
    }
    // A plain answered run against the simulator: the whole agent path still works.
    const run = await post('/agents/run', { input: 'still there?' });
    assert.equal(run.status, 200, run.text);
    assert.equal((run.json as { status: string }).status, 'completed');
  }

  for (const row of POST_ENDPOINTS) {
    it(`POST ${row.path}: ${RUNS} hostile bodies, never a 500, every error in the error shape`, async () => {
      const kinds = new Map<string, number>();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(hostileRequests(), async (hostile) => {
          const { res, label } = await postHostile(running, row.path, ADMIN_KEY, hostile);
          assert.ok(
            res.status >= 200 && (res.status < 500 || isUpstreamAnswer(hostile.kind, res)),
            label,
          );
          const id = String(res.headers['x-request-id']);
          // HTTP strips the whitespace around a header value before the service sees it.
          const sent = hostile.headers['x-request-id']?.trim();
          assert.ok(
            sent !== undefined && SAFE_ID.test(sent) ? id === sent : UUID.test(id),
            `X-Request-ID ${JSON.stringify(sent)} → ${id}`,
          );
          if (res.status >= 400) {
            assert.ok(isErrorShape(res.json), label);
            assert.equal((res.json as { error: { request_id: string } }).error.request_id, id);
          } else {
            // Accepted: only a well-formed JSON object body can be a valid request.
            assert.ok(ACCEPTABLE.has(hostile.kind), label);
          }
          kinds.set(hostile.kind, (kinds.get(hostile.kind) ?? 0) + 1);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }),
        { numRuns: RUNS },
      );
      // Every family of hostile input was exercised, not just the commonest.
      assert.ok(kinds.size >= 10, `only ${[...kinds.keys()].join(', ')}`);
      // Mostly refused: a suite where most bodies pass would not be testing refusals.
      const accepted = [...statuses].filter(([s]) => s < 400).reduce((n, [, c]) => n + c, 0);
      assert.ok(accepted < RUNS / 4, `accepted ${accepted}: ${JSON.stringify([...statuses])}`);
      assert.equal(prototypeSnapshot(), before0, 'Object.prototype changed');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
      await stillServes();
    });
  }

  it('refuses invalid UTF-8 with 400 INVALID_JSON, even in a body that is otherwise a valid run', async () => {
    const body = Buffer.concat([
      Buffer.from('{"input":"'),
      Buffer.from([0xc0, 0xaf, 0xff]),
      Buffer.from('"}'),
    ]);
    const res = await send(running, 'POST', '/agents/run', {
      headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 400, res.text);
    assert.equal((res.json as { error: { code: string } }).error.code, 'INVALID_JSON');
    // The same body in valid UTF-8 runs.
    assert.equal((await post('/agents/run', { input: 'À¯' })).status, 200);
  });

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
