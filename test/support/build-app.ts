import type { Express } from 'express';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../../middleware/request-context';
import { createMetrics } from '../../services/metrics';
import type { ModelService } from '../../services/models';
import type { OllamaClient } from '../../services/ollama-client';
import type { Schedule } from '../../services/ollama-health';
import type { OllamaHealth } from '../../services/ollama-types';
import { createNoopTelemetry, type Telemetry } from '../../services/telemetry';
import { createApp, type AppDeps } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { buildOllamaStack } from '../../src/ollama-stack';
import { createSchemaRegistry } from '../../src/validation';
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
  telemetry?: Telemetry;
  now?: () => number;
  /** The health refresh timer (default: a real unref'd one, not started). */
  schedule?: Schedule;
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
  const stack = buildOllamaStack({
    config,
    telemetry: options.telemetry ?? createNoopTelemetry(),
    logger,
    now,
    ...(options.schedule ? { schedule: options.schedule } : {}),
  });
  const deps: AppDeps = {
    config,
    logger,
    schemas,
    context,
    build: { name: 'ollama-agent-gateway', version: '0.0.0-test' },
    // Merge of issue3 with main's metrics: createApp now requires an app registry.
    metrics: createMetrics({
      registry: new Registry(),
      build: { version: '0.0.0-test' },
      defaultMetrics: false,
    }),
    startedAt: now(),
    now,
    ollama: stack.ollama,
    ollamaHealth: stack.ollamaHealth,
    models: stack.models,
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
    async close() {
      await stack.close();
      if (own && sim) await sim.close();
    },
  };
}
