import type { Writable } from 'node:stream';
import winston from 'winston';
import type { RequestContextStore } from './request-context';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'http' | 'debug' | 'silent';
  format: 'json' | 'pretty';
  /** Adds `request_id` from the request being served. */
  context?: RequestContextStore;
  /** Where lines go; stdout by default. Tests pass a stream to read the lines. */
  stream?: Writable;
  /** Fields on every line (service name, version). */
  defaultMeta?: Record<string, unknown>;
}

/** Keys whose values are secrets; they are replaced wherever they appear in a log entry. */
const SECRET_KEY =
  /^(authorization|x-api-key|api[_-]?keys?|apikey|token|password|secret|cookie|set-cookie|webhook[_-]?secret|metrics[_-]?token)$/i;

function redact(value: unknown, depth: number): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown };
    return {
      name: e.name,
      message: e.message,
      ...(e.code !== undefined ? { code: e.code } : {}),
      stack: e.stack,
      ...(e.cause !== undefined ? { cause: redact(e.cause, depth + 1) } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/**
 * winston logger writing one JSON object per line (or readable lines with `pretty`).
 * Every line logged inside a request carries `request_id`; secret-named fields are redacted;
 * errors are logged with their stack (for operators, never for clients).
 */
export function createLogger(options: LoggerOptions): Logger {
  const { context } = options;
  const addContext = winston.format((info) => {
    const ctx = context?.get();
    if (ctx && info.request_id === undefined) info.request_id = ctx.requestId;
    for (const key of Object.keys(info)) {
      if (SECRET_KEY.test(key)) info[key] = '[redacted]';
      else if (key !== 'level' && key !== 'message') info[key] = redact(info[key], 0);
    }
    return info;
  });
  const base = [winston.format.timestamp(), addContext(), winston.format.errors({ stack: true })];
  const format =
    options.format === 'pretty'
      ? winston.format.combine(
          ...base,
          winston.format.colorize(),
          winston.format.printf(({ timestamp, level, message, ...rest }) => {
            const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${level} ${String(message)}${extra}`;
          }),
        )
      : winston.format.combine(...base, winston.format.json());
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level === 'silent' ? 'error' : options.level,
    silent: options.level === 'silent',
    format,
    defaultMeta: options.defaultMeta,
    transports: [transport],
  });
}

/** Resolves once every buffered line has been written (call before exit). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.once('finish', () => resolve());
    logger.end();
  });
}
