import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';
import { AppError } from '../src/errors';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/** True when the request carries a body (a length above zero, or a chunked body). */
function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined) return true;
  return typeof length === 'string' && length !== '0';
}

/**
 * JSON exchanged between systems is UTF-8 (RFC 8259 §8.1). The decoder would silently turn
 * invalid bytes into U+FFFD and let the request through; refuse it as malformed JSON instead.
 */
function rejectInvalidUtf8(
  _req: IncomingMessage,
  _res: ServerResponse,
  body: Buffer,
  encoding: string,
): void {
  if (encoding.toLowerCase() === 'utf-8' && !isUtf8(body)) {
    throw Object.assign(new Error('request body is not valid UTF-8'), {
      type: 'entity.parse.failed',
    });
  }
}

/**
 * Parses JSON bodies up to `limit` bytes. A body with any other content type is refused with
 * 415 (so a form post or a text body never reaches a handler as `undefined`); malformed JSON
 * (invalid UTF-8 included) becomes 400 INVALID_JSON and an oversized body 413 through the error handler.
 */
export function createJsonBody(options: { limit: number }): RequestHandler {
  const parse = express.json({
    limit: options.limit,
    strict: true,
    type: () => true,
    verify: rejectInvalidUtf8,
  });
  return (req, res, next) => {
    if (!hasBody(req.headers)) return next();
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    if (!JSON_TYPE.test(type)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', undefined, {
        details: { content_type: type.slice(0, 100) || null },
      });
    }
    parse(req, res, next);
  };
}
