import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startRedis, stopRedis } from '../support/redis-server';
import { createSecretMount, type SecretMount } from '../support/secret-mount';
import { ADMIN_KEY, AGENT_KEY, AGENT_KEY_2, bearer } from '../support/security';
import {
  runToExit,
  SERVER_ENTRY,
  startServerProcess,
  type ServerProcess,
} from '../support/server-process';

const MODEL = 'llama3.2:3b';
const keyFile = (extra = ''): string => `keys:
  - id: ops
    role: admin
    key: ${ADMIN_KEY}
  - id: team-a
    role: agent
    key: ${AGENT_KEY}
    budgets: { tokensPerDay: 1000000 }
${extra}`;

describe('API_KEYS_FILE and token usage in server processes', function () {
  this.timeout(30_000);
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator | undefined;
  let mount: SecretMount | undefined;
  const servers: ServerProcess[] = [];

  afterEach(async () => {
    for (const server of servers.splice(0)) server.kill();
    await sim?.close();
    if (redis) await stopRedis(redis);
    redis = undefined;
    if (mount) await rm(mount.dir, { recursive: true, force: true });
    mount = undefined;
  });

  it('a bad key file stops the process at start with one message naming each problem (exit 78)', async () => {
    mount = await createSecretMount();
    await mount.write(`keys:
  - id: ops
    role: owner
    key: ${ADMIN_KEY}
  - id: ops
    role: agent
    key: short
    limits: { priority: urgent }
`);
    const { code, stderr } = await runToExit(process.execPath, [SERVER_ENTRY], {
      API_KEYS_FILE: mount.file,
      OLLAMA_HOST: 'http://127.0.0.1:9',
    });
    assert.equal(code, 78);
    assert.match(stderr, /^Invalid configuration:\n/);
    for (const problem of [
      '  - API_KEYS_FILE: /keys/0/role must be one of: agent, admin',
      '  - API_KEYS_FILE: /keys/1/key must NOT have fewer than 16 characters',
      '  - API_KEYS_FILE: /keys/1/limits/priority must be one of: interactive, batch',
    ]) {
      assert.ok(stderr.includes(problem), `${problem}\nin\n${stderr}`);
    }
    assert.ok(!stderr.includes(ADMIN_KEY) && !stderr.includes('short'));
  });

  it('usage survives a replica restart and a Redis outage; the key file is reloaded without a restart', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    sim = await startOllamaSimulator();
    mount = await createSecretMount();
    await mount.write(keyFile());
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: MODEL,
      OLLAMA_PRELOAD: 'false',
      API_KEYS_FILE: mount.file,
      API_KEYS_FILE_POLL_MS: '100',
      REDIS_URL: `redis://127.0.0.1:${port}`,
    };
    const start = async (): Promise<ServerProcess> => {
      const server = await startServerProcess(env);
      servers.push(server);
      await server.waitForLine((l) => l.message === 'redis connected');
      return server;
    };
    const generate = async (server: ServerProcess, key: string, prompt: number, out: number) => {
      sim!.script(MODEL, { content: 'ok', promptEvalCount: prompt, evalCount: out });
      const res = await fetch(`${server.url}/api/generate`, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: 'hello', stream: false }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    const usage = async (server: ServerProcess, key = ADMIN_KEY) => {
      const res = await fetch(`${server.url}/usage`, { headers: bearer(key) });
      return { status: res.status, body: (await res.json()) as { data: unknown[] } };
    };

    const a = await start();
    await generate(a, AGENT_KEY, 12, 30);
    await generate(a, AGENT_KEY, 8, 10);
    await generate(a, ADMIN_KEY, 1, 2);
    const before = await usage(a);
    assert.deepEqual(before.body.data, [
      { key_id: 'ops', model: MODEL, prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
      {
        key_id: 'team-a',
        model: MODEL,
        prompt_tokens: 20,
        completion_tokens: 40,
        total_tokens: 60,
      },
    ]);

    // The replica dies; its successor reads the same usage from Redis.
    a.kill();
    await a.exited;
    const b = await start();
    assert.deepEqual((await usage(b)).body, before.body);

    // Redis goes away: generations are served (budgets fail open) and their usage is kept by
    // the replica, then added once Redis is back (this redis-server keeps nothing on disk, so
    // what it holds afterwards is exactly what was kept).
    await stopRedis(redis);
    await b.waitForLine((l) => l.message === 'redis unreachable; retrying in the background');
    await generate(b, AGENT_KEY, 5, 6);
    assert.equal((await usage(b)).status, 503);
    redis = await startRedis(port);
    await b.waitForLine((l) => l.message === 'token usage kept during the Redis outage added');
    assert.deepEqual((await usage(b)).body.data, [
      { key_id: 'team-a', model: MODEL, prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
    ]);

    // A new version of the mounted Secret: a new key, without a restart.
    assert.equal((await usage(b, AGENT_KEY_2)).status, 401);
    await mount.write(keyFile(`  - id: team-new\n    role: agent\n    key: ${AGENT_KEY_2}\n`));
    await b.waitForLine((l) => l.message === 'API keys reloaded');
    assert.equal((await usage(b, AGENT_KEY_2)).status, 200);
    await generate(b, AGENT_KEY_2, 3, 4);
    const own = (await usage(b, AGENT_KEY_2)).body.data as Array<{ key_id: string }>;
    assert.deepEqual(
      own.map((r) => r.key_id),
      ['team-new'],
    );

    // A bad version is refused with a log line; the keys in force stay.
    await mount.write(keyFile('  - id: team-new\n    role: agent\n'));
    const refused = await b.waitForLine(
      (l) => l.message === 'API_KEYS_FILE refused; the keys in force stay',
    );
    assert.deepEqual(refused.problems, [
      'API_KEYS_FILE: /keys/2 needs exactly one of key and keyFile',
    ]);
    assert.equal((await usage(b, AGENT_KEY_2)).status, 200);
    const logs = JSON.stringify(b.lines) + b.stderr();
    for (const key of [ADMIN_KEY, AGENT_KEY, AGENT_KEY_2]) assert.ok(!logs.includes(key));
  });
});
