import { Writable } from 'node:stream';
import { createLogger, type Logger, type LoggerOptions } from '../../src/logger';

/** A real winston logger whose JSON lines are kept in memory, so tests can read what was logged. */
export function createCaptureLogger(options: Partial<LoggerOptions> = {}): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', format: 'json', ...options, stream });
  const text = (): string => chunks.join('');
  const lines = (): Array<Record<string, unknown>> =>
    text()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, text };
}
