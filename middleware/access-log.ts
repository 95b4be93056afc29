import type { RequestHandler } from 'express';
import type { Logger } from '../src/logger';
import { routeLabel } from './route-label';

/**
 * One `http` level line per request once its response is done (or the client went away):
 * method, route template, status, duration_ms, bytes. Never headers, bodies or query values,
 * so keys and prompts cannot leak through it.
 */
export function createAccessLog(options: { logger: Logger; now?: () => bigint }): RequestHandler {
  const { logger } = options;
  const now = options.now ?? process.hrtime.bigint;
  return (req, res, next) => {
    const started = now();
    let logged = false;
    const log = (): void => {
      if (logged) return;
      logged = true;
      if (!logger.isLevelEnabled('http')) return;
      const length = Number(res.getHeader('content-length'));
      logger.http('request', {
        request_id: req.id,
        method: req.method,
        route: routeLabel(req),
        status: res.statusCode,
        duration_ms: Number(now() - started) / 1e6,
        bytes: Number.isFinite(length) ? length : (req.socket?.bytesWritten ?? undefined),
        aborted: !res.writableFinished,
      });
    };
    res.once('finish', log);
    res.once('close', log);
    next();
  };
}
