import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createRequestContextStore } from '../../src/request-context';
import type { ModelService } from '../../services/models/model-service';
import type { OllamaClient } from '../../services/ollama/client';
import type { OllamaHealth } from '../../services/ollama/types';
import type { BackendSet } from '../../services/ollama/backends';
import type { Resolver } from '../../services/ollama/discovery';
import type { Telemetry } from '../../services/metrics/telemetry';
import type { ToolDefinition } from '../../services/tools/types';
import type { AgentsRuntime } from '../../services/agents/runtime';
import type { IdempotencyRepository } from '../../services/agents/idempotency';
import type { RunRepository } from '../../services/agents/run-repository';
import type { HealthService } from '../../services/health/probes';
import type { Lifecycle } from '../../services/health/lifecycle';
import type { Metrics } from '../../services/metrics/metrics';
import type { StartupSequence } from '../../services/health/startup';
import { createApp, type AppDeps } from '../../src/app';
import { composeGateway, type ComposeOptions } from '../../src/compose';
import { createSystemClock } from '../../src/clock';
import { loadConfig, type Config } from '../../src/config';
import { createHttpServer } from '../../src/http-server';
import { createLogger } from '../../src/logger';
import { createSchemaRegistry, type SchemaRegistry } from '../../src/validation';
import { createManualClock, type ManualClock } from './manual-clock';
import {
  startOllamaSimulator,
  type OllamaSimulator,
  type SimulatorOptions,
} from './ollama-simulator';

export interface TestAppOptions {
  /** Environment on top of the test defaults (LOG_LEVEL=silent, OLLAMA_HOST=the simulator). */
  env?: Record<string, string>;
  /**
   * The simulator to talk to. Default: a new one (options allowed), closed by `close()`.
   * `false`: none (then give OLLAMA_HOST in `env`, e.g. a closed port to test "Ollama down").
   */
  simulator?: OllamaSimulator | SimulatorOptions | false;
  /** What the services report to; default: the app's own metrics (scrape /metrics to see them). */
  telemetry?: Telemetry;
  /** The wall clock (default Date.now); the timers are the manual clock's either way. */
  now?: () => number;
  /** Tools the agents runtime has beyond the built-in ones. */
  extraTools?: readonly ToolDefinition[];
  /** Node process metrics in the app's registry (default off: faster scrapes). */
  defaultMetrics?: boolean;
  /** The run repository, shared by apps that play replicas of one gateway. */
  runs?: RunRepository;
  /** The Idempotency-Key repository (default: in memory). */
  idempotency?: IdempotencyRepository;
  /** Replaces any collaborator of createApp after the defaults are built. */
  deps?: Partial<AppDeps>;
  /** The API keys (e.g. entries of a YAML key file, or a reloading store); default API_KEYS. */
  apiKeys?: ComposeOptions['apiKeys'];
  /** The resolver behind OLLAMA_DISCOVERY (default node:dns/promises). */
  resolveBackends?: Resolver;
}

/** The app on a real socket with the production server settings (createHttpServer). */
export interface RunningApp {
  url: string;
  port: number;
  server: http.Server;
  /** A keep-alive agent for this server: many requests, few connections. */
  agent: http.Agent;
  close(): Promise<void>;
}

export interface TestApp {
  app: Express;
  config: Readonly<Config>;
  deps: AppDeps;
  schemas: SchemaRegistry;
  metrics: Metrics;
  /** The simulator in use (undefined with `simulator: false`). */
  sim: OllamaSimulator | undefined;
  ollama: OllamaClient & Pick<BackendSet, 'backends'>;
  ollamaHealth: OllamaHealth;
  models: ModelService;
  agents: AgentsRuntime;
  /**
   * Every service's clock: deadlines, heartbeats and the health refresh fire only when the test
   * moves it (`clock.advance(ms)`, `clock.fireNext()`). Retry waits are real (a few ms in tests).
   */
  clock: ManualClock;
  lifecycle: Lifecycle;
  startup: StartupSequence;
  health: HealthService;
  /** Listens on 127.0.0.1 port 0; `close()` closes it too. */
  listen(): Promise<RunningApp>;
  /** Cancels runs, closes listeners, stops timers, the connection pool and the own simulator. */
  close(): Promise<void>;
}

