import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../support/listen';
import {
  createManualClock,
  startOllamaSimulator,
  type OllamaSimulator,
  type SimRequestLog,
} from '../support/ollama-simulator';
import { pollUntil } from '../support/poll';
import { startRedis, stopRedis } from '../support/redis-server';
import { ADMIN_KEY, TEST_API_KEYS, bearer } from '../support/security';
import { startServerProcess, type ServerProcess } from '../support/server-process';

const FIRST = 'llama3.2:3b';
const SECOND = 'qwen3:8b';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

async function call(server: ServerProcess, path: string, body?: object): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { ...bearer(ADMIN_KEY), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // /metrics is text
  }
  return { status: res.status, body: parsed, text };
}

/** The active model a replica reports (cached state, no Ollama call). */
async function activeOf(server: ServerProcess): Promise<string> {
  const { body } = await call(server, '/ollama/health/detailed');
  return String(body.active_model);
}

/** The switch in progress a replica reports, or null. */
async function switchingOf(server: ServerProcess): Promise<unknown> {
  const { body } = await call(server, '/ollama/health/detailed');
  return body.switching_to;
}

const isPreload = (r: SimRequestLog, model: string): boolean => {
  const body = r.body as { model?: string; messages?: unknown[]; keep_alive?: unknown } | undefined;
  return (
    r.path === '/api/chat' &&
    body?.model === model &&
    Array.isArray(body.messages) &&
    body.messages.length === 0 &&
    body.keep_alive !== 0
  );
};
const isUnload = (r: SimRequestLog, model: string): boolean => {
  const body = r.body as { model?: string; keep_alive?: unknown } | undefined;
  return body?.model === model && body.keep_alive === 0;
};

function metric(text: string, line: RegExp): number | undefined {
  const match = text.split('\n').find((l) => line.test(l));
  return match === undefined ? undefined : Number(match.split(' ').pop());
}

