import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../middleware/request-context';
import { AgentsFileError } from '../services/agents/registry';
import { createAgentsRuntime, type AgentsRuntime } from '../services/agents/runtime';
import { createHealthService } from '../services/health';
import { createLifecycle } from '../services/lifecycle';
import { createMetrics } from '../services/metrics';
import { createRateLimitRedis, type RateLimitRedis } from '../services/rate-limit-redis';
import { createStartupSequence } from '../services/startup';
import { loadApiKeys } from './api-keys';
import { createApp } from './app';
import { ConfigError, loadConfig, type ApiKeyEntry, type Config } from './config';
import { createHttpServer } from './http-server';
import { createLogger, flushLogger, type Logger } from './logger';
import { buildOllamaStack } from './ollama-stack';
import { installGracefulShutdown } from './shutdown';
import { createSchemaRegistry } from './validation';

/**
 * The only entry that listens, starts timers and handles signals. Everything else is built
 * here and passed down.
 */
function readBuildInfo(): { name: string; version: string } {
  const pkg = JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
  ) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

/** Stops the process with the one configuration message (exit 78, EX_CONFIG). */
function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError || err instanceof AgentsFileError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

function main(): void {
  const schemas = createSchemaRegistry();
  let config: Readonly<Config>;
  let apiKeys: readonly ApiKeyEntry[];
  try {
    config = loadConfig(process.env, schemas);
    // The keys file is read here, once, synchronously at start; never on a request.
    apiKeys = loadApiKeys(config);
  } catch (err) {
    exitOnConfigError(err);
  }
  const build = readBuildInfo();
  const startedAt = Date.now();
  const context = createRequestContextStore();
  const logger: Logger = createLogger({
    level: config.LOG_LEVEL,
    format: config.LOG_FORMAT,
    context,
    defaultMeta: { service: build.name },
  });

  // One registry per app. Its getters run only at scrape (or label) time, so they may read
  // the Ollama stack and agents runtime built just below, which need the metrics first as
  // their telemetry.
  const metrics = createMetrics({
    registry: new Registry(),
    build,
    knownModels: () => ollamaStack.ollamaHealth.snapshot().installedModels ?? [],
    knownAgents: () => agents.service.listAgents().map((a) => a.name),
    knownTools: () => agents.toolNames,
    state: {
      health: () => ollamaStack.ollamaHealth.snapshot(),
      circuitState: () => ollamaStack.ollama.circuitState(),
      queueStats: () => ollamaStack.ollama.queueStats(),
      activeModel: () => ollamaStack.models.active(),
    },
  });
  const ollamaStack = buildOllamaStack({ config, telemetry: metrics, logger });
  let agents: AgentsRuntime;
  try {
    agents = createAgentsRuntime({
      config,
      schemas,
      ollama: ollamaStack.ollama,
      models: ollamaStack.models,
      telemetry: metrics,
      logger,
      now: Date.now,
    });
  } catch (err) {
    exitOnConfigError(err);
  }

  const lifecycle = createLifecycle({ logger });
  const startup = createStartupSequence({
    config,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
    logger,
  });
  const health = createHealthService({
    config,
    build,
    startedAt,
    now: Date.now,
    lifecycle,
    startup,
    ollamaHealth: ollamaStack.ollamaHealth,
    ollama: ollamaStack.ollama,
    models: ollamaStack.models,
  });

  // Shared rate limits: connecting does not block start; until Redis answers (and whenever
  // it is down) requests are served without limits, logged and counted.
  let redis: RateLimitRedis | undefined;
  if (config.REDIS_URL !== '') {
    redis = createRateLimitRedis({ url: config.REDIS_URL, logger });
    redis.start().catch((err: unknown) => logger.warn('redis client stopped', { error: err }));
  }

  const app = createApp({
    config,
    logger,
    schemas,
    context,
    build,
    metrics,
    startedAt,
    now: Date.now,
    apiKeys,
    rateLimitStore: redis ? (budget) => redis.store(budget) : undefined,
    health,
    lifecycle,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
    agents,
  });
  const server = createHttpServer(app, config, logger);
  server.listen(config.PORT, config.HOST, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info('listening', { host: config.HOST, port, version: build.version });
    // The probes answer from now on; the warm-up runs behind them.
    void startup.run();
  });
  health.start();
  ollamaStack.ollamaHealth.start();

  installGracefulShutdown({
    server,
    config,
    lifecycle,
    logger,
    stopServices: async () => {
      startup.stop();
      health.stop();
      // Background runs still going after the drain end as cancelled (they live in memory).
      agents.service.cancelAll();
      // Upstream calls of ended requests were aborted; the bound only guards a stuck pool.
      await Promise.race([
        Promise.all([ollamaStack.close(), redis?.stop()]),
        delay(1000, undefined, { ref: false }),
      ]);
    },
    flushLogs: () => flushLogger(logger),
  });
}

main();
