import type { Request } from 'express';

/** The label for requests that matched no route: one value, whatever the path. */
export const UNMATCHED_ROUTE = '<unmatched>';

/**
 * The route template a request matched (`/agents/runs/:id`), never the raw URL, so logs and
 * metric labels stay a bounded set. Read it after the response finished.
 */
export function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  if (!route || typeof route.path !== 'string') return UNMATCHED_ROUTE;
  return `${req.baseUrl}${route.path}` || '/';
}
