import type { RequestHandler } from 'express';
import type { Logger } from '../src/logger';
import { routeLabel } from './route-label';

/**
 * One `info` line per request once its response is done (or the client went away): method,
 * route template, status, duration_ms, bytes written (headers included). Never headers,
 * bodies or query values, so keys and prompts cannot leak through it.
 */
export function createAccessLog(options: { logger: Logger; now?: () => bigint }): RequestHandler {
  const { logger } = options;
  const now = options.now ?? process.hrtime.bigint;
  return (req, res, next) => {
    const started = now();
    // HTTP/1.1 serves one request at a time per connection, so the socket's byte count
    // since the start is this response's size, streams included.
    const bytesBefore = req.socket?.bytesWritten ?? 0;
    let logged = false;
    const log = (): void => {
      if (logged) return;
      logged = true;
      if (!logger.isLevelEnabled('info')) return;
      logger.info('request', {
        request_id: req.id,
        method: req.method,
        route: routeLabel(req),
        status: res.statusCode,
        duration_ms: Number(now() - started) / 1e6,
        bytes: (req.socket?.bytesWritten ?? bytesBefore) - bytesBefore,
        aborted: !res.writableFinished,
      });
    };
    res.once('finish', log);
    res.once('close', log);
    next();
  };
}
