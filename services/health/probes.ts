/**
 * The one source of truth for every probe. Each check reads cached state only (the Ollama
 * health snapshot, the circuit, the startup and lifecycle state, the event-loop histogram), so
 * a probe answers in microseconds even while Ollama hangs, and a slow Ollama can never fail
 * liveness and cause a restart storm.
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '../../src/config';
import { createEventLoopMonitor, type EventLoopMonitor } from './event-loop-monitor';
import type { Lifecycle } from './lifecycle';
import type { ModelManager, OllamaHealth, OllamaService } from '../ollama';
import { ollamaHealthView, type OllamaFacts } from './ollama-view';
import type { RedisFacts, RedisStatus } from './redis-status';
import type { StartupSequence, StartupState } from './startup';

export interface BuildInfo {
  name: string;
  version: string;
}

export type CheckName =
  | 'event_loop'
  | 'process'
  | 'startup'
  | 'draining'
  | 'ollama_reachable'
  | 'active_model_installed'
  | 'circuit'
  | 'redis'
  | 'mcp_servers';

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  /** Whether this check failing fails the probe (Ollama checks are not when READY_REQUIRES_OLLAMA=false). */
  critical: boolean;
  /** What was observed: why it failed, or the fact that made it pass. */
  reason: string;
  /** Time spent evaluating the check, ms. */
  duration_ms: number;
}

/**
 * `pass`: every check ok; `warn`: only non-critical checks fail (still 200);
 * `fail`: a critical check fails (503).
 */
export type ProbeStatus = 'pass' | 'warn' | 'fail';

export interface ProbeReport {
  status: ProbeStatus;
  checks: CheckResult[];
  /** The failing checks, critical or not, with their reasons. */
  failing: Array<{ name: CheckName; critical: boolean; reason: string }>;
}

export interface StartupReport extends ProbeReport {
  startup: StartupState;
}

export interface DetailedReport {
  status: ProbeStatus;
  service: string;
  version: string;
  checks: CheckResult[];
  probes: { live: ProbeStatus; ready: ProbeStatus; startup: ProbeStatus };
  process: {
    uptime_s: number;
    node_version: string;
    pid: number;
    rss_bytes: number;
    heap_used_bytes: number;
    heap_total_bytes: number;
    event_loop_delay_ms: { p50: number; p99: number; max: number };
  };
  ollama: OllamaFacts;
  redis: RedisFacts;
  startup: StartupState;
  lifecycle: { draining: boolean; open_streams: number };
}

export interface HealthService {
  /** Starts the event-loop monitor (its timer is unref'd). */
  start(): void;
  stop(): void;
  /** Liveness: the process only (event loop, unrecoverable state); never Ollama. */
  live(): ProbeReport;
  /** Readiness: startup done, not draining, Ollama reachable, active model installed, circuit not open. */
  ready(): ProbeReport;
  /** Startup: the warm-up sequence finished. */
  startup(): StartupReport;
  /** Every check with its timing and the facts behind them. */
  detailed(): DetailedReport;
  /** Records a state the process cannot recover from; liveness fails from then on. */
  markUnrecoverable(reason: string): void;
}

export interface HealthServiceOptions {
  config: Pick<Config, 'READY_REQUIRES_OLLAMA' | 'LIVENESS_MAX_EVENT_LOOP_DELAY_MS'>;
  build: BuildInfo;
  /** Process start, ms since the epoch. */
  startedAt: number;
  /** Wall clock, ms; injected by tests. */
  now: () => number;
  lifecycle: Pick<Lifecycle, 'isDraining' | 'openStreams'>;
  startup: Pick<StartupSequence, 'state'>;
  ollamaHealth: Pick<OllamaHealth, 'snapshot'>;
  ollama: Pick<OllamaService, 'circuitState' | 'queueStats' | 'backends'>;
  models: Pick<ModelManager, 'active'>;
  /**
   * The Redis connection's state, with REDIS_URL: a non-critical readiness check (a Redis
   * outage must not take every replica out of the Service) and a part of the detailed report.
   */
  redis?: RedisStatus;
  /** Default: `perf_hooks.monitorEventLoopDelay` in rolling windows. */
  eventLoop?: EventLoopMonitor;
  /** Monotonic clock for check timings, ms (default performance.now). */
  clock?: () => number;
  /**
   * The MCP tool servers' state: shown in /health/detailed as a non-critical check (a server
   * that is down is a warning, never a failed probe).
   */
  mcp?: () => ReadonlyArray<{ name: string; up: boolean; error: string | null }>;
}

