import type { Request, RequestHandler } from 'express';

/** The label for requests that matched no route: one value, whatever the path. */
export const UNMATCHED_ROUTE = '<unmatched>';

/** The path a router was mounted at, noted on each request that enters it. */
const MOUNT = Symbol('mountPath');

type Labelled = Request & { [MOUNT]?: string; route?: { path?: unknown } };

/**
 * Goes in front of a router mounted under a path (`app.use('/ollama', createMountLabel('/ollama'),
 * router)`) and notes that path on the request. A mounted router restores `req.baseUrl` when it
 * hands an error on, while `req.route` stays: read at the end, an error answered by the app's
 * error handler would otherwise carry `/model/switch`, or `/health` for `/ollama/health`, the
 * probe's label.
 */
export function createMountLabel(mountPath: string): RequestHandler {
  return (req, _res, next) => {
    (req as Labelled)[MOUNT] = mountPath;
    next();
  };
}

/**
 * The route template a request matched (`/agents/runs/:id`), never the raw URL, so logs and
 * metric labels stay a bounded set. Read it after the response finished.
 */
export function routeLabel(req: Request): string {
  const r = req as Labelled;
  const path = r.route?.path;
  if (typeof path !== 'string') return UNMATCHED_ROUTE;
  return `${r[MOUNT] ?? req.baseUrl}${path}` || '/';
}
