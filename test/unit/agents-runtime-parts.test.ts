import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRunEvents, formatSse } from '../../services/agents/events';
import { bodyHash, canonicalJson, createIdempotencyStore } from '../../services/agents/idempotency';
import { createRepeatDetector, DEFAULT_LIMITS, resolveLimits } from '../../services/agents/limits';
import {
  AgentsFileError,
  createAgentRegistry,
  loadAgentsFile,
} from '../../services/agents/registry';
import { createRunIds, newRun } from '../../services/agents/run-object';
import { createRunHandle } from '../../services/agents/run-handle';
import { createRunStore, type RunRecord } from '../../services/agents/run-store';
import { checkAnswer } from '../../services/agents/structured-output';
import { decodeSecret, signWebhook, verifyWebhook } from '../../services/agents/webhooks';
import { createSchemaRegistry } from '../../src/validation';

describe('loop limits', () => {
  it('layers request over agent over defaults, keeping zeros', () => {
    const limits = resolveLimits({ max_steps: 3, max_tool_calls: 5 }, { max_tool_calls: 0 });
    assert.equal(limits.max_steps, 3);
    assert.equal(limits.max_tool_calls, 0);
    assert.equal(limits.timeout_ms, DEFAULT_LIMITS.timeout_ms);
  });

  it('trips on the (max+1)th identical call, whatever the key order', () => {
    const detector = createRepeatDetector(2);
    assert.equal(detector.record('calc', { a: 1, b: 2 }), false);
    assert.equal(detector.record('calc', { a: 2, b: 2 }), false);
    assert.equal(detector.record('other', { a: 1, b: 2 }), false);
    assert.equal(detector.record('calc', { b: 2, a: 1 }), false);
    assert.equal(detector.record('calc', { b: 2, a: 1 }), true);
  });
});

describe('run events', () => {
  it('numbers events from 1, replays after a sequence number and feeds subscribers', () => {
    const events = createRunEvents('run_x');
    const seen: number[] = [];
    events.emit('run.created');
    const stop = events.subscribe((e) => seen.push(e.seq));
    events.emit('run.in_progress');
    events.emit('message.delta', { text: 'hi' });
    stop();
    events.emit('run.completed');
    assert.deepEqual(seen, [2, 3]);
    assert.deepEqual(
      events.since(1).map((e) => e.seq),
      [2, 3, 4],
    );
    assert.deepEqual(events.since(4), []);
    assert.deepEqual(events.since(2)[0]?.data, { run_id: 'run_x', seq: 3, text: 'hi' });
    assert.equal(
      formatSse(events.since(3)[0]!),
      'id: 4\nevent: run.completed\ndata: {"run_id":"run_x","seq":4}\n\n',
    );
  });

  it('stops storing deltas past the bound but keeps every other event', () => {
    const events = createRunEvents('run_y', { maxStored: 2 });
    let live = 0;
    events.subscribe(() => (live += 1));
    for (let i = 0; i < 5; i += 1) events.emit('message.delta', { text: String(i) });
    events.emit('run.completed');
    assert.equal(live, 6);
    assert.equal(events.dropped, 3);
    assert.deepEqual(
      events.since(0).map((e) => e.seq),
      [1, 2, 6],
    );
  });
});

describe('run ids', () => {
  it('are run_ and 22 base62 characters, distinct across refills of the random pool', () => {
    const next = createRunIds();
    const ids = Array.from({ length: 1000 }, next);
    for (const id of ids) assert.match(id, /^run_[A-Za-z0-9]{22}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.notEqual(createRunIds()(), createRunIds()());
  });
});

describe('run store', () => {
  const record = (id: string, finishedAt: number | null): RunRecord => ({
    handle: createRunHandle({
      run: newRun({
        id,
        agent: { name: 'a', inline: false, config_hash: 'h' },
        model: 'm',
        createdAt: new Date(0).toISOString(),
        metadata: {},
        webhook: null,
      }),
      owner: 'anonymous',
      events: createRunEvents(id),
      controller: new AbortController(),
      done: new Promise(() => undefined),
      settled: Promise.resolve(),
    }),
    finishedAt,
  });

  it('expires finished runs after the TTL on the injected clock', () => {
    let now = 1000;
    const store = createRunStore({ max: 10, ttlMs: 500, now: () => now });
    store.add(record('run_done', 1000));
    store.add(record('run_busy', null));
    now = 1499;
    assert.ok(store.get('run_done'));
    now = 1500;
    assert.equal(store.get('run_done'), undefined);
    assert.ok(store.get('run_busy'), 'running runs never expire');
  });

  it('evicts the oldest finished run when full, and refuses when all are running', () => {
    const store = createRunStore({ max: 2, ttlMs: 60_000, now: () => 0 });
    store.add(record('run_a', 0));
    store.add(record('run_b', null));
    store.add(record('run_c', null));
    assert.equal(store.get('run_a'), undefined);
    assert.deepEqual(store.stats(), { kept: 2, running: 2 });
    assert.throws(
      () => store.add(record('run_d', null)),
      (e: { code?: string }) => e.code === 'TOO_MANY_RUNS',
    );
  });
});

describe('idempotency keys', () => {
  it('canonical hashing ignores key order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
    assert.equal(bodyHash({ x: 1, y: 2 }), bodyHash({ y: 2, x: 1 }));
  });

  it('returns the run for the same body, 409 for another, nothing after the TTL or for another owner', () => {
    let now = 0;
    const store = createIdempotencyStore({ ttlMs: 100, max: 10, now: () => now });
    store.remember('alice', 'k', 'h1', 'run_1');
    assert.equal(store.lookup('alice', 'k', 'h1'), 'run_1');
    assert.equal(store.lookup('bob', 'k', 'h1'), undefined);
    assert.throws(
      () => store.lookup('alice', 'k', 'h2'),
      (e: { code?: string }) => e.code === 'IDEMPOTENCY_CONFLICT',
    );
    now = 100;
    assert.equal(store.lookup('alice', 'k', 'h2'), undefined);
  });
});

