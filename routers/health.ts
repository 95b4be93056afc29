import { Router, type Response } from 'express';
import { createMethodNotAllowed } from '../middleware/error-handler';
import type { BuildInfo, HealthService, ProbeReport } from '../services/health';

export type { BuildInfo };

export interface HealthRouterOptions {
  build: BuildInfo;
  startedAt: number;
  now: () => number;
  /** The probes (`/health/live|ready|startup|detailed`) are mounted when given. */
  health?: HealthService;
}

/**
 * `GET /health` (fast, no I/O, for people and load balancers) and the Kubernetes probes.
 * Every probe answers from cached state computed by the health service. A failing probe is a
 * health report with status 503, not an error of the request, so it keeps the report shape
 * (`schemas/health-*.schema.json`) that lists the failing checks.
 */
export function createHealthRouter(options: HealthRouterOptions): Router {
  const { build, startedAt, now, health } = options;
  const router = Router();
  const getOnly = createMethodNotAllowed(['GET', 'HEAD']);
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
    .all(getOnly);
  if (!health) return router;

  const send = (res: Response, report: ProbeReport): void => {
    // Probes must never be answered from a cache between the kubelet and the pod.
    res.setHeader('Cache-Control', 'no-store');
    res.status(report.status === 'fail' ? 503 : 200).json(report);
  };
  router
    .route('/health/live')
    .get((_req, res) => send(res, health.live()))
    .all(getOnly);
  router
    .route('/health/ready')
    .get((_req, res) => send(res, health.ready()))
    .all(getOnly);
  router
    .route('/health/startup')
    .get((_req, res) => send(res, health.startup()))
    .all(getOnly);
  router
    .route('/health/detailed')
    .get((_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(health.detailed());
    })
    .all(getOnly);
  return router;
}
