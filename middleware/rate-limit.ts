import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import { AppError } from '../src/errors';
import type { Logger } from '../src/logger';
import { ANONYMOUS } from '../src/principal';

/** The budgets: agent runs, the drop-in /v1 and /api endpoints, and every other counted request. */
export type RateLimitBudget = 'runs' | 'compat' | 'api';

export interface RateLimitOptions {
  /**
   * Requests per window of each budget (RATE_LIMIT_RUNS_PER_MINUTE, RATE_LIMIT_COMPAT_PER_MINUTE,
   * RATE_LIMIT_PER_MINUTE).
   */
  limits: Readonly<Record<RateLimitBudget, number>>;
  /** The budget a request counts against, or `unlimited` (the policy row's budget). */
  budgetOf: (req: Request) => RateLimitBudget | 'unlimited';
  logger: Logger;
  /** A bounded label for a request (the policy row's pattern), passed to `onLimited`. */
  routeLabel?: (req: Request) => string;
  /**
   * Builds the store of one budget (a Redis store shared by replicas). Default: in-process
   * memory. Each budget needs its own store (own key prefix).
   */
  store?: (budget: RateLimitBudget) => Store;
  /** Called once per 429 (the metrics module counts `rate_limit_hits_total{route}`). */
  onLimited?: (route: string) => void;
  /** Called once per request served without limiting because the store failed (fail open). */
  onStoreError?: (err: unknown) => void;
  /** Window length; one minute unless a test shortens it. */
  windowMs?: number;
  /** Clock for throttling the store-error log line (tests pass a fake one). */
  now?: () => number;
}

/** How often, at most, a failing store is logged (every failure is still counted). */
const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * The rate limiter, built on express-rate-limit: a fixed one-minute window per caller —
 * the API key's id when authenticated, else the client IP (IPv6 grouped by /56 with
 * express-rate-limit's `ipKeyGenerator`, and taken from `req.ip`, so X-Forwarded-For only
 * counts through TRUST_PROXY hops). Each budget has its own counters; the caller says which
 * budget a request counts against.
 * Answers include the IETF `RateLimit`/`RateLimit-Policy` headers (draft-8); over the limit,
 * 429 RATE_LIMITED in the one error shape with Retry-After. When the store fails (Redis down)
 * the request is served unlimited (`passOnStoreError`), logged (throttled) and counted.
 */
export function createRateLimit(options: RateLimitOptions): RequestHandler {
  const { logger, onLimited, onStoreError, budgetOf } = options;
  const now = options.now ?? Date.now;
  const routeLabel = options.routeLabel ?? ((req: Request) => req.path);
  const windowMs = options.windowMs ?? 60_000;
  let lastStoreLog = -Infinity;
  let suppressed = 0;

  // express-rate-limit reports store failures and its own configuration checks here.
  const erlLogger = {
    error(err: unknown, message?: string): void {
      if (message?.includes('error from store')) {
        onStoreError?.(err);
        if (now() - lastStoreLog < STORE_ERROR_LOG_INTERVAL_MS) {
          suppressed += 1;
          return;
        }
        lastStoreLog = now();
        logger.warn('rate limit store failed; serving requests without limits', {
          error: err,
          suppressed_since_last_log: suppressed,
        });
        suppressed = 0;
        return;
      }
      logger.error(message ?? 'rate limiter error', { error: err });
    },
    warn(err: unknown, message?: string): void {
      logger.warn(message ?? 'rate limiter warning', { error: err });
    },
  };

  const build = (budget: RateLimitBudget, limit: number): RequestHandler =>
    rateLimit({
      windowMs,
      limit,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      identifier: budget,
      store: options.store?.(budget),
      passOnStoreError: true,
      logger: erlLogger,
      keyGenerator: (req) => {
        const p = req.principal;
        return p && p !== ANONYMOUS ? `key:${p.id}` : `ip:${ipKeyGenerator(req.ip ?? '')}`;
      },
      handler: (req, _res, next) => {
        onLimited?.(routeLabel(req));
        // The stores date their windows with Date.now, so the wait is measured with it too.
        const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
        const resetMs = info?.resetTime ? info.resetTime.getTime() - Date.now() : windowMs;
        next(
          new AppError('RATE_LIMITED', undefined, {
            retryAfterS: Math.max(1, Math.ceil(resetMs / 1000)),
            details: { budget, limit, window_s: Math.ceil(windowMs / 1000) },
          }),
        );
      },
    });

  const limiters: Record<RateLimitBudget, RequestHandler> = {
    runs: build('runs', options.limits.runs),
    compat: build('compat', options.limits.compat),
    api: build('api', options.limits.api),
  };
  return (req, res, next) => {
    const budget = budgetOf(req);
    if (budget === 'unlimited') return next();
    return limiters[budget](req, res, next);
  };
}
