import { Router } from 'express';
import { createMethodNotAllowed } from '../middleware/error-handler';

export interface BuildInfo {
  name: string;
  version: string;
}

/** `GET /health`: a fast answer with no I/O, for people and load balancers. */
export function createHealthRouter(options: {
  build: BuildInfo;
  startedAt: number;
  now: () => number;
}): Router {
  const { build, startedAt, now } = options;
  const router = Router();
  router
    .route('/health')
    .get((_req, res) => {
      res.json({
        status: 'ok',
        service: build.name,
        version: build.version,
        uptime_s: Math.floor((now() - startedAt) / 1000),
      });
    })
    .all(createMethodNotAllowed(['GET', 'HEAD']));
  return router;
}