describe('webhook signatures (Standard Webhooks)', () => {
  // The example from the Standard Webhooks reference libraries.
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const ts = 1614265330;
  const body = '{"test": 2432232314}';

  it('matches the reference signature', () => {
    assert.equal(
      signWebhook(secret, id, ts, body),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('verifies, and refuses a changed body, a wrong secret or a stale timestamp', () => {
    const signature = signWebhook(secret, id, ts, body);
    const headers = { id, timestamp: String(ts), signature: `v1,bogus ${signature}` };
    assert.equal(verifyWebhook(secret, headers, body, { nowS: ts + 10 }), true);
    assert.equal(verifyWebhook(secret, headers, `${body} `, { nowS: ts }), false);
    assert.equal(verifyWebhook('whsec_AAAA', headers, body, { nowS: ts }), false);
    assert.equal(verifyWebhook(secret, headers, body, { nowS: ts + 301 }), false);
  });

  it('uses a plain secret as its bytes', () => {
    assert.deepEqual(decodeSecret('plain'), Buffer.from('plain'));
  });
});

describe('structured answers', () => {
  const schemas = createSchemaRegistry();
  const validate = schemas.compile({
    type: 'object',
    required: ['n'],
    properties: { n: { type: 'integer' } },
  });

  it('accepts JSON, also inside a Markdown fence', () => {
    assert.deepEqual(checkAnswer('{"n": 1}', validate), { ok: true, value: { n: 1 } });
    assert.deepEqual(checkAnswer('```json\n{"n": 2}\n```', validate), {
      ok: true,
      value: { n: 2 },
    });
  });

  it('reports invalid JSON and schema mismatches', () => {
    const bad = checkAnswer('n = 1', validate);
    assert.equal(bad.ok, false);
    assert.match(JSON.stringify(bad), /is not valid JSON/);
    assert.deepEqual(checkAnswer('{"n": 1.5}', validate), {
      ok: false,
      problems: [{ in: 'output', path: '/n', message: 'must be integer' }],
    });
  });
});

describe('AGENTS_FILE', () => {
  const schemas = createSchemaRegistry();
  const dir = mkdtempSync(path.join(tmpdir(), 'agents-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const deps = {
    toolNames: ['calculator', 'current_time'],
    schemas,
    numCtx: { for: () => undefined, defaultModel: () => 'llama3.2:3b' },
  };

  it('loads YAML agents and keeps the built-in default', () => {
    const agents = loadAgentsFile(
      file(
        'ok.yaml',
        [
          'agents:',
          '  - name: math',
          '    description: Does sums',
          '    model: qwen3:8b',
          '    system: You compute.',
          '    tools: [calculator]',
          '    options: { temperature: 0.1 }',
          '    limits: { max_steps: 4 }',
        ].join('\n'),
      ),
      deps,
    );
    const registry = createAgentRegistry({ agents });
    assert.deepEqual(
      registry.list().map((a) => a.name),
      ['default', 'math'],
    );
    assert.equal(registry.get('math')?.limits?.max_steps, 4);
  });

  it('hands out one frozen copy of each agent: readers cannot change it, the file cannot either', () => {
    const agents = [{ name: 'math', system: 'You compute.', tools: ['calculator'] }];
    const registry = createAgentRegistry({ agents });
    const math = registry.get('math');
    assert.equal(registry.get('math'), math, 'no copy per read');
    assert.ok(math && Object.isFrozen(math) && Object.isFrozen(math.tools));
    assert.throws(() => (math.tools as string[]).push('current_time'), TypeError);
    agents[0]!.tools.push('current_time');
    assert.deepEqual(registry.get('math')?.tools, ['calculator'], 'copied when registered');
    assert.ok(Object.isFrozen(registry.get('default')?.tools));
    assert.equal(registry.list(), registry.list());
  });

  it('loads JSON too', () => {
    const agents = loadAgentsFile(file('ok.json', '{"agents":[{"name":"j","system":"x"}]}'), deps);
    assert.equal(agents[0]?.name, 'j');
  });

  it('stops with every problem named', () => {
    const bad = file(
      'bad.yaml',
      [
        'agents:',
        '  - name: Bad Name',
        '    limits: { max_steps: 999 }',
        '  - name: twice',
        '  - name: twice',
        '    tools: [shell]',
      ].join('\n'),
    );
    assert.throws(
      () => loadAgentsFile(bad, deps),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(err.message, /\/agents\/0\/name must match pattern/);
        assert.match(err.message, /\/agents\/0\/limits\/max_steps must be <= 50/);
        return true;
      },
    );
    const semantic = file(
      'sem.yaml',
      'agents:\n  - name: twice\n  - name: twice\n    tools: [shell]\n',
    );
    assert.throws(
      () => loadAgentsFile(semantic, deps),
      /defined twice[\s\S]*tool "shell" is not available/,
    );
    assert.throws(() => loadAgentsFile(file('syntax.yaml', 'agents: [\n'), deps), AgentsFileError);
    assert.throws(() => loadAgentsFile(path.join(dir, 'missing.yaml'), deps), /ENOENT/);
  });
});
