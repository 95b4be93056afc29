import type { Express } from 'express';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../../middleware/request-context';
import { createAgentsRuntime, type AgentsRuntime } from '../../services/agents/runtime';
import type { ModelService } from '../../services/models';
import type { OllamaClient } from '../../services/ollama-client';
import type { Schedule } from '../../services/ollama-health';
import type { OllamaHealth } from '../../services/ollama-types';
import { createMetrics, type Metrics } from '../../services/metrics';
import type { Telemetry } from '../../services/telemetry';
import { createApp, type AppDeps } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildOllamaStack } from '../../src/ollama-stack';
import { createSchemaRegistry } from '../../src/validation';
import { createManualTimers, type ManualTimers } from './manual-timers';
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
  now?: () => number;
  /** The health refresh timer (default: a real unref'd one, not started). */
  schedule?: Schedule;
  /**
   * Also build the agents runtime on this Ollama stack (as server.ts does) and mount `/agents`;
   * its run deadlines and heartbeats use timers the test fires by hand (`TestApp.timers`).
   */
  agents?: boolean;
  /** Node process metrics in the app's registry (default off: faster scrapes). */
  defaultMetrics?: boolean;
  /** Replaces any collaborator of createApp after the defaults are built. */
  deps?: Partial<AppDeps>;
}

export interface TestApp {
  app: Express;
  config: Readonly<Config>;
  deps: AppDeps;
  /** The simulator in use (undefined with `simulator: false`). */
  sim: OllamaSimulator | undefined;
  ollama: OllamaClient;
  ollamaHealth: OllamaHealth;
  models: ModelService;
  /** The agents runtime (with `agents: true`). */
  agents: AgentsRuntime | undefined;
  /** The agents runtime's timers (with `agents: true`): `advance(ms)` fires deadlines. */
  timers: ManualTimers;
  /** Stops timers, closes the connection pool and the simulator this helper started. */
  close(): Promise<void>;
}

/** A fresh app wired like server.ts, against a fresh simulator on port 0, per test. */
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
  const now = options.now ?? Date.now;
  const build = { name: 'ollama-agent-gateway', version: '0.0.0-test' };
  const metrics: Metrics =
    options.deps?.metrics ??
    createMetrics({
      registry: new Registry(),
      build,
      defaultMetrics: options.defaultMetrics ?? false,
      knownModels: () => stack.ollamaHealth.snapshot().installedModels ?? [],
      knownAgents: () => agents?.service.listAgents().map((a) => a.name) ?? [],
      knownTools: () => agents?.toolNames ?? [],
      state: {
        health: () => stack.ollamaHealth.snapshot(),
        circuitState: () => stack.ollama.circuitState(),
        queueStats: () => stack.ollama.queueStats(),
        activeModel: () => stack.models.active(),
      },
    });
  const stack = buildOllamaStack({
    config,
    telemetry: options.telemetry ?? metrics,
    logger,
    now,
    ...(options.schedule ? { schedule: options.schedule } : {}),
  });
  const timers = createManualTimers();
  const agents: AgentsRuntime | undefined = options.agents
    ? createAgentsRuntime({
        config,
        schemas,
        ollama: stack.ollama,
        models: stack.models,
        telemetry: options.telemetry ?? metrics,
        logger,
        now,
        timers,
      })
    : undefined;
  const deps: AppDeps = {
    config,
    logger,
    schemas,
    context,
    build,
    metrics,
    startedAt: now(),
    now,
    ollama: stack.ollama,
    ollamaHealth: stack.ollamaHealth,
    models: stack.models,
    ...(agents ? { agents } : {}),
    ...options.deps,
  };
  return {
    app: createApp(deps),
    config,
    deps,
    sim,
    ollama: stack.ollama,
    ollamaHealth: stack.ollamaHealth,
    models: stack.models,
    agents,
    timers,
    async close() {
      agents?.service.cancelAll();
      await stack.close();
      if (own && sim) await sim.close();
    },
  };
}
