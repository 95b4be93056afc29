import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startRedis, stopRedis } from '../support/redis-server';
import { AGENT_KEY, TEST_API_KEYS, bearer } from '../support/security';
import { startServerProcess, type ServerProcess } from '../support/server-process';

describe('two server processes with REDIS_URL (real redis-server)', function () {
  this.timeout(20_000);
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator | undefined;
  const servers: ServerProcess[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) server.kill();
    await sim?.close();
    if (redis) await stopRedis(redis);
    redis = undefined;
  });

  it('load the Redis client when it is configured and share one rate-limit budget', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    sim = await startOllamaSimulator();
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_PRELOAD: 'false',
      API_KEYS: TEST_API_KEYS,
      RATE_LIMIT_PER_MINUTE: '3',
      REDIS_URL: `redis://127.0.0.1:${port}`,
    };
    const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    servers.push(a, b);
    for (const server of [a, b]) {
      await server.waitForLine((l) => l.message === 'redis connected');
    }
    const get = (server: ServerProcess) =>
      fetch(`${server.url}/agents`, { headers: bearer(AGENT_KEY) });

    // Two requests on A and one on B spend the key's budget of 3, so B's next one is refused.
    assert.equal((await get(a)).status, 200);
    assert.equal((await get(a)).status, 200);
    assert.equal((await get(b)).status, 200);
    const limited = await get(b);
    assert.equal(limited.status, 429);
    const body = (await limited.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.equal((await get(a)).status, 429);
  });
});
