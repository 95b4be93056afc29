import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentRun } from '../../services/agents/types';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startRedis, stopRedis } from '../support/redis-server';
import { openSse, type SseClient } from '../support/sse-client';
import { startServerProcess, type ServerProcess } from '../support/server-process';

const LEASE_MS = 1000;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

/** A webhook receiver that keeps every delivery's body. */
async function startReceiver(): Promise<{ url: string; bodies: string[]; server: Server }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, server };
}

const post = (server: ServerProcess, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/agents/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

const getRun = (server: ServerProcess, id: string) => fetch(`${server.url}/agents/runs/${id}`);

/** Polls until `check` holds; every try is a request, and the test's timeout bounds it. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
}

async function metric(server: ServerProcess, line: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(' ')[1]) : 0;
}

const hasEvent = (sse: SseClient, type: string) => () => sse.raw.includes(`event: ${type}\n`);

describe('runs shared by gateway processes through Redis (real redis-server)', function () {
  this.timeout(60_000);
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  const servers: ServerProcess[] = [];

  // One cluster for both cases (starting gateway processes is the slow part): the second case
  // goes on with the replicas the first one left running.
  after(async () => {
    for (const server of servers.splice(0)) server.kill();
    await sim?.close();
    receiver?.server.close();
    if (redis) await stopRedis(redis);
    redis = undefined;
  });

  async function cluster(count: number) {
    const port = await freePort();
    redis = await startRedis(port);
    sim = await startOllamaSimulator();
    receiver = await startReceiver();
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_PRELOAD: 'false',
      REDIS_URL: `redis://127.0.0.1:${port}`,
      RUN_LEASE_MS: String(LEASE_MS),
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOWLIST: '127.0.0.1',
    };
    const started = await Promise.all(Array.from({ length: count }, () => startServerProcess(env)));
    servers.push(...started);
    for (const server of started) {
      await server.waitForLine((l) => l.message === 'startup complete');
      await server.waitForLine((l) => l.message === 'redis connected');
    }
    return { port, servers: started, sim, receiver: receiver };
  }
  let shared: Awaited<ReturnType<typeof cluster>> | undefined;
  before(async function () {
    this.timeout(60_000);
    shared = await cluster(3);
  });

  it('reads, replays, follows and cancels through B the runs A executes; one run per Idempotency-Key; a killed replica’s run ends interrupted with one webhook', async () => {
    assert.ok(shared);
    const {
      servers: [a, b, c],
      sim,
      receiver,
    } = shared;
    assert.ok(a && b && c);

    // A background run on A, held by the simulator after its first chunk.
    let gate = sim.hold();
    let chunk = sim.waitFor('chunk');
    const created = await post(a, { input: 'background on A', background: true });
    assert.equal(created.status, 202);
    const id = ((await created.json()) as AgentRun).id;
    await chunk;

    // B reads it as A keeps it, and replays its events after Last-Event-ID, then follows live.
    await until(
      async () => ((await (await getRun(b, id)).json()) as AgentRun).status === 'in_progress',
    );
    const events = await openSse(`${b.url}/agents/runs/${id}/events`, {
      headers: { 'last-event-id': '1' },
    });
    assert.equal(events.status, 200);
    await events.until((raw) => raw.includes('event: run.in_progress'));
    assert.ok(!events.raw.includes('event: run.created'), 'replayed after Last-Event-ID 1');
    assert.match(events.raw, /^id: 2\n/m);

    // Cancelled through B: A aborts its Ollama request, and B's follower gets the terminal event.
    const aborted = sim.waitFor('aborted');
    const cancelled = await fetch(`${b.url}/agents/runs/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.equal(((await cancelled.json()) as AgentRun).status, 'cancelled');
    await aborted;
    await events.until(hasEvent(events, 'run.cancelled'));
    await events.ended;
    gate.release();
    assert.equal(await metric(b, 'agent_run_remote_cancels_total{direction="sent"}'), 1);
    assert.equal(await metric(a, 'agent_run_remote_cancels_total{direction="received"}'), 1);

    // A streamed run on A, followed live through B from its first event.
    gate = sim.hold();
    const stream = await openSse(`${a.url}/agents/run`, {
      method: 'POST',
      body: { input: 'streamed on A', stream: true },
    });
    await stream.until(hasEvent(stream, 'message.delta'));
    const streamId = String(stream.headers['x-run-id']);
    const follower = await openSse(`${b.url}/agents/runs/${streamId}/events`);
    await follower.until(hasEvent(follower, 'message.delta'));
    gate.release();
    await follower.until(hasEvent(follower, 'run.completed'));
    // A's own stream may still be delivering its last events when B's has ended.
    await Promise.all([follower.ended, stream.ended]);
    assert.deepEqual(
      follower.events().map((e) => e.event),
      stream.events().map((e) => e.event),
      'B saw every event A streamed, in order',
    );

    // An answered run on A (no key, no wait: Redis gets it whole with its end, not before it
    // starts): B reads it, and its events, as soon as A has answered.
    const answered = await post(a, { input: 'answered on A' });
    assert.equal(answered.status, 200);
    const answeredRun = (await answered.json()) as AgentRun;
    assert.equal(answeredRun.status, 'completed');
    const seenOnB = await getRun(b, answeredRun.id);
    assert.equal(seenOnB.status, 200);
    assert.deepEqual(await seenOnB.json(), answeredRun);
    const replay = await openSse(`${b.url}/agents/runs/${answeredRun.id}/events`);
    await replay.ended;
    const replayed = replay.events().map((e) => e.event);
    assert.equal(replayed[0], 'run.created');
    assert.equal(replayed.at(-1), 'run.completed');

    // The same Idempotency-Key on A then B: one run; another body with it: 409.
    const body = { input: 'once', background: true };
    const key = { 'idempotency-key': `key-${randomBytes(4).toString('hex')}` };
    const first = await post(a, body, key);
    const again = await post(b, body, key);
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotency-replayed'), 'true');
    assert.equal(((await again.json()) as AgentRun).id, ((await first.json()) as AgentRun).id);
    const conflict = await post(b, { ...body, input: 'other' }, key);
    assert.equal(conflict.status, 409);
    assert.equal(
      ((await conflict.json()) as { error: { code: string } }).error.code,
      'IDEMPOTENCY_CONFLICT',
    );

    // A webhook run on C; C is killed mid-run. Another replica ends it interrupted within the
    // lease (plus a second), its followers get the terminal event, and the webhook fires once.
    gate = sim.hold();
    chunk = sim.waitFor('chunk');
    const hooked = await post(c, {
      input: 'webhook on C',
      webhook: { url: receiver.url, events: ['run.completed', 'run.failed'] },
    });
    assert.equal(hooked.status, 202);
    const hookedId = ((await hooked.json()) as AgentRun).id;
    await chunk;
    const watcher = await openSse(`${b.url}/agents/runs/${hookedId}/events`);
    await watcher.until(hasEvent(watcher, 'run.in_progress'));
    const killedAt = Date.now();
    c.kill();
    await watcher.until(hasEvent(watcher, 'run.failed'));
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs <= LEASE_MS + 1000, `ended ${tookMs} ms after the kill`);
    gate.release();
    // The terminal event goes out before the status is written (a run that reads as ended has
    // its terminal event): a GET right after the event may still read it running, briefly.
    let ended = (await (await getRun(a, hookedId)).json()) as AgentRun;
    await until(async () => {
      ended = (await (await getRun(a, hookedId)).json()) as AgentRun;
      return ended.status !== 'in_progress';
    });
    assert.equal(ended.status, 'failed');
    assert.deepEqual(
      { code: ended.error?.code, retryable: ended.error?.retryable },
      { code: 'interrupted', retryable: true },
    );
    await until(async () => receiver.bodies.length > 0);
    await until(
      async () =>
        ((await (await getRun(b, hookedId)).json()) as AgentRun).webhook?.last_delivery_status ===
        'delivered',
    );
    const takeovers =
      (await metric(a, 'agent_run_takeovers_total')) +
      (await metric(b, 'agent_run_takeovers_total'));
    assert.equal(takeovers, 1);
    assert.equal(receiver.bodies.length, 1);
    assert.equal((JSON.parse(receiver.bodies[0] ?? '{}') as { type?: string }).type, 'run.failed');
  });

  it('keeps answered and streamed runs going while Redis is down, refuses background runs with 503, and recovers when it returns', async () => {
    assert.ok(shared);
    const {
      port,
      servers: [a, b],
    } = shared;
    assert.ok(a && b);
    assert.ok(redis);
    await stopRedis(redis);
    await a.waitForLine((l) => l.message === 'redis unreachable; retrying in the background');

    const answered = await post(a, { input: 'answered while Redis is down' });
    assert.equal(answered.status, 200);
    const answeredRun = (await answered.json()) as AgentRun;
    assert.equal(answeredRun.status, 'completed');
    const stream = await openSse(`${a.url}/agents/run`, {
      method: 'POST',
      body: { input: 'streamed while Redis is down', stream: true },
    });
    await stream.ended;
    assert.ok(hasEvent(stream, 'run.completed')());

    const background = await post(a, { input: 'background', background: true });
    assert.equal(background.status, 503);
    assert.equal(
      ((await background.json()) as { error: { code: string } }).error.code,
      'REDIS_UNAVAILABLE',
    );
    // A run only Redis could know: 503, not a wrong 404.
    const unknown = await getRun(b, answeredRun.id);
    assert.equal(unknown.status, 503);
    // A run A executed is still answered by A from its own copy.
    assert.equal((await getRun(a, answeredRun.id)).status, 200);

    redis = await startRedis(port);
    await a.waitForLine((l) => l.message === 'redis reconnected');
    // A writes the runs of the outage when Redis returns: B reads them.
    await until(async () => (await getRun(b, answeredRun.id)).status === 200);
    assert.equal(
      ((await (await getRun(b, answeredRun.id)).json()) as AgentRun).status,
      'completed',
    );
    const after = await post(a, { input: 'background again', background: true });
    assert.equal(after.status, 202);
    const afterId = ((await after.json()) as AgentRun).id;
    assert.equal((await getRun(b, afterId)).status, 200);
  });
});
