import type http from 'node:http';
import { createTerminus } from '@godaddy/terminus';
import type { DrainResult, Lifecycle } from '../services/health';
import type { Clock } from './clock';
import type { Config } from './config';
import type { Logger } from './logger';

/**
 * How long after SHUTDOWN_TIMEOUT_MS the listener's last resort (terminus/stoppable destroying
 * every socket) waits, so the final error events written at SHUTDOWN_TIMEOUT_MS reach their
 * clients before anything is cut.
 */
export const SOCKET_GRACE_MS = 1000;

/**
 * How long the exit waits for the services' stop (the Ollama pool, the Redis connection, which
 * the runs ended by the shutdown still write their last state through) before flushing the logs.
 */
export const STOP_SERVICES_MS = 1000;

export interface ShutdownOptions {
  server: http.Server;
  config: Pick<Config, 'SHUTDOWN_DELAY_MS' | 'SHUTDOWN_TIMEOUT_MS'>;
  lifecycle: Pick<Lifecycle, 'beginDrain' | 'drainStreams' | 'openStreams'>;
  logger: Logger;
  /** The pre-stop wait and the elapsed times in the log. */
  clock: Pick<Clock, 'now' | 'sleep'>;
  /** Stops timers and background work and closes pools (startup, health, Ollama). */
  stopServices: () => Promise<void>;
  /** Writes every buffered log line (the last step before exit). */
  flushLogs: () => Promise<void>;
  /** Exits the process (injected so a second signal can be observed in tests). */
  exit?: (code: number) => never;
}

/**
 * Wires SIGTERM and SIGINT to the run-once shutdown sequence, with @godaddy/terminus doing the
 * listener part:
 *   1. readiness answers 503 at once (lifecycle draining);
 *   2. wait SHUTDOWN_DELAY_MS (terminus `beforeShutdown`) so endpoints stop routing here;
 *   3. stop accepting connections; idle keep-alive sockets are closed, busy ones after their
 *      response (terminus → stoppable);
 *   4. in-flight requests and streams run up to SHUTDOWN_TIMEOUT_MS; streams still open then get
 *      a final error event (lifecycle.drainStreams); sockets still open SOCKET_GRACE_MS later
 *      are destroyed;
 *   5. stop timers and pools (`onSignal`), flush logs (`onShutdown`), exit 0.
 * A second signal during the sequence exits at once with 128 + the signal number.
 */
export function installGracefulShutdown(options: ShutdownOptions): void {
  const { server, config, lifecycle, logger, clock } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let signalled: number | null = null;
  let drained: Promise<DrainResult> = Promise.resolve({ completed: 0, ended: 0 });

  const onAnySignal = (signal: NodeJS.Signals): void => {
    if (signalled !== null) {
      process.stderr.write(`second ${signal} during shutdown: exiting now\n`);
      exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalled = clock.now();
    logger.info('shutdown requested', {
      signal,
      delay_ms: config.SHUTDOWN_DELAY_MS,
      timeout_ms: config.SHUTDOWN_TIMEOUT_MS,
      open_streams: lifecycle.openStreams(),
    });
  };
  process.on('SIGTERM', onAnySignal);
  process.on('SIGINT', onAnySignal);

  const elapsed = (): number => (signalled === null ? 0 : clock.now() - signalled);
  createTerminus(server, {
    signals: ['SIGTERM', 'SIGINT'],
    useExit0: true,
    timeout: config.SHUTDOWN_TIMEOUT_MS + SOCKET_GRACE_MS,
    beforeShutdown: async () => {
      lifecycle.beginDrain();
      await clock.sleep(config.SHUTDOWN_DELAY_MS);
      logger.info('shutdown: closing the listener, draining in-flight requests', {
        elapsed_ms: elapsed(),
        open_streams: lifecycle.openStreams(),
      });
      // Runs while terminus waits for the server to close; ending a stream ends its socket.
      drained = lifecycle.drainStreams(config.SHUTDOWN_TIMEOUT_MS);
    },
    onSignal: async () => {
      const result = await drained;
      logger.info('shutdown: requests drained', { elapsed_ms: elapsed(), streams: result });
      await options.stopServices();
    },
    onShutdown: async () => {
      logger.info('shutdown complete', { elapsed_ms: elapsed() });
      await options.flushLogs();
    },
    logger: (message, error) => logger.error(message, { error }),
  });
}
