import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { createMethodNotAllowed } from '../middleware/error-handler';
import { AppError } from '../src/errors';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * `Authorization: Bearer <token>` against the configured token. Both sides are hashed first so
 * the comparison is constant-time and does not leak the token's length.
 */
function requireBearer(token: string): RequestHandler {
  const expected = digest(token);
  return (req, _res, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) {
      throw new AppError('UNAUTHENTICATED', 'A valid metrics token is required.', {
        headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
      });
    }
    next();
  };
}

/**
 * `GET /metrics`: the registry in the Prometheus text format. Cheap by design: state gauges
 * read cached state, nothing here calls Ollama. With a non-empty `token`, scrapers must send it
 * as a Bearer token (401 UNAUTHENTICATED otherwise). Mount it outside any rate limiter.
 */
export function createMetricsRouter(options: { registry: Registry; token?: string }): Router {
  const { registry, token } = options;
  const router = Router();
  const route = router.route('/metrics');
  if (token) route.all(requireBearer(token));
  route
    .get(async (_req, res) => {
      const body = await registry.metrics();
      res.setHeader('Content-Type', registry.contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.send(body);
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));
  return router;
}
