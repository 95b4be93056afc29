import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

/** What every log line written while serving a request carries. */
export interface RequestContext {
  requestId: string;
}

export interface RequestContextStore {
  /** The context of the request being served, if any. */
  get(): RequestContext | undefined;
  /** Runs `fn` inside a context (used by the middleware, and by background work that belongs to a request). */
  run<T>(ctx: RequestContext, fn: () => T): T;
}

export function createRequestContextStore(): RequestContextStore {
  const als = new AsyncLocalStorage<RequestContext>();
  return {
    get: () => als.getStore(),
    run: (ctx, fn) => als.run(ctx, fn),
  };
}

/** A safe incoming id: short, and nothing that could forge a header or a log line. */
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: the caller's X-Request-ID when safe, else a new UUID. */
    id: string;
  }
}

/**
 * Gives each request an id (kept from `X-Request-ID` when it is a safe token, otherwise a
 * new UUID), echoes it in the response header, and runs the rest of the pipeline inside an
 * AsyncLocalStorage context so every log line carries it.
 */
export function createRequestContext(options: { store: RequestContextStore }): RequestHandler {
  const { store } = options;
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID();
    req.id = id;
    res.setHeader('X-Request-ID', id);
    store.run({ requestId: id }, next);
  };
}
