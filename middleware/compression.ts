import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants, gzip, gzipSync } from 'node:zlib';
import compressible from 'compressible';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../src/logger';

/** Streamed bodies: every event must reach the client the moment it is written. */
const STREAMED = /^\s*(text\/event-stream|application\/x-ndjson)\s*(;|$)/i;

/**
 * Bodies up to this size are compressed on the event loop (gzip of 64 KB of JSON: well under a
 * millisecond); larger ones on libuv's thread pool, so a big answer never stalls other requests.
 */
const SYNC_MAX_BYTES = 64 * 1024;

/** Brotli at quality 4, the level meant for answers made on the fly (11 is for static files). */
const brotliOptions = (size: number) => ({
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 4,
    [constants.BROTLI_PARAM_SIZE_HINT]: size,
  },
});

/**
 * zlib's window and hash table sized to the body: a window larger than the body finds nothing
 * more but costs its memory, about 256 KB per call at the defaults, allocated and cleared for
 * every answer. The bytes out are the same (the compression test checks it on bodies up to
 * 64 KB); the CPU per `gzipSync` call is within a microbenchmark's noise of the defaults'.
 */
export function gzipOptionsFor(size: number): { windowBits: number; memLevel: number } {
  const windowBits = Math.min(15, Math.max(10, Math.ceil(Math.log2(Math.max(1, size)))));
  return { windowBits, memLevel: Math.max(2, windowBits - 7) };
}

const CODECS = {
  gzip: {
    sync: (body: Buffer) => gzipSync(body, gzipOptionsFor(body.length)),
    async: promisify((body: Buffer, cb: (err: Error | null, out: Buffer) => void) =>
      gzip(body, cb),
    ),
  },
  br: {
    sync: (body: Buffer) => brotliCompressSync(body, brotliOptions(body.length)),
    async: promisify((body: Buffer, cb: (err: Error | null, out: Buffer) => void) =>
      brotliCompress(body, brotliOptions(body.length), cb),
    ),
  },
} as const;

type Encoding = keyof typeof CODECS;

export interface CompressionOptions {
  /**
   * Bodies below this many bytes are sent as they are: compressing a few kilobytes costs the
   * service more CPU than the bytes save on a fast network (README, Performance).
   */
  thresholdBytes: number;
  logger: Pick<Logger, 'warn'>;
}

type End = Response['end'];

/**
 * Whether the answer about to be sent may be compressed at all: a compressible type (the
 * `compressible` package, mime-db's list: JSON, the metrics text), not a stream, not already
 * encoded, not marked `no-transform`, and a status and method that carry a body.
 */
function compressibleAnswer(req: Request, res: Response): boolean {
  if (req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return false;
  if (res.getHeader('Content-Encoding') !== undefined) return false;
  const type = res.getHeader('Content-Type');
  if (typeof type !== 'string' || STREAMED.test(type) || compressible(type) !== true) return false;
  const cacheControl = res.getHeader('Cache-Control');
  return !(
    typeof cacheControl === 'string' && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl)
  );
}

type AnyEnd = (...args: unknown[]) => Response;

/**
 * Compresses answers sent whole (`res.json`, `res.send`, `res.end(body)`: every JSON answer
 * and the metrics text) whose type is compressible and whose length is at least
 * `thresholdBytes`, with gzip or brotli as the client's `Accept-Encoding` prefers (gzip on a
 * tie: a fraction of brotli's CPU for a few bytes more). The body is compressed in one call
 * (node:zlib's one-shot API), not through a compression stream: for the few-kilobyte answers
 * this service sends, a stream per answer costs several times the compression itself.
 *
 * A body written in pieces (`res.write`: SSE, NDJSON, pull progress) is never compressed: its
 * headers are gone before the end, and a compressor would hold tokens back until its block
 * fills.
 */
export function createCompression(options: CompressionOptions): RequestHandler {
  const { thresholdBytes, logger } = options;
  // Symbols of this middleware, not of the module: a second one mounted on the same response
  // keeps its own original `end` (the first one's `compressingEnd`) and chains to it.
  /** The response's own `end`, kept while `compressingEnd` stands in for it. */
  const ORIGINAL_END: unique symbol = Symbol('compression.end');
  /** Set once `compressingEnd` ran: a second `end()` goes straight to the original. */
  const ENDED: unique symbol = Symbol('compression.ended');
  type CompressedResponse = Response & { [ORIGINAL_END]?: AnyEnd; [ENDED]?: boolean };
  /**
   * One function for every response, which finds its request and the original `end` on the
   * response itself. A closure per request stored on `res.end` kept each request's objects
   * alive through young-generation collections, into the old generation (`bench:profile --
   * --gc`: a POST answered 404 promoted 0.5–4.5 KB per request with it, none without; README,
   * Performance).
   */
  function compressingEnd(this: CompressedResponse, ...args: unknown[]): Response {
    const end = this[ORIGINAL_END]!;
    if (this[ENDED]) return end.apply(this, args);
    this[ENDED] = true;
    const req = this.req;
    const [chunk, encodingArg] = args;
    if (this.headersSent || chunk === undefined || chunk === null || typeof chunk === 'function') {
      return end.apply(this, args);
    }
    if (!compressibleAnswer(req, this)) return end.apply(this, args);
    this.vary('Accept-Encoding');
    const encoding = typeof encodingArg === 'string' ? (encodingArg as BufferEncoding) : 'utf8';
    const length =
      typeof chunk === 'string'
        ? Buffer.byteLength(chunk, encoding)
        : (chunk as Uint8Array).byteLength;
    if (length < thresholdBytes) return end.apply(this, args);
    const chosen = req.acceptsEncodings('gzip', 'br');
    if (chosen !== 'gzip' && chosen !== 'br') return end.apply(this, args);
    const body =
      typeof chunk === 'string'
        ? Buffer.from(chunk, encoding)
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk as Uint8Array);
    const codec = CODECS[chosen as Encoding];
    const callback = args.find((a): a is () => void => typeof a === 'function');
    const send = (encoded: Buffer): void => {
      this.setHeader('Content-Encoding', chosen);
      this.setHeader('Content-Length', encoded.length);
      end.call(this, encoded, callback);
    };
    if (body.length <= SYNC_MAX_BYTES) {
      send(codec.sync(body));
    } else {
      codec.async(body).then(send, (err: unknown) => {
        // zlib failing on a buffer is not the client's doing: send the body as it is.
        logger.warn('response compression failed; sent uncompressed', {
          error: err instanceof Error ? err.message : String(err),
        });
        end.call(this, body, callback);
      });
    }
    return this;
  }
  return (_req, res, next) => {
    const own = res as CompressedResponse;
    own[ORIGINAL_END] = res.end as AnyEnd;
    res.end = compressingEnd as End;
    next();
  };
}
