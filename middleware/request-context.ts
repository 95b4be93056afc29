import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { RequestContextStore } from '../src/request-context';

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
