import assert from 'node:assert/strict';
import request from 'supertest';
import { buildTestApp, type RunningApp, type TestApp } from '../support/build-app';
import {
  startOllamaSimulator,
  type OllamaSimulator,
  type SimulatorOptions,
} from '../support/ollama-simulator';
import type { ChatStream } from '../../services/ollama/types';

const MODEL = 'llama3.2:3b';
const OTHER = 'qwen3:8b';

type Body = { model?: string; name?: string; messages?: unknown[]; keep_alive?: unknown };
const bodyOf = (r: { body: unknown }): Body => (r.body ?? {}) as Body;

/** Generations a simulator received (chats with messages), by model. */
function generations(sim: OllamaSimulator, model?: string): number {
  return sim.requests.filter((r) => {
    const b = bodyOf(r);
    return (
      r.path === '/api/chat' &&
      (b.messages ?? []).length > 0 &&
      (model === undefined || b.model === model)
    );
  }).length;
}

/** Preloads (empty chats that keep the model) a simulator received for `model`. */
function preloads(sim: OllamaSimulator, model: string): number {
  return sim.requests.filter((r) => {
    const b = bodyOf(r);
    return (
      r.path === '/api/chat' &&
      (b.messages ?? []).length === 0 &&
      b.keep_alive !== 0 &&
      b.model === model
    );
  }).length;
}

