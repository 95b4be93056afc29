import type { Request } from 'express';

/** The label for requests that matched no route: one value, whatever the path. */
export const UNMATCHED_ROUTE = '<unmatched>';

type MatchedRoute = { path?: unknown } | undefined;

/** What Express assigned to `req.route`, kept behind the accessor. */
const ROUTE = Symbol('route');
/** The full template of the route the request matched, remembered when it matched. */
const TEMPLATE = Symbol('routeTemplate');
/** Marks an object that already has the tracking accessor. */
const TRACKING = Symbol('routeTracking');

type Tracked = { baseUrl: string; [ROUTE]?: MatchedRoute; [TEMPLATE]?: string };

const accessor: PropertyDescriptor = {
  configurable: true,
  get(this: Tracked): MatchedRoute {
    return this[ROUTE];
  },
  set(this: Tracked, value: MatchedRoute) {
    this[ROUTE] = value;
    if (typeof value?.path === 'string') this[TEMPLATE] = `${this.baseUrl}${value.path}` || '/';
  },
};

function install(target: object): void {
  Object.defineProperty(target, 'route', accessor);
  Object.defineProperty(target, TRACKING, { value: true });
}

/**
 * Remembers the full route template (`/ollama/model/switch`) when the router matches one.
 * Call it before routing (the metrics and access-log middleware do). Needed because a router
 * mounted under a path (`app.use('/ollama', router)`) restores `req.baseUrl` when it hands an
 * error on, while `req.route` stays: read at the end, an error answered by the app's error
 * handler would carry `/model/switch`, or `/health` for `/ollama/health`, the probe's label.
 *
 * The `route` accessor goes once on the app's request prototype (Express 5 makes each request
 * inherit from `app.request`, recognisable by its own `app`), so tracking costs nothing per
 * request; an object that is not an Express request gets the accessor on itself.
 */
export function trackRoute(req: Request): void {
  if ((req as unknown as Record<symbol, unknown>)[TRACKING] === true) return;
  const proto = Object.getPrototypeOf(req) as object | null;
  install(proto && Object.prototype.hasOwnProperty.call(proto, 'app') ? proto : req);
}

/**
 * The route template a request matched (`/agents/runs/:id`), never the raw URL, so logs and
 * metric labels stay a bounded set. Read it after the response finished.
 */
export function routeLabel(req: Request): string {
  const remembered = (req as unknown as Tracked)[TEMPLATE];
  if (remembered !== undefined) return remembered;
  const route = (req as Request & { route?: MatchedRoute }).route;
  if (!route || typeof route.path !== 'string') return UNMATCHED_ROUTE;
  return `${req.baseUrl}${route.path}` || '/';
}
