import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createRequestContextStore } from '../middleware/request-context';
import { createHealthService } from '../services/health';
import { createLifecycle } from '../services/lifecycle';
import { createStartupSequence } from '../services/startup';
import { createNoopTelemetry } from '../services/telemetry';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
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

/**
 * Applies the server-side timeouts against slow clients (README, "Health probes and the pod
 * lifecycle"): keepAliveTimeout above the load balancer's idle timeout, so the proxy, never the
 * service, closes an idle connection (no race with a request sent on a socket being closed);
 * headersTimeout and requestTimeout bound how long a client may take to *send* its request
 * (slow-loris). None of them limits how long a response or a stream may run.
 */
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
  // Until the metrics module lands, Ollama events are recorded nowhere.
  const telemetry = createNoopTelemetry();
  const ollamaStack = buildOllamaStack({ config, telemetry, logger });
  const startedAt = Date.now();
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
  const app = createApp({
    config,
    logger,
    schemas,
    context,
    build,
    startedAt,
    now: Date.now,
    health,
    lifecycle,
    ollama: ollamaStack.ollama,
    ollamaHealth: ollamaStack.ollamaHealth,
    models: ollamaStack.models,
  });
  const server = http.createServer({ maxHeaderSize: config.MAX_HEADER_SIZE }, app);
  applyServerTimeouts(server, config);
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
      // Upstream calls of ended requests were aborted; the bound only guards a stuck pool.
      await Promise.race([ollamaStack.close(), delay(1000, undefined, { ref: false })]);
    },
    flushLogs: () => flushLogger(logger),
  });
}

main();
