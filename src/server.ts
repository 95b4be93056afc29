import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../middleware/request-context';
import { AgentsFileError } from '../services/agents/registry';
import { createAgentsRuntime, type AgentsRuntime } from '../services/agents/runtime';
import { createMetrics } from '../services/metrics';
import { createRateLimitRedis, type RateLimitRedis } from '../services/rate-limit-redis';
import { loadApiKeys } from './api-keys';
import { createApp } from './app';
import { ConfigError, loadConfig, type ApiKeyEntry, type Config } from './config';
import { createHttpServer } from './http-server';
import { createLogger, flushLogger, type Logger } from './logger';
import { buildOllamaStack } from './ollama-stack';
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

function main(): void {
  const schemas = createSchemaRegistry();
  let config: Readonly<Config>;
  let apiKeys: readonly ApiKeyEntry[];
  try {
    config = loadConfig(process.env, schemas);
    // The keys file is read here, once, synchronously at start; never on a request.
    apiKeys = loadApiKeys(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const build = readBuildInfo();
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
    if (err instanceof AgentsFileError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
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
    startedAt: Date.now(),
    now: Date.now,
    apiKeys,
    rateLimitStore: redis ? (budget) => redis.store(budget) : undefined,
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
  });
  ollamaStack.ollamaHealth.start();

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    logger.info('shutting down', { signal });
    agents.service.cancelAll();
    server.close(() => {
      void Promise.all([redis?.stop(), ollamaStack.close()])
        .then(() => flushLogger(logger))
        .then(() => process.exit(0));
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
