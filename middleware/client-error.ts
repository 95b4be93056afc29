import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorBody, type ErrorCode } from '../src/errors';
import type { Logger } from '../src/logger';

/** Node's HTTP parser errors we answer, by error code; anything else is a 400. */
const PARSER_ERRORS: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  HPE_HEADERS_TIMEOUT: 'REQUEST_TIMEOUT',
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
};

/**
 * The `clientError` listener of the HTTP server: requests Node's parser rejects before
 * Express sees them (headers over MAX_HEADER_SIZE, headers or body too slow, malformed HTTP)
 * get an answer in the one error shape instead of Node's bare status line, then the
 * connection is closed. Nothing is written when the socket is gone or a response already
 * started on it (bytes were written), exactly as Node's default handler decides.
 */
export function createClientErrorHandler(options: {
  logger: Logger;
}): (err: Error & { code?: string }, socket: Duplex) => void {
  const { logger } = options;
  return (err, socket) => {
    const net = socket as Duplex & { bytesWritten?: number };
    if (err.code === 'ECONNRESET' || !socket.writable || (net.bytesWritten ?? 0) > 0) {
      socket.destroy();
      return;
    }
    const code = PARSER_ERRORS[err.code ?? ''];
    const appError = code
      ? new AppError(code)
      : new AppError('VALIDATION_FAILED', 'The HTTP request is malformed.');
    endWithError(socket, appError, logger, { parser_code: err.code });
  };
}

/**
 * The error shape of a request Express never sees: its body and headers (a new request id).
 * Logged at info: it is the client's doing.
 */
function shaped(appError: AppError, logger: Logger, fields: Record<string, unknown>) {
  const id = randomUUID();
  logger.info('client error', { code: appError.code, ...fields, request_id: id });
  const body = JSON.stringify(errorBody(appError, id));
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Request-ID': id,
  };
  return { body, headers };
}

/** Answers on a raw socket with `appError` in the error shape, then closes the connection. */
export function endWithError(
  socket: Duplex,
  appError: AppError,
  logger: Logger,
  fields: Record<string, unknown> = {},
): void {
  const { body, headers } = shaped(appError, logger, fields);
  const lines = Object.entries({ ...headers, Connection: 'close' })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? ''}\r\n${lines}\r\n${body}`,
  );
}

/** Answers `res` with `appError` in the error shape and closes the connection after it. */
function respondWithError(
  res: ServerResponse,
  appError: AppError,
  logger: Logger,
  fields: Record<string, unknown> = {},
): void {
  const { body, headers } = shaped(appError, logger, fields);
  res.shouldKeepAlive = false;
  res.writeHead(appError.status, headers);
  res.end(body);
}

/**
 * The requests Node answers itself, with a bare status line, before the app sees them: an
 * HTTP/1.1 request without `Host` (400), an `Expect` other than `100-continue` (417) and the
 * `CONNECT` method (the socket closed). Each gets the error shape instead; the server
 * (src/http-server.ts) turns Node's own Host check off and asks `missingHost` first.
 */
export function createProtocolErrors(options: { logger: Logger }) {
  const { logger } = options;
  return {
    /** True when the request was answered here (HTTP/1.1 without `Host`). */
    missingHost(req: IncomingMessage, res: ServerResponse): boolean {
      if (req.headers.host !== undefined || req.httpVersion !== '1.1') return false;
      const error = new AppError('VALIDATION_FAILED', 'An HTTP/1.1 request needs a Host header.');
      respondWithError(res, error, logger);
      return true;
    },
    /** The `checkExpectation` listener. */
    expectation(req: IncomingMessage, res: ServerResponse): void {
      respondWithError(res, new AppError('EXPECTATION_FAILED'), logger, {
        expect: String(req.headers.expect ?? '').slice(0, 100),
      });
    },
    /** The `connect` listener. */
    connect(_req: IncomingMessage, socket: Duplex): void {
      endWithError(socket, new AppError('METHOD_NOT_ALLOWED'), logger, { method: 'CONNECT' });
    },
  };
}
