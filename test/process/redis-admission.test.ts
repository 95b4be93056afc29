import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startRedis, stopRedis } from '../support/redis-server';
import { ADMIN_KEY, AGENT_KEY, AGENT_KEY_2, TEST_API_KEYS, bearer } from '../support/security';
import { startServerProcess, type ServerProcess } from '../support/server-process';

const MODEL = 'llama3.2:3b';
const KEYS = [ADMIN_KEY, AGENT_KEY, AGENT_KEY_2];
const LEASE_MS = 1000;

/**
 * Three gateway processes built from dist/ share one admission through a real redis-server,
 * in front of one simulated Ollama: OLLAMA_MAX_CONCURRENCY=2 for all of them together and
 * KEY_MAX_CONCURRENCY=1 per key across them.
 */
describe('admission shared by three replicas (real redis-server)', function () {
  this.timeout(60_000);
  let redisPort: number;
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator;
  let replicas: ServerProcess[] = [];

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    sim = await startOllamaSimulator({ numParallel: 8, chunkLatencyMs: 15 });
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: MODEL,
      OLLAMA_PRELOAD: 'false',
      API_KEYS: TEST_API_KEYS,
      RATE_LIMIT_PER_MINUTE: '10000',
      RATE_LIMIT_RUNS_PER_MINUTE: '10000',
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      OLLAMA_MAX_CONCURRENCY: '2',
      KEY_MAX_CONCURRENCY: '1',
      OLLAMA_MAX_CONCURRENCY_LOCAL: '1',
      QUEUE_MAX: '50',
      ADMISSION_LEASE_MS: String(LEASE_MS),
    };
    replicas = await Promise.all([0, 1, 2].map(() => startServerProcess(env)));
    for (const replica of replicas) {
      await replica.waitForLine((l) => l.message === 'admission is global across replicas (Redis)');
    }
  });

  after(async () => {
    for (const replica of replicas) replica.kill();
    await sim?.close();
    if (redis) await stopRedis(redis);
  });

  const run = async (replica: ServerProcess, key: string, input: string) => {
    const res = await fetch(`${replica.url}/agents/run`, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      body: JSON.stringify({ input }),
    });
    return { status: res.status, body: (await res.json()) as { status?: string } };
  };

  const gauge = async (replica: ServerProcess, mode: 'global' | 'local'): Promise<number> => {
    const text = await (await fetch(`${replica.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`admission_mode{mode="${mode}"}`));
    return Number(line?.split(' ')[1]);
  };

  /** Resolves once the simulator has started `n` recorded generations (event-driven). */
  const generations = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (sim.generations.length < n) return;
        sim.off('generation-start', check);
        resolve();
      };
      sim.on('generation-start', check);
      check();
    });

  /** Resolves on the `nth` log line (past or future) with this message. */
  const nthLine = (replica: ServerProcess, message: string, nth: number) => {
    let seen = 0;
    return replica.waitForLine((l) => l.message === message && ++seen === nth);
  };

  /** The input of each recorded generation (the last message of its body), in start order. */
  const inputs = (): Map<number, string> =>
    new Map(
      sim.requests.map((r) => {
        const body = r.body as { messages?: Array<{ content?: string }> } | undefined;
        return [r.id, body?.messages?.at(-1)?.content ?? ''];
      }),
    );

  it('never lets more than 2 generations reach Ollama, nor 2 of one key, and every run completes', async () => {
    sim.recordGenerations(true);
    const runs = Array.from({ length: 12 }, (_, i) =>
      run(replicas[i % 3]!, KEYS[Math.floor(i / 4)]!, `k${Math.floor(i / 4)}-r${i}`),
    );
    const results = await Promise.all(runs);
    for (const r of results) assert.deepEqual([r.status, r.body.status], [200, 'completed']);
    assert.equal(sim.generations.length, 12);
    assert.equal(sim.maxConcurrency(), 2, 'both global slots used, never more');
    // Per key: each generation starts after the key's previous one ended.
    const byInput = inputs();
    for (const key of ['k0', 'k1', 'k2']) {
      const mine = sim.generations.filter((g) => byInput.get(g.requestId)?.startsWith(`${key}-`));
      assert.equal(mine.length, 4);
      for (let i = 1; i < mine.length; i += 1) {
        assert.ok(mine[i]!.startedAt >= mine[i - 1]!.endedAt!, `${key} overlapped itself`);
      }
    }
    sim.recordGenerations(false);
  });

  it('frees the slots of a replica killed while holding them within its lease', async () => {
    const [doomed, survivor] = replicas as [ServerProcess, ServerProcess, ServerProcess];
    sim.recordGenerations(true);
    const before = sim.generations.length;
    const gate = sim.hold();
    // Two keys on the doomed replica take both global slots and hold them (streams paused).
    const held = [ADMIN_KEY, AGENT_KEY].map((key, i) =>
      run(doomed, key, `held-${i}`).catch(() => undefined),
    );
    await generations(before + 2);
    const waiting = run(survivor, AGENT_KEY_2, 'after-kill');
    const killedAt = Date.now();
    doomed.kill();
    await doomed.exited;
    // The paused streams of the dead replica stay open in the simulator until the gate opens:
    // only the lease can free their slots in the gateway's count.
    await generations(before + 3);
    const freedAfterMs = Date.now() - killedAt;
    gate.release();
    assert.deepEqual((await waiting).status, 200);
    await Promise.all(held);
    // Freed by the lease running out (renewed every third of it), not earlier, not later.
    assert.ok(
      freedAfterMs >= LEASE_MS / 3 && freedAfterMs <= LEASE_MS + 1000,
      `slot freed after ${freedAfterMs} ms (lease ${LEASE_MS} ms)`,
    );
    sim.recordGenerations(false);
    replicas = replicas.slice(1);
  });

  it('falls back to the per-replica share while Redis is down, and is global again when it returns', async () => {
    await stopRedis(redis!);
    redis = undefined;
    for (const replica of replicas) {
      await replica.waitForLine(
        (l) => l.message === 'admission falls back to the per-replica share: Redis is unreachable',
      );
      assert.equal(await gauge(replica, 'local'), 1);
      assert.equal(await gauge(replica, 'global'), 0);
    }
    const during = await run(replicas[0]!, AGENT_KEY, 'redis-down');
    assert.deepEqual([during.status, during.body.status], [200, 'completed']);

    redis = await startRedis(redisPort);
    for (const replica of replicas) {
      await nthLine(replica, 'admission is global across replicas (Redis)', 2);
      assert.equal(await gauge(replica, 'global'), 1);
      assert.equal(await gauge(replica, 'local'), 0);
    }
    const back = await run(replicas[1]!, AGENT_KEY, 'redis-back');
    assert.deepEqual([back.status, back.body.status], [200, 'completed']);
  });
});
