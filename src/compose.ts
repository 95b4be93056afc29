import type { Store } from 'express-rate-limit';
import { Registry } from 'prom-client';
import type { RateLimitBudget } from '../middleware/rate-limit';
import type { RequestContextStore } from './request-context';
import {
  createAgentsRuntime,
  type AgentsRuntime,
  type AgentsRuntimeOptions,
} from '../services/agents';
import { createHealthService, type HealthService } from '../services/health';
import { createLifecycle, type Lifecycle } from '../services/health';
import { createMetrics, type Metrics } from '../services/metrics';
import { createStartupSequence, type StartupSequence } from '../services/health';
import type { Telemetry } from '../services/metrics';
import type { RedisConnection } from '../services/stores';
import type { ToolDefinition } from '../services/tools';
import { createPassthroughService } from '../services/passthrough';
import type { BuildInfo } from '../routers/health';
import type { AppDeps } from './app';
import type { Clock } from './clock';
import type { ApiKeyEntry, Config } from './config';
import type { Logger } from './logger';
import { createOllamaStack, type OllamaStack } from '../services/ollama';
import type { SchemaRegistry } from './validation';

export interface ComposeOptions {
  config: Readonly<Config>;
  schemas: SchemaRegistry;
  logger: Logger;
  context: RequestContextStore;
  build: BuildInfo;
  /** Time, timers and waits for every service (tests pass a manual clock). */
  clock: Clock;
  apiKeys?: readonly ApiKeyEntry[];
  rateLimitStore?: (budget: RateLimitBudget) => Store;
  /** The replica's Redis connection when REDIS_URL is set; unset: every store is in memory. */
  redis?: RedisConnection;
  /** Node process metrics in the registry (default on; tests turn them off for fast scrapes). */
  defaultMetrics?: boolean;
  // Seams for tests; production leaves them unset.
  /** What the services report to (default: the app's metrics). */
  telemetry?: Telemetry;
  extraTools?: readonly ToolDefinition[];
  webhookRetryDelayMs?: AgentsRuntimeOptions['webhookRetryDelayMs'];
  /** A run repository shared with other gateways in the same process (replica tests). */
  runs?: AgentsRuntimeOptions['runs'];
}

/** Every collaborator of the gateway, built once, wired to each other, nothing started. */
export interface Gateway {
  /** What createApp takes. */
  deps: AppDeps;
  metrics: Metrics;
  ollamaStack: OllamaStack;
  agents: AgentsRuntime;
  lifecycle: Lifecycle;
  startup: StartupSequence;
  health: HealthService;
  /** Starts the background work: health timers and the startup warm-up (after listen). */
  start(): void;
  /** Stops timers, cancels runs still going, closes the Ollama connection pool. */
  stop(): Promise<void>;
}

/**
 * Builds the whole service graph the one way both `src/server.ts` and the tests use, so the
 * app under test is wired exactly like production. The metrics come first (everything reports
 * to them); their getters run only at scrape or label time, so they may read the parts built
 * after them. Throws AgentsFileError for a bad AGENTS_FILE.
 */
export function composeGateway(options: ComposeOptions): Gateway {
  const { config, schemas, logger, build, clock } = options;
  const { now } = clock;
  const metrics = createMetrics({
    registry: new Registry(),
    build,
    defaultMetrics: options.defaultMetrics ?? true,
    knownModels: () => ollamaStack.ollamaHealth.snapshot().installedModels ?? [],
    knownAgents: () => agents.service.listAgents().map((a) => a.name),
    knownTools: () => agents.toolNames,
    state: {
      health: () => ollamaStack.ollamaHealth.snapshot(),
      circuitState: () => ollamaStack.ollama.circuitState(),
      failingModels: () => ollamaStack.ollama.failingModels(),
      queueStats: () => ollamaStack.ollama.queueStats(),
      activeModel: () => ollamaStack.models.active(),
    },
  });
  const telemetry = options.telemetry ?? metrics;
  const ollamaStack = createOllamaStack({
    config,
    telemetry,
    logger,
    clock,
  });
  const agents = createAgentsRuntime({
    config,
    schemas,
    ollama: ollamaStack.ollama,
    models: ollamaStack.models,
    telemetry,
    logger,
    clock,
    extraTools: options.extraTools,
    webhookRetryDelayMs: options.webhookRetryDelayMs,
    runs: options.runs,
  });
  const lifecycle = createLifecycle({ logger, clock });
  const startup = createStartupSequence({
    config,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
    logger,
    clock,
  });
  const startedAt = now();
  const health = createHealthService({
    config,
    build,
    startedAt,
    now,
    lifecycle,
    startup,
    ollamaHealth: ollamaStack.ollamaHealth,
    ollama: ollamaStack.ollama,
    models: ollamaStack.models,
    mcp: () => agents.mcpStatus(),
  });
  // One backend today: every drop-in request goes to this Ollama.
  const passthrough = createPassthroughService({
    backends: { pick: () => ollamaStack.ollama },
    telemetry,
    activeModel: () => ollamaStack.models.active(),
    allowAnyInstalledModel: config.ALLOW_ANY_INSTALLED_MODEL,
    now,
  });
  const deps: AppDeps = {
    config,
    logger,
    schemas,
    context: options.context,
    build,
    metrics,
    startedAt,
    now,
    apiKeys: options.apiKeys,
    rateLimitStore: options.rateLimitStore,
    health,
    lifecycle,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
    agents,
    passthrough,
  };
  return {
    deps,
    metrics,
    ollamaStack,
    agents,
    lifecycle,
    startup,
    health,
    start() {
      health.start();
      ollamaStack.ollamaHealth.start();
      agents.start();
      void startup.run();
    },
    async stop() {
      startup.stop();
      health.stop();
      // Background runs still going now end as cancelled (they live in memory only).
      agents.service.cancelAll();
      await agents.stop();
      await ollamaStack.close();
    },
  };
}
