import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createRequestContextStore } from '../middleware/request-context';
import { AgentsFileError } from '../services/agents/registry';
import { createAgentsRuntime, type AgentsRuntime } from '../services/agents/runtime';
import { createMetrics } from '../services/metrics';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
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

/** Applies the server-side timeouts against slow clients (see README, "Timeouts"). */
function applyServerTimeouts(server: http.Server, config: Readonly<Config>): void {
  server.keepAliveTimeout = config.KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = config.HEADERS_TIMEOUT_MS;
  server.requestTimeout = config.REQUEST_TIMEOUT_MS;
}

function main(): void {
  const schemas = createSchemaRegistry();
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env, schemas);
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
  // One registry per app; the state getters (health, queue, circuit, active model) and the
  // known model/agent/tool names are wired here as those services are built.
  const metrics = createMetrics({
    registry: new Registry(),
    build,
    // Read at label time, once the agents runtime below exists.
    knownAgents: () => agents.service.listAgents().map((a) => a.name),
    knownTools: () => agents.toolNames,
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
  const app = createApp({
    config,
    logger,
    schemas,
    context,
    build,
    metrics,
    startedAt: Date.now(),
    now: Date.now,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
    agents,
  });
  const server = http.createServer({ maxHeaderSize: config.MAX_HEADER_SIZE }, app);
  applyServerTimeouts(server, config);
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
      void ollamaStack
        .close()
        .then(() => flushLogger(logger))
        .then(() => process.exit(0));
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