type Evaluation = { ok: boolean; reason: string };

/** Builds the health service. Starts nothing until `start()`. */
export function createHealthService(options: HealthServiceOptions): HealthService {
  const { config, build, startedAt, now, lifecycle, startup, ollamaHealth, ollama, models } =
    options;
  const eventLoop = options.eventLoop ?? createEventLoopMonitor();
  const clock = options.clock ?? (() => performance.now());
  const requiresOllama = config.READY_REQUIRES_OLLAMA;
  let unrecoverable: string | null = null;

  const run = (name: CheckName, critical: boolean, evaluate: () => Evaluation): CheckResult => {
    const t0 = clock();
    const { ok, reason } = evaluate();
    const duration = Math.round((clock() - t0) * 1000) / 1000;
    return { name, ok, critical, reason, duration_ms: duration };
  };

  const evaluations: Record<CheckName, () => Evaluation> = {
    event_loop: () => {
      const { maxMs } = eventLoop.stats();
      const limit = config.LIVENESS_MAX_EVENT_LOOP_DELAY_MS;
      return maxMs > limit
        ? { ok: false, reason: `event loop stalled ${Math.round(maxMs)} ms (limit ${limit} ms)` }
        : { ok: true, reason: `max delay ${Math.round(maxMs)} ms (limit ${limit} ms)` };
    },
    process: () =>
      unrecoverable === null
        ? { ok: true, reason: 'no unrecoverable state' }
        : { ok: false, reason: unrecoverable },
    startup: () => {
      const s = startup.state();
      if (s.done) return { ok: true, reason: `startup completed in ${s.duration_ms ?? 0} ms` };
      const why = s.last_error ? `: ${s.last_error.code} ${s.last_error.message}` : '';
      return { ok: false, reason: `startup ${s.phase} (attempt ${s.attempts})${why}` };
    },
    draining: () =>
      lifecycle.isDraining()
        ? { ok: false, reason: 'shutting down: draining in-flight requests' }
        : { ok: true, reason: 'not draining' },
    ollama_reachable: () => {
      const snap = ollamaHealth.snapshot();
      const age = snap.checkedAt === null ? '' : ` (checked ${now() - snap.checkedAt} ms ago)`;
      if (snap.status === 'up')
        return { ok: true, reason: `Ollama ${snap.version ?? '?'} up${age}` };
      if (snap.status === 'unknown')
        return { ok: false, reason: 'no Ollama check has finished yet' };
      const why = snap.lastError ? `${snap.lastError.code}: ${snap.lastError.message}` : 'down';
      return { ok: false, reason: `Ollama unreachable: ${why}${age}` };
    },
    active_model_installed: () => {
      const model = models.active();
      const installed = ollamaHealth.snapshot().activeModelInstalled;
      if (installed === true) return { ok: true, reason: `${model} is installed` };
      if (installed === false) return { ok: false, reason: `${model} is not installed in Ollama` };
      return { ok: false, reason: `unknown whether ${model} is installed (Ollama not checked)` };
    },
    redis: () => {
      const facts = options.redis?.facts();
      if (!facts?.configured) return { ok: true, reason: 'not configured' };
      const error = facts.last_error
        ? ` (last error ${facts.last_error.code ?? facts.last_error.class})`
        : '';
      return facts.status === 'up'
        ? { ok: true, reason: `redis up since ${facts.since ?? '?'}` }
        : { ok: false, reason: `redis down since ${facts.since ?? '?'}${error}` };
    },
    mcp_servers: () => {
      const servers = options.mcp?.() ?? [];
      const down = servers.filter((s) => !s.up);
      if (down.length === 0) return { ok: true, reason: `${servers.length} MCP server(s) up` };
      return {
        ok: false,
        reason: `MCP server(s) down, their tools unavailable: ${down
          .map((s) => `${s.name} (${s.error ?? 'down'})`)
          .join('; ')}`,
      };
    },
    circuit: () => {
      const state = ollama.circuitState();
      return state === 'open'
        ? { ok: false, reason: 'circuit open: Ollama calls are failing fast' }
        : { ok: true, reason: `circuit ${state}` };
    },
  };

  const critical = (name: CheckName): boolean =>
    name !== 'redis' &&
    (requiresOllama ||
      (name !== 'startup' &&
        name !== 'ollama_reachable' &&
        name !== 'active_model_installed' &&
        name !== 'circuit'));

  const probe = (names: readonly CheckName[]): ProbeReport => {
    const checks = names.map((name) => run(name, critical(name), evaluations[name]));
    return summarize(checks);
  };

  const LIVE: readonly CheckName[] = ['event_loop', 'process'];
  const READY: readonly CheckName[] = [
    'startup',
    'draining',
    'ollama_reachable',
    'active_model_installed',
    'circuit',
    ...(options.redis ? (['redis'] as const) : []),
  ];

  const ollamaFacts = (): OllamaFacts =>
    ollamaHealthView({ snapshot: ollamaHealth.snapshot(), ollama, activeModel: models.active() });

  return {
    start: () => eventLoop.start(),
    stop: () => eventLoop.stop(),
    live: () => probe(LIVE),
    ready: () => probe(READY),
    startup: () => ({ ...probe(['startup']), startup: startup.state() }),
    detailed() {
      const live = probe(LIVE);
      const ready = probe(READY);
      const started = probe(['startup']);
      const checks = [...live.checks, ...ready.checks];
      // Only a gateway with MCP servers shows the check.
      if ((options.mcp?.() ?? []).length > 0) {
        checks.push(run('mcp_servers', false, evaluations.mcp_servers));
      }
      const loop = eventLoop.stats();
      const memory = process.memoryUsage();
      const round = (ms: number): number => Math.round(ms * 100) / 100;
      return {
        status: summarize(checks).status,
        service: build.name,
        version: build.version,
        checks,
        probes: { live: live.status, ready: ready.status, startup: started.status },
        process: {
          uptime_s: Math.floor((now() - startedAt) / 1000),
          node_version: process.version,
          pid: process.pid,
          rss_bytes: memory.rss,
          heap_used_bytes: memory.heapUsed,
          heap_total_bytes: memory.heapTotal,
          event_loop_delay_ms: {
            p50: round(loop.p50Ms),
            p99: round(loop.p99Ms),
            max: round(loop.maxMs),
          },
        },
        ollama: ollamaFacts(),
        redis: options.redis?.facts() ?? { configured: false },
        startup: startup.state(),
        lifecycle: { draining: lifecycle.isDraining(), open_streams: lifecycle.openStreams() },
      };
    },
    markUnrecoverable(reason) {
      unrecoverable ??= reason;
    },
  };
}

/** The probe status from its checks: any critical failure fails it. */
export function summarize(checks: CheckResult[]): ProbeReport {
  const failing = checks
    .filter((c) => !c.ok)
    .map((c) => ({ name: c.name, critical: c.critical, reason: c.reason }));
  const status: ProbeStatus = failing.some((f) => f.critical)
    ? 'fail'
    : failing.length > 0
      ? 'warn'
      : 'pass';
  return { status, checks, failing };
}
