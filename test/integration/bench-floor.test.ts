import assert from 'node:assert/strict';
import { startFloorServer, type ServiceProcess } from '../../bench/processes';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';

const MODEL = 'llama3.2:3b';
const CHAT = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

// `npm run bench:floor` reads the gateway's CPU against these servers: they must really pass the
// chat through, and `stack` must really run each concern it stands for.
describe('bench floor servers (bench/floor-server)', () => {
  let sim: OllamaSimulator;
  const servers: ServiceProcess[] = [];

  before(async () => {
    sim = await startOllamaSimulator({ chunksPerReply: 5, chunkLatencyMs: 0, loadDelayMs: 0 });
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await sim.close();
  });

  const start = async (level: string) => {
    const server = await startFloorServer(level, sim.url);
    servers.push(server);
    return server;
  };

  it("passes an answered chat through as the simulator's /v1 answers it", async () => {
    const direct = (await (await post(sim.url, CHAT)).json()) as Record<string, unknown>;
    const server = await start('express');
    const res = await post(server.url, CHAT);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, direct.model);
    assert.deepEqual(body.choices, direct.choices);
  });

  it('runs every concern at the stack level: id, headers, rate limit, validation', async () => {
    const server = await start('stack');
    const res = await post(server.url, CHAT);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(res.headers.get('ratelimit-policy'), 'express-rate-limit answered');
    assert.equal((await post(server.url, { model: MODEL })).status, 400);
  });
});
