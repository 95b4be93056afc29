import type { RequestHandler } from 'express';

/**
 * While the service drains, every response carries `Connection: close`, so a keep-alive client
 * (or proxy) opens its next request on a new connection, which Kubernetes routes to a pod that
 * is not shutting down, instead of reusing a socket that is about to be closed.
 */
export function createDrainConnectionClose(options: { isDraining: () => boolean }): RequestHandler {
  const { isDraining } = options;
  return (_req, res, next) => {
    if (isDraining()) res.setHeader('Connection', 'close');
    next();
  };
}
