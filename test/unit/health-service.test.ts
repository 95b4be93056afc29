import assert from 'node:assert/strict';
import type { EventLoopMonitor, EventLoopStats } from '../../services/health/event-loop-monitor';
import { createHealthService, type HealthService } from '../../services/health/probes';
import { createRedisStatus, type RedisStatus } from '../../services/health/redis-status';
import type { OllamaHealthSnapshot } from '../../services/ollama/types';
import type { StartupState } from '../../services/health/startup';
import { createSchemaRegistry } from '../../src/validation';
import { assertMatchesSchema } from '../support/schema-assert';

/**
 * The aggregation rules only: which checks each probe runs, which failures are critical, and
 * the report shapes. The inputs are plain state objects; the integration tests drive the same
 * service with the real Ollama layer against the simulator.
 */
const schemas = createSchemaRegistry();

const UP: OllamaHealthSnapshot = {
  status: 'up',
  checkedAt: 1_000_000,
  latencyMs: 3,
  version: '0.12.6',
  loadedModels: [
    { name: 'llama3.2:3b', sizeBytes: 10, vramBytes: 10, expiresAt: '2030-01-01T00:00:00Z' },
  ],
  loadedModelsStale: false,
  installedModels: ['llama3.2:3b'],
  activeModelInstalled: true,
  lastError: null,
};

const DONE: StartupState = {
  done: true,
  phase: 'done',
  attempts: 1,
  steps: [{ name: 'wait_for_ollama', outcome: 'ok', duration_ms: 4 }],
  duration_ms: 12,
  last_error: null,
};

interface World {
  snapshot: OllamaHealthSnapshot;
  startup: StartupState;
  draining: boolean;
  circuit: 'closed' | 'half-open' | 'open';
  loop: EventLoopStats;
  now: number;
}

function build(overrides: Partial<World> = {}, requiresOllama = true, redis?: RedisStatus) {
  const world: World = {
    snapshot: UP,
    startup: DONE,
    draining: false,
    circuit: 'closed',
    loop: { p50Ms: 0.2, p99Ms: 1.5, maxMs: 3 },
    now: 1_002_500,
    ...overrides,
  };
  const eventLoop: EventLoopMonitor = {
    start: () => undefined,
    stop: () => undefined,
    stats: () => world.loop,
  };
  const health: HealthService = createHealthService({
    config: { READY_REQUIRES_OLLAMA: requiresOllama, LIVENESS_MAX_EVENT_LOOP_DELAY_MS: 500 },
    build: { name: 'gw', version: '1.2.3' },
    startedAt: 1_000_000 - 61_000,
    now: () => world.now,
    lifecycle: { isDraining: () => world.draining, openStreams: () => 2 },
    startup: { state: () => world.startup },
    ollamaHealth: { snapshot: () => world.snapshot },
    ollama: {
      circuitState: () => world.circuit,
      queueStats: () => ({ inFlight: 1, queued: 0, maxConcurrency: 4, maxQueue: 100 }),
    },
    models: { active: () => 'llama3.2:3b' },
    eventLoop,
    ...(redis ? { redis } : {}),
  });
  return { health, world };
}

const DOWN: OllamaHealthSnapshot = {
  ...UP,
  status: 'down',
  version: null,
  installedModels: null,
  activeModelInstalled: null,
  lastError: { code: 'OLLAMA_UNAVAILABLE', message: 'Ollama is not reachable.', at: 1_000_000 },
};

