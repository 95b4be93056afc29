import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequestContextStore } from './request-context';
import { AgentsFileError } from '../services/agents';
import { loadRedisStores, type RedisStores } from '../services/stores';
import { createApiKeyStore, loadApiKeys } from './api-keys';
import { createApp } from './app';
import { createSystemClock } from './clock';
import { composeGateway, type Gateway } from './compose';
import { ConfigError, loadProcessConfig, type ApiKeyEntry, type Config } from './config';
import { createHttpServer } from './http-server';
import { createLogger, flushLogger, type Logger } from './logger';
import { installGracefulShutdown, STOP_SERVICES_MS } from './shutdown';
import { createSchemaRegistry } from './validation';

/**
 * The only entry that listens, starts timers and handles signals. The service graph is built
 * by composeGateway (the same one the tests use) and passed down.
 */
function readBuildInfo(): { name: string; version: string } {
  const pkg = JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
  ) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

/**
 * The content of a mounted secret file, without its trailing newline; undefined when `file` is
 * empty. Read once at start. @throws ConfigError naming the variable when it cannot be read.
 */
function readSecretFile(file: string): string | undefined {
  if (file === '') return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError([
      `REDIS_PASSWORD_FILE: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
}

/** Stops the process with the one configuration message (exit 78, EX_CONFIG). */
function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError || err instanceof AgentsFileError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

async function main(): Promise<void> {
  const schemas = createSchemaRegistry();
  let config: Readonly<Config>;
  let apiKeys: readonly ApiKeyEntry[];
  try {
    config = loadProcessConfig(schemas);
    // The keys file is read here synchronously at start, never on a request; later versions
    // are read by the key store's timer (API_KEYS_FILE_POLL_MS).
    apiKeys = loadApiKeys(config, undefined, schemas);
  } catch (err) {
    exitOnConfigError(err);
  }
  const build = readBuildInfo();
  const context = createRequestContextStore();
  const clock = createSystemClock();
  const logger: Logger = createLogger({
    level: config.LOG_LEVEL,
    format: config.LOG_FORMAT,
    context,
    defaultMeta: { service: build.name },
  });
  const keys = createApiKeyStore({
    config,
    initial: apiKeys,
    schemas,
    clock,
    logger,
    intervalMs: config.API_KEYS_FILE_POLL_MS,
  });

  // The shared stores: connecting does not block start; until Redis answers (and whenever it
  // is down) each store does what its callers decided for an outage (rate limits fail open).
  // The Redis client is loaded only when configured: it adds about 10 MB of RSS.
  let redis: RedisStores | undefined;
  if (config.REDIS_URL !== '') {
    let password: string | undefined;
    try {
      password = readSecretFile(config.REDIS_PASSWORD_FILE);
    } catch (err) {
      exitOnConfigError(err);
    }
    redis = await loadRedisStores({
      url: config.REDIS_URL,
      ...(password !== undefined ? { password } : {}),
      logger,
      commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      prefix: config.REDIS_KEY_PREFIX,
    });
    redis.connection
      .start()
      .catch((err: unknown) => logger.warn('redis client stopped', { error: err }));
  }

  let gateway: Gateway;
  try {
    gateway = composeGateway({
      config,
      schemas,
      logger,
      context,
      build,
      clock,
      apiKeys: keys,
      rateLimitStore: redis ? (budget) => redis.rateLimits.store(budget) : undefined,
      ...(redis ? { redis: redis.connection } : {}),
    });
  } catch (err) {
    exitOnConfigError(err);
  }

  // A promise rejection nothing handled is a defect of this service, not of a request: it is
  // logged with its stack (never sent to a client) and the process goes on serving. Node's
  // default would exit, ending every run and stream on this replica for one request's fault.
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled promise rejection', { error: reason });
  });

  const server = createHttpServer(createApp(gateway.deps), config, logger);
  server.listen(config.PORT, config.HOST, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info('listening', { host: config.HOST, port, version: build.version });
    // The probes answer from now on; the warm-up runs behind them.
    gateway.start();
    keys.start();
  });

  installGracefulShutdown({
    server,
    config,
    lifecycle: gateway.lifecycle,
    logger,
    clock,
    stopServices: async () => {
      keys.stop();
      // Upstream calls of ended requests were aborted; the bound only guards a stuck pool.
      // The connection closes after the services, which may still say goodbye through it.
      await Promise.race([
        // Redis last: the runs the gateway's stop ends write their last state through it.
        gateway.stop().finally(() => redis?.connection.stop()),
        new Promise((resolve) => clock.after(STOP_SERVICES_MS, () => resolve(undefined))),
      ]);
    },
    flushLogs: () => flushLogger(logger),
  });
}

void main();
