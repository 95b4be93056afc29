import cors from 'cors';
import express, { type Express } from 'express';
import type { Store } from 'express-rate-limit';
import { createAccessLog } from '../middleware/access-log';
import { createAuth } from '../middleware/auth';
import { createAuthPolicy } from '../middleware/auth-policy';
import { createCompression } from '../middleware/compression';
import { createDrainConnectionClose } from '../middleware/drain-connection-close';
import { createErrorHandler, createNotFound } from '../middleware/error-handler';
import { createHttpMetrics } from '../middleware/http-metrics';
import { createJsonBody } from '../middleware/json-body';
import { createMountLabel, UNMATCHED_ROUTE } from '../middleware/route-label';
import { createRateLimit, type RateLimitBudget } from '../middleware/rate-limit';
import { createRequestContext } from '../middleware/request-context';
import type { RequestContextStore } from './request-context';
import { createSecurityHeaders } from '../middleware/security-headers';
import { createServerTiming } from '../middleware/server-timing';
import { createValidate } from '../middleware/validate';
import { createAgentsRouter } from '../routers/agents';
import { compatErrorShape } from '../middleware/compat-error-shape';
import { createHealthRouter, type BuildInfo } from '../routers/health';
import { createOllamaNativeRouter } from '../routers/ollama-native';
import { createOpenAiRouter } from '../routers/openai';
import { createOpenApiRouter } from '../routers/openapi';
import { createMetricsRouter } from '../routers/metrics';
import { createOllamaRouter } from '../routers/ollama';
import type { AgentsRuntime } from '../services/agents';
import type { HealthService } from '../services/health';
import type { Lifecycle } from '../services/health';
import type { Metrics } from '../services/metrics';
import type { ModelService } from '../services/models';
import type { OllamaHealth, OllamaService } from '../services/ollama';
import type { PassthroughService } from '../services/passthrough';
import type { ApiKeyEntry, Config } from './config';
import type { ApiKeySource } from './api-keys';
import { createTokenBudget } from '../middleware/token-budget';
import { createUsageRouter } from '../routers/usage';
import { BUDGET_WARNING_HEADER, type UsageService } from '../services/usage';
import type { Logger } from './logger';
import type { SchemaRegistry } from './validation';

export interface AppDeps {
  config: Readonly<Config>;
  logger: Logger;
  schemas: SchemaRegistry;
  context: RequestContextStore;
  build: BuildInfo;
  /** The app's metrics (its own registry); also the Telemetry the services report to. */
  metrics: Metrics;
  /** When the process started (ms since the epoch). */
  startedAt: number;
  /** Wall clock in ms; injected so tests control time. */
  now: () => number;
  /**
   * Every API key (API_KEYS plus API_KEYS_FILE), or the store that keeps them current when
   * API_KEYS_FILE is reloaded; default config.API_KEYS.
   */
  apiKeys?: readonly ApiKeyEntry[] | ApiKeySource;
  /** Rate-limit store per budget (Redis, shared by replicas); default in-process memory. */
  rateLimitStore?: (budget: RateLimitBudget) => Store;
  /** The probes; without it only `GET /health` is served. */
  health?: HealthService;
  /** Draining state and the registry of open streams. */
  lifecycle?: Lifecycle;
  /** The only road to Ollama (services/ollama-client). `/ollama/*` is mounted when the three are given. */
  ollama?: OllamaService;
  /** Cached Ollama health (services/ollama-health). */
  ollamaHealth?: OllamaHealth;
  /** Active model, switches, cached model catalog (services/models). */
  models?: ModelService;
  /** The agents runtime (`/agents/*`); absent in tests that do not exercise agents. */
  agents?: AgentsRuntime;
  /** The drop-in OpenAI (`/v1`) and Ollama (`/api`, `/`) endpoints; absent: not mounted. */
  passthrough?: PassthroughService;
  /** Token usage and budgets: `GET /usage` and the budget check before each generation. */
  usage?: UsageService;
}

/**
 * Builds the Express app from its collaborators. No side effects: it reads no environment,
 * opens no port and starts no timer, so every test can build its own app.
 * The pipeline reads top to bottom: context → metrics and timing → logging → security headers →
 * compression → CORS → auth → rate limit → role policy → body → routers → JSON 404 → the one error handler.
 */
