import { AsyncLocalStorage } from 'node:async_hooks';

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