describe('the active model shared by two server processes through Redis (real redis-server)', function () {
  this.timeout(30_000);
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator | undefined;
  const servers: ServerProcess[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.child.kill('SIGCONT');
      server.kill();
    }
    await sim?.close();
    if (redis) await stopRedis(redis);
    redis = undefined;
  });

  it('propagates a switch within 1 s, allows one switch at a time, preloads once, unloads only after every replica applied it, and rides out a Redis outage', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    // The simulator's load time runs on a manual clock: A's preload lasts until the test moves it.
    const clock = createManualClock();
    sim = await startOllamaSimulator({ clock });
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: FIRST,
      OLLAMA_PRELOAD: 'false',
      API_KEYS: TEST_API_KEYS,
      REDIS_URL: `redis://127.0.0.1:${port}`,
    };
    const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    servers.push(a, b);
    for (const server of [a, b]) {
      await server.waitForLine((l) => l.message === 'startup complete');
    }

    // 1. A switches to SECOND with a slow load; meanwhile a switch on B (and on A) gets 409.
    sim.setLoadDelay(60_000, SECOND);
    const loading = sim.waitFor('loading');
    const switching = call(a, '/ollama/model/switch', { model: SECOND, unload_previous: false });
    await loading;
    const onB = await call(b, '/ollama/model/switch', { model: FIRST });
    assert.equal(onB.status, 409);
    const conflict = onB.body.error as { code: string; details: unknown };
    assert.equal(conflict.code, 'SWITCH_IN_PROGRESS');
    assert.deepEqual(conflict.details, { switching_to: SECOND });
    assert.equal((await call(a, '/ollama/model/switch', { model: FIRST })).status, 409);
    assert.equal(await activeOf(b), FIRST);
    // B knows which switch runs, and will not delete the model being switched to.
    await pollUntil(
      "B's switching_to",
      async () => ((await switchingOf(b)) === SECOND ? true : undefined),
      1000,
    );
    const removal = await fetch(`${b.url}/ollama/models/${encodeURIComponent(SECOND)}`, {
      method: 'DELETE',
      headers: bearer(ADMIN_KEY),
    });
    assert.equal(removal.status, 409);
    assert.equal(
      ((await removal.json()) as { error: { code: string } }).error.code,
      'MODEL_IN_USE',
    );

    // The load ends: A flips, and B applies it within 1 s of A's answer.
    clock.advance(60_000);
    const switched = await switching;
    assert.equal(switched.status, 200, switched.text);
    const seen = await pollUntil(
      "B's active model",
      async () => ((await activeOf(b)) === SECOND ? true : undefined),
      1000,
    );
    assert.ok(seen.elapsedMs < 1000);
    await pollUntil(
      "B's switch over",
      async () => ((await switchingOf(b)) === null ? true : undefined),
      1000,
    );
    // The preload happened once, sent by A only; nothing was unloaded (unload_previous false).
    assert.equal(sim.requests.filter((r) => isPreload(r, SECOND)).length, 1);
    assert.equal(sim.counts(SECOND).loads, 1);
    const bMetrics = (await call(b, '/metrics')).text;
    assert.equal(metric(bMetrics, /^model_switches_propagated_total /), 1);
    assert.ok(
      (metric(bMetrics, /^redis_command_duration_seconds_count\{group="model",outcome="ok"\}/) ??
        0) > 0,
    );
    assert.equal(metric(bMetrics, /^redis_up /), 1);

    // 2. The unload rule: with B frozen (alive, but not applying anything), A's switch back to
    // FIRST flips A and waits; SECOND stays loaded until B has applied the switch.
    b.child.kill('SIGSTOP');
    const back = call(a, '/ollama/model/switch', { model: FIRST });
    await pollUntil(
      'A flipped',
      async () => ((await activeOf(a)) === FIRST ? true : undefined),
      3000,
    );
    assert.equal(sim.requests.filter((r) => isUnload(r, SECOND)).length, 0);
    b.child.kill('SIGCONT');
    const backAnswer = await back;
    assert.equal(backAnswer.status, 200, backAnswer.text);
    assert.equal(await activeOf(b), FIRST);
    await b.waitForLine(
      (l) => l.message === 'active model changed by another replica' && l.to === FIRST,
    );
    // Unloaded once, after B applied the switch (not because B's presence ran out).
    assert.equal(sim.requests.filter((r) => isUnload(r, SECOND)).length, 1);
    assert.ok(!a.lines.some((l) => /previous model left loaded/.test(String(l.message))));

    // 3. Redis goes away: readiness stays 200, the detailed health and redis_up say so, the
    // active model keeps its value, and a switch is refused with 503 instead of diverging.
    await stopRedis(redis);
    redis = undefined;
    for (const server of [a, b]) {
      const detailed = await pollUntil(
        'Redis seen down',
        async () => {
          const { body } = await call(server, '/health/detailed');
          return (body.redis as { status?: string }).status === 'down' ? body : undefined;
        },
        5000,
      );
      const facts = detailed.value.redis as { since: string; last_error: { class: string } | null };
      assert.ok(facts.last_error && typeof facts.last_error.class === 'string');
      assert.ok(!JSON.stringify(detailed.value).includes('redis://'));
      const ready = await call(server, '/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'warn');
      assert.equal(metric((await call(server, '/metrics')).text, /^redis_up /), 0);
      assert.equal(await activeOf(server), FIRST);
    }
    const refused = await call(b, '/ollama/model/switch', { model: SECOND });
    assert.equal(refused.status, 503);
    assert.equal((refused.body.error as { code: string }).code, 'REDIS_UNAVAILABLE');

    // 4. Redis returns (empty): both replicas reconnect by themselves, and switching works again.
    redis = await startRedis(port);
    for (const server of [a, b]) {
      await pollUntil(
        'Redis seen up',
        async () => {
          const { body } = await call(server, '/health/detailed');
          return (body.redis as { status?: string }).status === 'up' ? true : undefined;
        },
        10_000,
      );
      assert.equal(metric((await call(server, '/metrics')).text, /^redis_up /), 1);
    }
    sim.setLoadDelay(0, SECOND);
    const again = await call(b, '/ollama/model/switch', { model: SECOND });
    assert.equal(again.status, 200, again.text);
    const reached = await pollUntil(
      "A's active model",
      async () => ((await activeOf(a)) === SECOND ? true : undefined),
      1000,
    );
    assert.ok(reached.elapsedMs < 1000);
  });
});