/**
 * THE way to build the whole gateway in a test: the same composeGateway as server.ts (metrics,
 * the Ollama stack, the agents runtime, lifecycle, startup and probes), against a fresh
 * simulator on port 0, with hand-fired agent timers. Nothing is started (no health timer, no
 * warm-up): a test starts what it exercises.
 */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const given = options.simulator;
  const own = given === undefined || (given !== false && !('url' in given));
  const sim =
    options.simulator === false
      ? undefined
      : own
        ? await startOllamaSimulator((options.simulator as SimulatorOptions | undefined) ?? {})
        : (options.simulator as OllamaSimulator);
  const schemas = createSchemaRegistry();
  const config = loadConfig(
    {
      LOG_LEVEL: 'silent',
      NODE_ENV: 'test',
      ...(sim ? { OLLAMA_HOST: sim.url } : {}),
      ...options.env,
    },
    schemas,
  );
  const context = createRequestContextStore();
  const logger = createLogger({ level: config.LOG_LEVEL, format: 'json', context });
  const clock = createManualClock({ now: options.now ?? Date.now });
  const gateway = composeGateway({
    config,
    schemas,
    logger,
    context,
    build: { name: 'ollama-agent-gateway', version: '0.0.0-test' },
    clock: { ...clock, sleep: createSystemClock().sleep },
    defaultMetrics: options.defaultMetrics ?? false,
    telemetry: options.telemetry,
    extraTools: options.extraTools,
    webhookRetryDelayMs: () => 0,
    ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
    ...(options.resolveBackends ? { resolveBackends: options.resolveBackends } : {}),
    ...(options.runs ? { runs: options.runs } : {}),
    ...(options.idempotency ? { idempotency: options.idempotency } : {}),
  });
  const { metrics, ollamaStack: stack, agents, lifecycle, startup, health } = gateway;
  const deps: AppDeps = { ...gateway.deps, ...options.deps };
  const app = createApp(deps);
  const listeners: RunningApp[] = [];
  return {
    app,
    config,
    deps,
    schemas,
    metrics,
    sim,
    ollama: stack.ollama,
    ollamaHealth: stack.ollamaHealth,
    models: stack.models,
    agents,
    clock,
    lifecycle,
    startup,
    health,
    async listen() {
      const running = await listen(app, config);
      listeners.push(running);
      return running;
    },
    async close() {
      await Promise.all(listeners.splice(0).map((l) => l.close()));
      await gateway.stop();
      if (own && sim) await sim.close();
    },
  };
}

/**
 * Listens on port 0 with the real HTTP server settings (createHttpServer; default config unless
 * given); `close()` also ends kept-alive connections.
 */
export async function listen(
  app: Express,
  config: Readonly<Config> = loadConfig({ LOG_LEVEL: 'silent' }),
): Promise<RunningApp> {
  const server = createHttpServer(app, config, createLogger({ level: 'silent', format: 'json' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    agent,
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * For suites that build an app per test: `const apps = testApps(); afterEach(apps.closeAll)`,
 * then `await apps.build({ env })` (or just its Express app: `await apps.app(env)`) in each test.
 */
export function testApps(): {
  build(options?: TestAppOptions): Promise<TestApp>;
  app(env?: Record<string, string>, deps?: Partial<AppDeps>): Promise<Express>;
  closeAll(): Promise<void>;
} {
  const open: TestApp[] = [];
  const build = async (options?: TestAppOptions): Promise<TestApp> => {
    const t = await buildTestApp(options);
    open.push(t);
    return t;
  };
  return {
    build,
    app: async (env = {}, deps = {}) => (await build({ env, deps })).app,
    async closeAll() {
      await Promise.all(open.splice(0).map((t) => t.close()));
    },
  };
}

/**
 * Every collaborator of an app, composed as production composes them but never started (no
 * timers, no connection opened until a request needs one): for tests that build the app
 * themselves around one part (a logger, a metrics registry).
 */
export function composeAppDeps(options: {
  config: Readonly<Config>;
  schemas: SchemaRegistry;
  logger: ComposeOptions['logger'];
  context: ComposeOptions['context'];
  build: ComposeOptions['build'];
}): AppDeps {
  const clock = createManualClock();
  return composeGateway({
    ...options,
    clock: { ...clock, sleep: createSystemClock().sleep },
    defaultMetrics: false,
  }).deps;
}
