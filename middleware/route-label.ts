import type { Request } from 'express';

/** The label for requests that matched no route: one value, whatever the path. */
export const UNMATCHED_ROUTE = '<unmatched>';

type MatchedRoute = { path?: unknown } | undefined;

/** Full templates of the routes requests matched, remembered at the moment they matched. */
const matched = new WeakMap<Request, string>();
const tracked = new WeakSet<Request>();

/**
 * Remembers the full route template (`/ollama/model/switch`) when the router matches one.
 * Call it before routing (the metrics and access-log middleware do). Needed because a router
 * mounted under a path (`app.use('/ollama', router)`) restores `req.baseUrl` when it hands an
 * error on, while `req.route` stays: read at the end, an error answered by the app's error
 * handler would carry `/model/switch`, or `/health` for `/ollama/health`, the probe's label.
 */
export function trackRoute(req: Request): void {
  if (tracked.has(req)) return;
  tracked.add(req);
  let route: MatchedRoute;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: MatchedRoute) {
      route = value;
      if (typeof value?.path === 'string') matched.set(req, `${req.baseUrl}${value.path}` || '/');
    },
  });
}

/**
 * The route template a request matched (`/agents/runs/:id`), never the raw URL, so logs and
 * metric labels stay a bounded set. Read it after the response finished.
 */
export function routeLabel(req: Request): string {
  const remembered = matched.get(req);
  if (remembered !== undefined) return remembered;
  const route = (req as Request & { route?: MatchedRoute }).route;
  if (!route || typeof route.path !== 'string') return UNMATCHED_ROUTE;
  return `${req.baseUrl}${route.path}` || '/';
}
