import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { AppError, errorBody, toAppError } from '../src/errors';
import type { Logger } from '../src/logger';

export interface ErrorHandlerOptions {
  logger: Logger;
  /** Called once per error response (the metrics count errors by code here). */
  onError?: (err: AppError) => void;
  /** The body shape of a request's errors when it is not the gateway's own (the drop-in APIs). */
  shapeFor?: (req: Request) => ((err: AppError, requestId: string) => unknown) | undefined;
}

/**
 * The terminal error handler: every error response leaves here, in the one shape
 * `{"error":{"code","message","details"?,"request_id"}}`. 5xx are logged with their cause and
 * stack; the client only ever sees the catalogued message. Handlers throw; they never catch.
 */
export function createErrorHandler(options: ErrorHandlerOptions): ErrorRequestHandler {
  const { logger, onError } = options;
  // Express recognises an error handler by its four parameters, so `_next` must stay.
  return (err: unknown, req, res, _next) => {
    const appError = toAppError(err);
    if (appError.status >= 500) {
      logger.error('request failed', {
        code: appError.code,
        method: req.method,
        path: req.path,
        error: appError.cause ?? appError,
      });
    } else {
      logger.debug('request rejected', { code: appError.code, details: appError.details });
    }
    onError?.(appError);
    if (res.headersSent) {
      // A stream already started: its status is sent, so the only honest signal left is to
      // end it. Routers that stream report errors in-band before they get here.
      if (!res.writableEnded) res.end();
      return;
    }
    res.status(appError.status);
    for (const [name, value] of Object.entries(appError.headers)) res.setHeader(name, value);
    if (appError.retryAfterS !== undefined) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(appError.retryAfterS))));
    }
    const shape = options.shapeFor?.(req);
    res.json(shape ? shape(appError, req.id) : errorBody(appError, req.id));
  };
}

/** The JSON 404 for paths no router matched (mounted after every router). */
export function createNotFound(): RequestHandler {
  return (req) => {
    throw new AppError('NOT_FOUND', `No route for ${req.method} ${req.path}.`);
  };
}

/** Mounted with `.all()` after a path's real methods: a known path with a wrong method is a 405. */
export function createMethodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(', ');
  return () => {
    throw new AppError('METHOD_NOT_ALLOWED', undefined, {
      headers: { Allow: allow },
      details: { allowed },
    });
  };
}
