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
 * How deep a body may nest arrays and objects (System.Text.Json's default MaxDepth). JSON.parse
 * takes any depth, but the code that walks a body afterwards (stringify, hashing, schema
 * compilation) recurses, and a body a few thousand levels deep would overflow its stack.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests arrays and objects more than `max` levels deep (iteratively). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Parses JSON bodies up to `limit` bytes. A body with any other content type is refused with
 * 415 (so a form post or a text body never reaches a handler as `undefined`); malformed JSON
 * (invalid UTF-8 included) becomes 400 INVALID_JSON and an oversized body 413 through the error handler;
 * a body nested more than {@link MAX_JSON_DEPTH} levels deep is 400 VALIDATION_FAILED.
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
    parse(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err);
      if (nestedDeeperThan(req.body, MAX_JSON_DEPTH)) {
        return next(
          new AppError(
            'VALIDATION_FAILED',
            `The JSON body nests more than ${MAX_JSON_DEPTH} levels of arrays and objects.`,
            { details: { max_depth: MAX_JSON_DEPTH } },
          ),
        );
      }
      next();
    });
  };
}
