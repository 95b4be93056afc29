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
   * API_KEYS_FILE is reloaded.
   */
  apiKeys: readonly ApiKeyEntry[] | ApiKeySource;
  /** Rate-limit store per budget (Redis, shared by replicas); unset: in this process's memory. */
  rateLimitStore?: (budget: RateLimitBudget) => Store;
  /** Draining state and the registry of open streams and answered runs. */
  lifecycle: Lifecycle;
  /** What each router serves from; every router is mounted, none is optional. */
  routes: AppRoutes;
}

/** The collaborators of each router, grouped by the router that uses them. */
export interface AppRoutes {
  /** `/health/*`: the probes. */
  health: HealthService;
  /** `/ollama/*`: the Ollama service, its cached health and the models service. */
  ollama: { ollama: OllamaService; ollamaHealth: OllamaHealth; models: ModelService };
  /** `/agents/*`: the agents runtime. */
  agents: AgentsRuntime;
  /** The drop-in OpenAI (`/v1`) and Ollama (`/api`, `/`) endpoints. */
  passthrough: PassthroughService;
  /** `GET /usage` and the token-budget check before each generation. */
  usage: UsageService;
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
  app.use(createDrainConnectionClose({ isDraining: deps.lifecycle.isDraining }));
  app.use(createSecurityHeaders());
  app.use(createCompression({ thresholdBytes: config.COMPRESSION_MIN_BYTES, logger }));
  if (config.ALLOWED_ORIGINS.length > 0) {
    app.use(cors({ origin: [...config.ALLOWED_ORIGINS], credentials: false, maxAge: 600 }));
  }
  // Who is calling (never rejects) → their budget (a failed key counts against the IP) →
  // the policy table's 401/403, all before a body is read or a router runs.
  const policy = createAuthPolicy({ logger });
  app.use(createAuth({ keys: deps.apiKeys, logger, disabled: config.AUTH_DISABLED }));
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
  const { routes, lifecycle } = deps;
  const { usage } = routes;
  const tokenBudget = createTokenBudget({
    check: (principal, signal) => usage.check(principal, signal),
    header: BUDGET_WARNING_HEADER,
  });
  // Routers in order of traffic: each request walks the routers before the one that matches
  // (their paths do not overlap, so the order decides nothing else).
  app.use(
    createAgentsRouter({
      service: routes.agents.service,
      validate,
      heartbeatMs: routes.agents.heartbeatMs,
      clock: routes.agents.clock,
      lifecycle,
      tokenBudget,
    }),
  );
  const compat = { passthrough: routes.passthrough, validate, lifecycle, tokenBudget };
  app.use(createOpenAiRouter(compat));
  app.use(createOllamaNativeRouter(compat));
  app.use(
    '/ollama',
    createMountLabel('/ollama'),
    createOllamaRouter({
      ...routes.ollama,
      health: routes.ollama.ollamaHealth,
      validate,
      now: deps.now,
      lifecycle,
    }),
  );
  app.use(createUsageRouter({ usage, validate }));
  app.use(
    createHealthRouter({
      build: deps.build,
      startedAt: deps.startedAt,
      now: deps.now,
      health: routes.health,
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