export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.TRUST_PROXY);
  app.set('etag', false);

  app.use(createRequestContext({ store: deps.context }));
  app.use(createHttpMetrics({ http: deps.metrics.http }));
  app.use(createServerTiming());
  app.use(createAccessLog({ logger }));
  if (deps.lifecycle) {
    app.use(createDrainConnectionClose({ isDraining: deps.lifecycle.isDraining }));
  }
  app.use(createSecurityHeaders());
  app.use(createCompression({ thresholdBytes: config.COMPRESSION_MIN_BYTES }));
  if (config.ALLOWED_ORIGINS.length > 0) {
    app.use(cors({ origin: [...config.ALLOWED_ORIGINS], credentials: false, maxAge: 600 }));
  }
  // Who is calling (never rejects) → their budget (a failed key counts against the IP) →
  // the policy table's 401/403, all before a body is read or a router runs.
  const policy = createAuthPolicy({ logger });
  app.use(
    createAuth({ keys: deps.apiKeys ?? config.API_KEYS, logger, disabled: config.AUTH_DISABLED }),
  );
  app.use(
    createRateLimit({
      limits: {
        runs: config.RATE_LIMIT_RUNS_PER_MINUTE,
        compat: config.RATE_LIMIT_COMPAT_PER_MINUTE,
        api: config.RATE_LIMIT_PER_MINUTE,
      },
      // A path no row covers counts against the general budget.
      budgetOf: (req) => policy.matchRequest(req)?.budget ?? 'api',
      logger,
      routeLabel: (req) => policy.matchRequest(req)?.pattern ?? UNMATCHED_ROUTE,
      store: deps.rateLimitStore,
      onLimited: (route) => deps.metrics.rateLimited(route),
      onStoreError: () => deps.metrics.rateLimitStoreError(),
      now: deps.now,
    }),
  );
  app.use(policy.middleware);
  app.use(createJsonBody({ limit: config.BODY_LIMIT }));

  const validate = createValidate({ schemas: deps.schemas });
  const usage = deps.usage;
  const tokenBudget = usage
    ? createTokenBudget({
        check: (principal, signal) => usage.check(principal, signal),
        header: BUDGET_WARNING_HEADER,
      })
    : undefined;
  // Routers in order of traffic: each request walks the routers before the one that matches
  // (their paths do not overlap, so the order decides nothing else).
  if (deps.agents) {
    app.use(
      createAgentsRouter({
        service: deps.agents.service,
        validate,
        heartbeatMs: deps.agents.heartbeatMs,
        clock: deps.agents.clock,
        lifecycle: deps.lifecycle,
        tokenBudget,
      }),
    );
  }

  if (deps.passthrough) {
    const compat = {
      passthrough: deps.passthrough,
      validate,
      lifecycle: deps.lifecycle,
      tokenBudget,
    };
    app.use(createOpenAiRouter(compat));
    app.use(createOllamaNativeRouter(compat));
  }

  if (deps.ollama && deps.ollamaHealth && deps.models) {
    app.use(
      '/ollama',
      createMountLabel('/ollama'),
      createOllamaRouter({
        ollama: deps.ollama,
        health: deps.ollamaHealth,
        models: deps.models,
        validate,
        now: deps.now,
        lifecycle: deps.lifecycle,
      }),
    );
  }
  if (usage) app.use(createUsageRouter({ usage, validate }));
  app.use(
    createHealthRouter({
      build: deps.build,
      startedAt: deps.startedAt,
      now: deps.now,
      health: deps.health,
    }),
  );
  // An open path in the policy table: no key, no rate limit (its own optional token).
  app.use(createMetricsRouter({ registry: deps.metrics.registry, token: config.METRICS_TOKEN }));

  app.use(createOpenApiRouter({ schemas: deps.schemas, build: deps.build }));

  app.use(createNotFound());
  app.use(
    createErrorHandler({
      logger,
      onError: (err) => deps.metrics.error(err.code),
      shapeFor: compatErrorShape,
    }),
  );
  return app;
}
