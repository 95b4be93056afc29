import cors from 'cors';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { createAccessLog } from '../middleware/access-log';
import { createErrorHandler, createNotFound } from '../middleware/error-handler';
import { createHttpMetrics } from '../middleware/http-metrics';
import { createJsonBody } from '../middleware/json-body';
import { createRequestContext, type RequestContextStore } from '../middleware/request-context';
import { createServerTiming } from '../middleware/server-timing';
import { createValidate } from '../middleware/validate';
import { createAgentsRouter } from '../routers/agents';
import { createHealthRouter, type BuildInfo } from '../routers/health';
import { createMetricsRouter } from '../routers/metrics';
import { createOllamaRouter } from '../routers/ollama';
import type { AgentsRuntime } from '../services/agents/runtime';
import type { Metrics } from '../services/metrics';
import type { ModelService } from '../services/models';
import type { OllamaHealth, OllamaService } from '../services/ollama-types';
import type { Config } from './config';
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
  /** The only road to Ollama (services/ollama-client). `/ollama/*` is mounted when the three are given. */
  ollama?: OllamaService;
  /** Cached Ollama health (services/ollama-health). */
  ollamaHealth?: OllamaHealth;
  /** Active model, switches, cached model catalog (services/models). */
  models?: ModelService;
  /** The agents runtime (`/agents/*`); absent in tests that do not exercise agents. */
  agents?: AgentsRuntime;
}

/**
 * Builds the Express app from its collaborators. No side effects: it reads no environment,
 * opens no port and starts no timer, so every test can build its own app.
 * The pipeline reads top to bottom: context → metrics and timing → logging → security headers →
 * body → routers → JSON 404 → the one error handler.
 */
export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.TRUST_PROXY);
  app.set('etag', false);

  app.use(createRequestContext({ store: deps.context }));
  app.use(createHttpMetrics({ metrics: deps.metrics }));
  app.use(createServerTiming());
  app.use(createAccessLog({ logger }));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      },
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginResourcePolicy: { policy: 'same-site' },
    }),
  );
  if (config.ALLOWED_ORIGINS.length > 0) {
    app.use(cors({ origin: [...config.ALLOWED_ORIGINS], credentials: false, maxAge: 600 }));
  }
  app.use(createJsonBody({ limit: config.BODY_LIMIT }));

  app.use(createHealthRouter({ build: deps.build, startedAt: deps.startedAt, now: deps.now }));
  // Before any rate limiter: scrapes are never limited.
  app.use(createMetricsRouter({ registry: deps.metrics.registry, token: config.METRICS_TOKEN }));
  if (deps.ollama && deps.ollamaHealth && deps.models) {
    const validate = createValidate({ schemas: deps.schemas });
    app.use(
      '/ollama',
      createOllamaRouter({
        ollama: deps.ollama,
        health: deps.ollamaHealth,
        models: deps.models,
        validate,
        now: deps.now,
      }),
    );
  }
  if (deps.agents) {
    app.use(
      createAgentsRouter({
        service: deps.agents.service,
        validate: createValidate({ schemas: deps.schemas }),
        heartbeatMs: deps.agents.heartbeatMs,
        timers: deps.agents.timers,
      }),
    );
  }

  app.use(createNotFound());
  app.use(createErrorHandler({ logger, onError: (err) => deps.metrics.error(err.code) }));
  return app;
}
