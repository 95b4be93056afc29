import type { ChildProcess } from 'node:child_process';
import { createRedisConnection, type RedisConnection } from '../../services/stores/redis';
import { createLogger, type Logger } from '../../src/logger';
import { freePort } from './listen';
import { startRedis, stopRedis } from './redis-server';

export interface RedisFixture {
  readonly port: number;
  readonly url: string;
  /** A started connection with a key prefix of its own (so tests share nothing). */
  connect(options?: { prefix?: string; logger?: Logger }): Promise<RedisConnection>;
  /** A prefix no other test of this run uses. */
  newPrefix(): string;
  /** Kills redis-server (SIGKILL) and starts it again on the same port, empty. */
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * One real redis-server for a `describe` (started before, killed after), and connections to
 * it that are closed after each test. Call inside a `describe`.
 */
export function useRedis(): RedisFixture {
  let server: ChildProcess | undefined;
  let port = 0;
  let n = 0;
  const connections: RedisConnection[] = [];
  before(async function () {
    this.timeout(20_000);
    port = await freePort();
    server = await startRedis(port);
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.stop()));
  });
  after(async () => {
    if (server) await stopRedis(server);
  });
  const newPrefix = (): string => `t${process.pid}-${(n += 1)}:`;
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    newPrefix,
    async connect(options = {}) {
      const connection = createRedisConnection({
        url: `redis://127.0.0.1:${port}`,
        logger: options.logger ?? createLogger({ level: 'silent', format: 'json' }),
        commandTimeoutMs: 1000,
        reconnectMaxDelayMs: 100,
        prefix: options.prefix ?? newPrefix(),
      });
      connections.push(connection);
      await connection.start();
      return connection;
    },
    async stop() {
      if (server) await stopRedis(server);
    },
    async restart() {
      if (server) await stopRedis(server);
      server = await startRedis(port);
    },
  };
}
