import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
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
    const id = randomUUID();
    logger.info('client error', { code: appError.code, parser_code: err.code, request_id: id });
    const body = JSON.stringify(errorBody(appError, id));
    socket.end(
      `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-ID: ${id}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  };
}