/** Loads `model` on `sim` as another client would, then forgets the request. */
async function loadDirectly(sim: OllamaSimulator, model: string): Promise<void> {
  const res = await fetch(`${sim.url}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({ model, messages: [], stream: false }),
  });
  assert.equal(res.status, 200);
  await res.text();
  sim.reset();
}

/** Waits (turns of the event loop, no timers) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const say = (text: string) => ({ model: MODEL, messages: [{ role: 'user', content: text }] });

describe('several Ollama backends: routing, failover, discovery and fan-out', function () {
  this.timeout(60_000);
  let sims: OllamaSimulator[] = [];
  let t: TestApp | undefined;
  let running: RunningApp | undefined;

  const start = async (
    env: Record<string, string> = {},
    simOptions: SimulatorOptions = {},
  ): Promise<TestApp> => {
    sims = await Promise.all(
      [0, 1, 2].map(() => startOllamaSimulator({ maxLoadedModels: 1, ...simOptions })),
    );
    t = await buildTestApp({
      simulator: false,
      env: { OLLAMA_HOSTS: sims.map((s) => s.url).join(','), OLLAMA_MODEL: MODEL, ...env },
    });
    running = await t.listen();
    return t;
  };

  afterEach(async () => {
    await t?.close();
    t = undefined;
    running = undefined;
    await Promise.all(sims.map((s) => s.close()));
    sims = [];
  });

  it('sends a generation to the backend that has the model loaded', async () => {
    const app = await start();
    await loadDirectly(sims[2]!, MODEL);
    await loadDirectly(sims[0]!, OTHER);
    await app.ollamaHealth.refresh();
    for (let i = 0; i < 3; i += 1) {
      await request(running!.url)
        .post('/api/chat')
        .send({ ...say(`hello ${i}`), stream: false })
        .expect(200);
    }
    assert.deepEqual(
      sims.map((s) => generations(s)),
      [0, 0, 3],
    );
    assert.equal(sims[0]!.counts(MODEL).loads, 0, 'no other backend loaded the model');
    const metrics = await request(running!.url).get('/metrics').expect(200);
    assert.match(metrics.text, /ollama_route_total\{reason="loaded"\} 3/);
    assert.match(metrics.text, /ollama_backend_up\{backend="2"\} 1/);
    assert.doesNotMatch(metrics.text, /backend="http/);
  });

  it('retries on another backend a generation refused before its first byte', async () => {
    const app = await start({ OLLAMA_RETRY_MAX: '0' });
    // Backends 0 and 1 have the model loaded (so they are asked first); backend 2 does not.
    await loadDirectly(sims[0]!, MODEL);
    await loadDirectly(sims[1]!, MODEL);
    await app.ollamaHealth.refresh();
    // A backend is asked for the model by the gateway's load of it (an empty /api/chat: the
    // gateway's table has not seen the model answer there yet) or by the chat itself.
    const askedOf = (sim: OllamaSimulator) =>
      sim.requests.filter((r) => r.path === '/v1/chat/completions' || r.path === '/api/chat')
        .length;

    // Both answer 503 busy to the gateway's load: the third backend loads the model and answers.
    sims[0]!.failNext(1, 503, 'server busy');
    sims[1]!.failNext(1, 503, 'server busy');
    const ok = await request(running!.url)
      .post('/v1/chat/completions')
      .send({ ...say('busy on two'), stream: false });
    assert.equal(ok.status, 200);
    assert.deepEqual(sims.map(askedOf), [1, 1, 2], 'each backend asked once, the third loads');
    const metrics = await request(running!.url).get('/metrics').expect(200);
    assert.match(metrics.text, /ollama_route_total\{reason="failover"\} 2/);

    // All three refuse (the first two their load, the third, loaded now, the chat): each is
    // asked once, and the client gets the refusal.
    for (const sim of sims) {
      sim.reset();
      sim.failNext(1, 503, 'server busy');
    }
    const refused = await request(running!.url)
      .post('/v1/chat/completions')
      .send({ ...say('busy everywhere'), stream: false });
    assert.equal(refused.status, 503);
    assert.deepEqual(sims.map(askedOf), [1, 1, 1]);
  });

  it('spreads concurrent generations to the least loaded backends', async () => {
    const app = await start({ OLLAMA_MAX_CONCURRENCY: '2' }, { numParallel: 2 });
    for (const sim of sims) await loadDirectly(sim, MODEL);
    await app.ollamaHealth.refresh();
    const gates = sims.map((s) => s.hold());
    const streams: ChatStream[] = [];
    try {
      for (let i = 0; i < 6; i += 1) streams.push(await app.ollama.chatStream(say(`job ${i}`)));
      assert.deepEqual(
        sims.map((s) => generations(s)),
        [2, 2, 2],
      );
      const view = await request(running!.url).get('/ollama/health/detailed').expect(200);
      const backends = (view.body as { backends: Array<{ id: string; in_flight: number }> })
        .backends;
      assert.deepEqual(
        backends.map((b) => [b.id, b.in_flight]),
        [
          ['0', 2],
          ['1', 2],
          ['2', 2],
        ],
      );
      const metrics = await request(running!.url).get('/metrics').expect(200);
      assert.match(metrics.text, /ollama_backend_requests_running\{backend="1"\} 2/);
      assert.match(metrics.text, /ollama_backend_requests_waiting\{backend="1"\} 0/);
    } finally {
      for (const gate of gates) gate.release();
      for (const stream of streams) for await (const _ of stream);
    }
  });

  it('keeps every model step of one agent run on one backend', async () => {
    const app = await start();
    for (const sim of sims) {
      await loadDirectly(sim, MODEL);
      sim.script(
        MODEL,
        { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '6 * 7' } } }] },
        { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '6 * 8' } } }] },
        { content: 'It is 42 and 48.' },
      );
    }
    await app.ollamaHealth.refresh();
    const res = await request(running!.url)
      .post('/agents/run')
      .send({ input: 'What are 6*7 and 6*8?' })
      .expect(200);
    assert.equal((res.body as { status: string }).status, 'completed');
    const counts = sims.map((s) => generations(s));
    assert.deepEqual([...counts].sort(), [0, 0, 3], `steps per backend: ${counts.join(',')}`);
  });

  it('fails over when a backend stops mid-traffic, stays ready, and uses it again when it is back', async () => {
    const app = await start();
    for (const sim of sims) await loadDirectly(sim, MODEL);
    await app.startup.run();
    await app.ollamaHealth.refresh();
    await request(running!.url).get('/health/ready').expect(200);

    const wave = (n: number, tag: string) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          request(running!.url)
            .post('/agents/run')
            .send({ input: `${tag} ${i}` })
            .then((r) => r.status),
        ),
      );
    assert.deepEqual(await wave(6, 'before'), Array(6).fill(200));
    assert.ok(generations(sims[1]!) > 0, 'backend 1 served before it stopped');

    // Backend 1 goes away; the gateway has not noticed yet (no health check since).
    await sims[1]!.stop();
    for (const sim of sims) sim.reset();
    assert.deepEqual(await wave(9, 'during'), Array(9).fill(200), 'no run failed');
    assert.equal(generations(sims[1]!), 0);
    assert.equal(generations(sims[0]!) + generations(sims[2]!), 9);
    await app.ollamaHealth.refresh();
    const ready = await request(running!.url).get('/health/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    const detailed = await request(running!.url).get('/health/detailed').expect(200);
    const states = (
      detailed.body as { ollama: { backends: Array<{ id: string; state: string }> } }
    ).ollama.backends.map((b) => b.state);
    assert.deepEqual(states, ['up', 'down', 'up']);

    // Back again: once a health check saw it, it takes its share of the traffic.
    await sims[1]!.start();
    await app.ollamaHealth.refresh();
    for (const sim of sims) sim.reset();
    const gates = sims.map((s) => s.hold());
    const streams: ChatStream[] = [];
    for (let i = 0; i < 3; i += 1) streams.push(await app.ollama.chatStream(say(`after ${i}`)));
    assert.deepEqual(
      sims.map((s) => generations(s)),
      [1, 1, 1],
    );
    for (const gate of gates) gate.release();
    for (const stream of streams) for await (const _ of stream);
  });

  it('preloads on every backend that has the model on a switch, and pulls and deletes on all of them', async () => {
    await start();
    const url = running!.url;
    const switched = await request(url)
      .post('/ollama/model/switch')
      .send({ model: OTHER })
      .expect(200);
    assert.equal((switched.body as { active: string }).active, OTHER);
    assert.deepEqual(
      sims.map((s) => preloads(s, OTHER)),
      [1, 1, 1],
    );

    const pulled = await request(url)
      .post('/ollama/models/pull')
      .set('accept', 'application/x-ndjson')
      .send({ model: 'smollm2:135m' })
      .buffer(true)
      .parse((res, cb) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => cb(null, text));
      })
      .expect(200);
    const lines = (pulled.body as string)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as unknown) as Array<{
      backend?: string;
      status?: string;
    }>;
    for (const id of ['0', '1', '2']) {
      const own = lines.filter((l) => l.backend === id);
      assert.ok(own.length > 0, `progress lines for backend ${id}`);
      assert.equal(own[own.length - 1]!.status, 'success');
    }
    for (const sim of sims) {
      assert.equal(sim.requests.filter((r) => r.path === '/api/pull').length, 1);
    }

    await request(url).delete('/ollama/models/smollm2:135m').expect(204);
    for (const sim of sims) {
      assert.equal(sim.requests.filter((r) => r.path === '/api/delete').length, 1);
    }
    await t!.ollamaHealth.refresh();
    const models = await request(url).get('/ollama/models?refresh=true').expect(200);
    const listed = (
      models.body as {
        models: Array<{ name: string; backends?: { installed: string[]; loaded: string[] } }>;
      }
    ).models;
    assert.ok(!listed.some((m) => m.name.startsWith('smollm2')));
    const other = listed.find((m) => m.name === OTHER);
    assert.deepEqual(other?.backends, { installed: ['0', '1', '2'], loaded: ['0', '1', '2'] });
  });

  it('preloads on OLLAMA_MODEL_REPLICAS backends only', async () => {
    await start({ OLLAMA_MODEL_REPLICAS: '2' });
    await request(running!.url).post('/ollama/model/switch').send({ model: OTHER }).expect(200);
    assert.deepEqual(sims.map((s) => preloads(s, OTHER)).sort(), [0, 1, 1]);
    const metrics = await request(running!.url).get('/metrics').expect(200);
    const loads = [
      ...metrics.text.matchAll(/^ollama_backend_model_loads_total\{backend="\d"\} (\d+)$/gm),
    ];
    assert.equal(
      loads.reduce((n, m) => n + Number(m[1]), 0),
      2,
      'the two loads the gateway caused',
    );
  });
});

describe('backends discovered through DNS', function () {
  this.timeout(60_000);

  it('adds a backend when its address appears and drains it when it goes', async () => {
    const first = await startOllamaSimulator({ hostname: '127.0.0.2' });
    const second = await startOllamaSimulator({ hostname: '127.0.0.3', port: first.port });
    let addresses = ['127.0.0.2'];
    const asked: string[] = [];
    const t = await buildTestApp({
      simulator: false,
      env: {
        OLLAMA_DISCOVERY: `ollama-headless.test:${first.port}`,
        OLLAMA_DISCOVERY_INTERVAL_MS: '5000',
        OLLAMA_MODEL: MODEL,
      },
      resolveBackends: (name) => {
        asked.push(name);
        return Promise.resolve(addresses);
      },
    });
    /** Lets discovery run (one interval at a time) until `check` holds. */
    const discoverUntil = async (check: () => boolean, what: string): Promise<void> => {
      for (let round = 0; round < 5 && !check(); round += 1) {
        t.clock.advance(5000);
        for (let i = 0; i < 200 && !check(); i += 1) {
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      assert.ok(check(), `timed out waiting for ${what}`);
    };
    try {
      assert.deepEqual(t.ollama.backends(), [], 'no backend before the first resolution');
      t.ollamaHealth.start();
      await until(() => t.ollama.backends().length === 1, 'the first backend');
      assert.deepEqual(asked, ['ollama-headless.test']);
      // A backend that joins is warmed like a switch would: the active model preloaded there.
      await until(
        () => preloads(first, MODEL) === 1,
        'the active model preloaded on the new backend',
      );
      await t.ollamaHealth.refresh();
      await t.ollama.chat(say('to the first'));
      assert.equal(generations(first), 1);

      addresses = ['127.0.0.2', '127.0.0.3'];
      await discoverUntil(() => t.ollama.backends().length === 2, 'the second backend');
      await t.ollamaHealth.refresh();
      assert.deepEqual(
        t.ollama.backends().map((b) => [b.id, b.state]),
        [
          ['127.0.0.2', 'up'],
          ['127.0.0.3', 'up'],
        ],
      );
      const loadSeries = async () =>
        (await t.metrics.registry.metrics())
          .split('\n')
          .filter((l) => l.startsWith('ollama_backend_model_loads_total{'));
      assert.ok(
        (await loadSeries()).some((l) => l.includes('backend="127.0.0.2"')),
        'the warm-up load counted for the first backend',
      );

      // The first pod goes while one generation still runs there: it finishes, then the
      // backend is dropped; new work goes to the second.
      const gate = first.hold();
      const busy = await t.ollama.chatStream(say('still running'), {
        route: { backend: '127.0.0.2' },
      });
      addresses = ['127.0.0.3'];
      await discoverUntil(
        () => t.ollama.backends().some((b) => b.state === 'draining'),
        'the first backend draining',
      );
      await t.ollama.chat(say('to the second'));
      assert.equal(generations(second), 1);
      gate.release();
      let text = '';
      for await (const chunk of busy) text += chunk.message.content;
      assert.ok(text.length > 0, 'the draining backend finished its generation');
      await discoverUntil(() => t.ollama.backends().length === 1, 'the first backend removed');
      assert.deepEqual(
        t.ollama.backends().map((b) => b.id),
        ['127.0.0.3'],
      );
      assert.deepEqual(
        (await loadSeries()).filter((l) => l.includes('backend="127.0.0.2"')),
        [],
        'a removed backend leaves no series behind',
      );
    } finally {
      await t.close();
      await first.close();
      await second.close();
    }
  });

  /**
   * Two pods on 127.0.0.2 and .3 (one port), and two gateway replicas that discover them,
   * their DNS answering in opposite orders.
   */
  const twoReplicasOfTwoPods = async (env: Record<string, string> = {}) => {
    const a = await startOllamaSimulator({ hostname: '127.0.0.2' });
    const b = await startOllamaSimulator({ hostname: '127.0.0.3', port: a.port });
    const replica = (addresses: string[]) =>
      buildTestApp({
        simulator: false,
        env: { OLLAMA_DISCOVERY: `ollama-headless.test:${a.port}`, OLLAMA_MODEL: MODEL, ...env },
        resolveBackends: () => Promise.resolve(addresses),
      });
    const replicas = [
      await replica(['127.0.0.2', '127.0.0.3']),
      await replica(['127.0.0.3', '127.0.0.2']),
    ];
    return { a, b, replicas };
  };

  it('names each pod alike in every replica, whatever order DNS answers in', async () => {
    const { a, b, replicas } = await twoReplicasOfTwoPods();
    try {
      for (const r of replicas) {
        r.ollamaHealth.start();
        await until(() => r.ollama.backends().length === 2, 'both backends');
        await r.ollamaHealth.refresh();
      }
      // Which pod each id reaches, asked of each replica.
      const podOf = async (r: TestApp): Promise<Record<string, string>> => {
        const out: Record<string, string> = {};
        for (const { id } of r.ollama.backends()) {
          const before = [a, b].map((sim) => generations(sim));
          const stream = await r.ollama.chatStream(say(`to ${id}`), { route: { backend: id } });
          for await (const _ of stream) void _;
          const hit = [a, b].filter((sim, i) => generations(sim) > before[i]!);
          assert.equal(hit.length, 1);
          out[id] = hit[0]!.url;
        }
        return out;
      };
      const first = await podOf(replicas[0]!);
      assert.equal(Object.keys(first).length, 2);
      assert.deepEqual(await podOf(replicas[1]!), first);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await a.close();
      await b.close();
    }
  });

  it('preloads on the same OLLAMA_MODEL_REPLICAS pods from every replica', async () => {
    const { a, b, replicas } = await twoReplicasOfTwoPods({ OLLAMA_MODEL_REPLICAS: '1' });
    try {
      const chosen: string[][] = [];
      for (const r of replicas) {
        r.ollamaHealth.start();
        await until(() => r.ollama.backends().length === 2, 'both backends');
        await r.ollamaHealth.refresh();
        // Both pods idle with nothing loaded: a tie, which neither DNS order may decide.
        for (const sim of [a, b]) sim.reset();
        await r.ollama.preload(OTHER, '5m');
        chosen.push([a, b].filter((sim) => preloads(sim, OTHER) > 0).map((sim) => sim.url));
        for (const sim of [a, b]) {
          await fetch(`${sim.url}/api/chat`, {
            method: 'POST',
            body: JSON.stringify({ model: OTHER, messages: [], keep_alive: 0, stream: false }),
          }).then((res) => res.text());
        }
      }
      assert.equal(chosen[0]?.length, 1);
      assert.deepEqual(chosen[1], chosen[0]);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await a.close();
      await b.close();
    }
  });
});