describe('the health service', () => {
  describe('when everything is fine', () => {
    it('passes every probe, each check timed, every answer matching its schema', () => {
      const { health } = build();
      const live = health.live();
      const ready = health.ready();
      const startup = health.startup();
      assert.equal(live.status, 'pass');
      assert.equal(ready.status, 'pass');
      assert.equal(startup.status, 'pass');
      assert.deepEqual(
        ready.checks.map((c) => c.name),
        ['startup', 'draining', 'ollama_reachable', 'active_model_installed', 'circuit'],
      );
      assert.deepEqual(ready.failing, []);
      for (const c of [...live.checks, ...ready.checks]) assert.ok(c.duration_ms >= 0);
      assert.match(ready.checks[2]!.reason, /0\.12\.6 up \(checked 2500 ms ago\)/);
      assertMatchesSchema(schemas, 'health-live.response', live);
      assertMatchesSchema(schemas, 'health-ready.response', ready);
      assertMatchesSchema(schemas, 'health-startup.response', startup);
    });

    it('details process facts, the Ollama state, circuit, queue and lifecycle', () => {
      const d = build().health.detailed();
      assertMatchesSchema(schemas, 'health-detailed.response', d);
      assert.equal(d.status, 'pass');
      assert.deepEqual(d.probes, { live: 'pass', ready: 'pass', startup: 'pass' });
      assert.equal(d.checks.length, 7);
      assert.equal(d.process.uptime_s, 63);
      assert.equal(d.process.node_version, process.version);
      assert.deepEqual(d.process.event_loop_delay_ms, { p50: 0.2, p99: 1.5, max: 3 });
      assert.equal(d.ollama.active_model, 'llama3.2:3b');
      assert.equal(d.ollama.checked_at, new Date(1_000_000).toISOString());
      assert.deepEqual(d.ollama.queue, {
        in_flight: 1,
        queued: 0,
        max_concurrency: 4,
        max_queue: 100,
      });
      assert.equal(d.ollama.loaded_models[0]?.size_bytes, 10);
      assert.deepEqual(d.lifecycle, { draining: false, open_streams: 2 });
    });
  });

  describe('readiness', () => {
    const rows: Array<{ when: string; world: Partial<World>; failing: string[]; reason: RegExp }> =
      [
        {
          when: 'startup is not done',
          world: {
            startup: {
              ...DONE,
              done: false,
              phase: 'wait_for_ollama',
              attempts: 3,
              duration_ms: null,
              last_error: { code: 'OLLAMA_UNAVAILABLE', message: 'refused' },
            },
          },
          failing: ['startup'],
          reason: /startup wait_for_ollama \(attempt 3\): OLLAMA_UNAVAILABLE refused/,
        },
        {
          when: 'the service is draining',
          world: { draining: true },
          failing: ['draining'],
          reason: /shutting down/,
        },
        {
          when: 'Ollama is down',
          world: { snapshot: DOWN },
          failing: ['ollama_reachable', 'active_model_installed'],
          reason: /Ollama unreachable: OLLAMA_UNAVAILABLE/,
        },
        {
          when: 'no Ollama check has finished yet',
          world: { snapshot: { ...DOWN, status: 'unknown', checkedAt: null, lastError: null } },
          failing: ['ollama_reachable', 'active_model_installed'],
          reason: /no Ollama check has finished yet/,
        },
        {
          when: 'the active model is missing',
          world: { snapshot: { ...UP, activeModelInstalled: false, installedModels: [] } },
          failing: ['active_model_installed'],
          reason: /llama3\.2:3b is not installed/,
        },
        {
          when: 'the circuit is open',
          world: { circuit: 'open' },
          failing: ['circuit'],
          reason: /circuit open/,
        },
      ];
    for (const row of rows) {
      it(`fails with the reason when ${row.when}`, () => {
        const ready = build(row.world).health.ready();
        assert.equal(ready.status, 'fail');
        assert.deepEqual(
          ready.failing.map((f) => f.name),
          row.failing,
        );
        assert.match(ready.failing[0]!.reason, row.reason);
        assert.ok(ready.failing.every((f) => f.critical));
        assertMatchesSchema(schemas, 'health-ready.response', ready);
      });
    }

    it('passes while the circuit is half-open (one trial request is allowed)', () => {
      assert.equal(build({ circuit: 'half-open' }).health.ready().status, 'pass');
    });

    describe('when READY_REQUIRES_OLLAMA is false', () => {
      it('warns (200) about an unreachable Ollama and an unfinished startup', () => {
        const { health } = build(
          { snapshot: DOWN, circuit: 'open', startup: { ...DONE, done: false, phase: 'pending' } },
          false,
        );
        const ready = health.ready();
        assert.equal(ready.status, 'warn');
        assert.deepEqual(
          ready.failing.map((f) => [f.name, f.critical]),
          [
            ['startup', false],
            ['ollama_reachable', false],
            ['active_model_installed', false],
            ['circuit', false],
          ],
        );
        assert.equal(health.startup().status, 'warn');
      });

      it('still fails while draining', () => {
        const ready = build({ draining: true, snapshot: DOWN }, false).health.ready();
        assert.equal(ready.status, 'fail');
        assert.deepEqual(
          ready.failing.filter((f) => f.critical).map((f) => f.name),
          ['draining'],
        );
      });
    });

    it('follows the state as it changes (it reads cached state on every call)', () => {
      const { health, world } = build();
      assert.equal(health.ready().status, 'pass');
      world.snapshot = DOWN;
      assert.equal(health.ready().status, 'fail');
      world.snapshot = UP;
      assert.equal(health.ready().status, 'pass');
    });
  });

  describe('liveness', () => {
    it('never looks at Ollama, startup or draining', () => {
      const { health } = build({
        snapshot: DOWN,
        circuit: 'open',
        draining: true,
        startup: { ...DONE, done: false, phase: 'pending' },
      });
      const live = health.live();
      assert.equal(live.status, 'pass');
      assert.deepEqual(
        live.checks.map((c) => c.name),
        ['event_loop', 'process'],
      );
    });

    it('fails when the event loop stalled beyond LIVENESS_MAX_EVENT_LOOP_DELAY_MS', () => {
      const live = build({ loop: { p50Ms: 1, p99Ms: 700, maxMs: 812 } }).health.live();
      assert.equal(live.status, 'fail');
      assert.deepEqual(live.failing, [
        { name: 'event_loop', critical: true, reason: 'event loop stalled 812 ms (limit 500 ms)' },
      ]);
      assertMatchesSchema(schemas, 'health-live.response', live);
    });

    it('fails for good once an unrecoverable state is recorded (the first reason stays)', () => {
      const { health } = build();
      health.markUnrecoverable('run store corrupted');
      health.markUnrecoverable('second');
      assert.deepEqual(health.live().failing, [
        { name: 'process', critical: true, reason: 'run store corrupted' },
      ]);
    });
  });

  describe('startup', () => {
    it('fails until the sequence is done and carries its state', () => {
      const { health, world } = build({
        startup: { ...DONE, done: false, phase: 'preload', duration_ms: null },
      });
      const before = health.startup();
      assert.equal(before.status, 'fail');
      assert.equal(before.startup.phase, 'preload');
      assertMatchesSchema(schemas, 'health-startup.response', before);
      world.startup = DONE;
      assert.equal(health.startup().status, 'pass');
    });
  });

  describe('with Redis (REDIS_URL)', () => {
    /** A connection's state as the status follows it: up or down, and its last error. */
    function connection() {
      let up = false;
      let listener: ((up: boolean) => void) | undefined;
      let error: { class: string; code: string | null } | null = null;
      return {
        isReady: () => up,
        onState: (l: (up: boolean) => void) => {
          listener = l;
          return () => (listener = undefined);
        },
        lastError: () => error,
        set(next: boolean, err: typeof error = error) {
          up = next;
          error = err;
          listener?.(next);
        },
      };
    }

    it('stays ready (warn) while Redis is down, and details since when and the error class', () => {
      const redis = connection();
      let now = Date.parse('2026-01-05T10:00:00Z');
      const status = createRedisStatus({ redis, now: () => now });
      const { health } = build({}, true, status);
      now += 5000;
      redis.set(false, { class: 'Error', code: 'ECONNREFUSED' });
      const ready = health.ready();
      assert.equal(ready.status, 'warn');
      assert.deepEqual(ready.failing, [
        {
          name: 'redis',
          critical: false,
          reason: 'redis down since 2026-01-05T10:00:05.000Z (last error ECONNREFUSED)',
        },
      ]);
      assertMatchesSchema(schemas, 'health-ready.response', ready);
      const detailed = health.detailed();
      assert.deepEqual(detailed.redis, {
        configured: true,
        status: 'down',
        since: '2026-01-05T10:00:05.000Z',
        last_error: { class: 'Error', code: 'ECONNREFUSED' },
      });
      assertMatchesSchema(schemas, 'health-detailed.response', detailed);

      now += 1000;
      redis.set(true);
      assert.equal(health.ready().status, 'pass');
      assert.equal(health.detailed().redis.since, '2026-01-05T10:00:06.000Z');
      status.stop();
      redis.set(false);
      assert.equal(health.detailed().redis.since, '2026-01-05T10:00:06.000Z');
    });

    it('says so when Redis is not configured, and runs no Redis check', () => {
      const { health } = build();
      assert.deepEqual(health.detailed().redis, { configured: false });
      assert.ok(!health.ready().checks.some((c) => c.name === 'redis'));
    });
  });
});
