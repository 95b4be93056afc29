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
import { createRedisStatus } from '../services/health';
import { createRedisActiveModelStore } from '../services/models';
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
import { keySourceOf, type ApiKeySource } from './api-keys';
import { keyId } from '../middleware/auth';
import {
  createMemoryUsageStore,
  createRedisUsageStore,
  createUsageService,
  type UsageService,
} from '../services/usage';
import type { Logger } from './logger';
import { createAdmissions, createOllamaStack, type OllamaStack } from '../services/ollama';
import type { Admission, Resolver } from '../services/ollama';
import type { SchemaRegistry } from './validation';

export interface ComposeOptions {
  config: Readonly<Config>;
  schemas: SchemaRegistry;
  logger: Logger;
  context: RequestContextStore;
  build: BuildInfo;
  /** Time, timers and waits for every service (tests pass a manual clock). */
  clock: Clock;
  /** The keys, or the store that keeps them current (a reloaded API_KEYS_FILE). */
  apiKeys?: readonly ApiKeyEntry[] | ApiKeySource;
  rateLimitStore?: (budget: RateLimitBudget) => Store;
  /** The replica's Redis connection when REDIS_URL is set; unset: every store is in memory. */
  redis?: RedisConnection;
  /** One admission per Ollama backend, by backend id (default: an in-process one each). */
  admissionFor?: (backendId: string) => Admission;
  /** Node process metrics in the registry (default on; tests turn them off for fast scrapes). */
  defaultMetrics?: boolean;
  // Seams for tests; production leaves them unset.
  /** What the services report to (default: the app's metrics). */
  telemetry?: Telemetry;
  extraTools?: readonly ToolDefinition[];
  webhookRetryDelayMs?: AgentsRuntimeOptions['webhookRetryDelayMs'];
  /** The resolver behind OLLAMA_DISCOVERY (default node:dns/promises). */
  resolveBackends?: Resolver;
  /** A run repository shared with other gateways in the same process (replica tests). */
  runs?: AgentsRuntimeOptions['runs'];
  /** The Idempotency-Key repository (tests: one whose writes fail). */
  idempotency?: AgentsRuntimeOptions['idempotency'];
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
  /** Token usage and budgets per key. */
  usage: UsageService;
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
  const keys = keySourceOf(options.apiKeys ?? config.API_KEYS);
  const keyIds = keyIdsOf(keys);
  const metrics = createMetrics({
    registry: new Registry(),
    build,
    defaultMetrics: options.defaultMetrics ?? true,
    knownModels: () => ollamaStack.ollamaHealth.snapshot().installedModels ?? [],
    knownAgents: () => agents.service.listAgents().map((a) => a.name),
    knownTools: () => agents.toolNames,
    knownKeyIds: keyIds,
    state: {
      health: () => ollamaStack.ollamaHealth.snapshot(),
      circuitState: () => ollamaStack.ollama.circuitState(),
      failingModels: () => ollamaStack.ollama.failingModels(),
      queueStats: () => ollamaStack.ollama.queueStats(),
      activeModel: () => ollamaStack.models.active(),
      ...(options.redis ? { redisUp: () => redisStatus?.up() ?? false } : {}),
      backends: () => ollamaStack.ollama.backends(),
    },
  });
  const telemetry = options.telemetry ?? metrics;
  // With Redis: every replica's commands timed by group, its state for health and `redis_up`,
  // and the active model shared by every replica.
  const { redis } = options;
  const stopObservingRedis = redis?.onCommand((group, seconds, ok) =>
    metrics.redisCommand(group, seconds, ok),
  );
  const redisStatus = redis ? createRedisStatus({ redis, now }) : undefined;
  // One admission per Ollama backend (one backend today, id `0`), global across replicas with Redis.
  const admissions = createAdmissions({ config, clock, logger, redis: options.redis });
  const ollamaStack = createOllamaStack({
    config,
    telemetry,
    logger,
    clock,
    ...(redis
      ? {
          activeModel: createRedisActiveModelStore({
            redis,
            initialModel: config.OLLAMA_MODEL,
            clock,
            logger,
          }),
        }
      : {}),
    admissionFor: options.admissionFor ?? admissions.forBackend,
    ...(options.admissionFor ? { admissionFor: options.admissionFor } : {}),
    ...(options.resolveBackends ? { resolve: options.resolveBackends } : {}),
  });
  // With Redis, usage is summed here and added every second (one write per key and model).
  const redisUsage = redis ? createRedisUsageStore({ redis, logger, clock }) : undefined;
  const usage = createUsageService({
    store: redisUsage ?? createMemoryUsageStore(),
    now,
    logger,
    warnPercent: config.TOKEN_BUDGET_WARN_PERCENT,
    budgetsOf: (id) => keys.current().find((k) => k.id === id)?.budgets,
    onTokens: (id, model, tokens) => metrics.keyTokens(id, model, tokens),
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
    usage,
    ...(options.redis ? { redis: options.redis } : {}),
    ...(options.runs ? { runs: options.runs } : {}),
    ...(options.idempotency ? { idempotency: options.idempotency } : {}),
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
    ...(redisStatus ? { redis: redisStatus } : {}),
    mcp: () => agents.mcpStatus(),
  });
  // The backend set routes each forwarded request itself (model, load, the body's affinity).
  const passthrough = createPassthroughService({
    backends: { pick: () => ollamaStack.ollama },
    telemetry,
    activeModel: () => ollamaStack.models.active(),
    allowAnyInstalledModel: config.ALLOW_ANY_INSTALLED_MODEL,
    now,
    usage,
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
    apiKeys: keys,
    rateLimitStore: options.rateLimitStore,
    lifecycle,
    routes: {
      health,
      ollama: {
        ollama: ollamaStack.ollama,
        ollamaHealth: ollamaStack.ollamaHealth,
        models: ollamaStack.models,
      },
      agents,
      passthrough,
      usage,
    },
  };
  return {
    deps,
    metrics,
    ollamaStack,
    agents,
    lifecycle,
    startup,
    health,
    usage,
    start() {
      admissions.start();
      health.start();
      ollamaStack.ollamaHealth.start();
      agents.start();
      const { store } = ollamaStack.models;
      if (store.kind === 'memory') void startup.run();
      // The warm-up preloads the active model: the stored one, once the first read ended.
      else {
        void store
          .start()
          .catch((err: unknown) => logger.warn('reading the active model failed', { error: err }))
          .then(() => startup.run());
      }
    },
    async stop() {
      startup.stop();
      health.stop();
      stopObservingRedis?.();
      redisStatus?.stop();
      await ollamaStack.models.store.stop();
      // Runs still going here now end as cancelled (retryable, SHUTTING_DOWN).
      agents.service.cancelAll();
      await agents.stop();
      admissions.stop();
      await redisUsage?.stop();
      await ollamaStack.close();
    },
  };
}

/** The ids of the keys in force (configured, else the key's digest id), rebuilt per version. */
function keyIdsOf(keys: ApiKeySource): () => readonly string[] {
  let version: readonly ApiKeyEntry[] | undefined;
  let ids: readonly string[] = [];
  return () => {
    const current = keys.current();
    if (current !== version) {
      version = current;
      ids = current.map((k) => k.id ?? keyId(k.key));
    }
    return ids;
  };
}
