import compression from 'compression';
import type { RequestHandler } from 'express';

/** Streamed bodies: every event must reach the client the moment it is written. */
const STREAMED = /^\s*(text\/event-stream|application\/x-ndjson)\s*(;|$)/i;

export interface CompressionOptions {
  /** Bodies below this many bytes are sent as they are (the header costs more than it saves). */
  thresholdBytes: number;
}

/**
 * Compresses answers whose type is compressible (JSON, the metrics text) and whose length is
 * at least `thresholdBytes`, with gzip or brotli as the client's `Accept-Encoding` prefers
 * (the `compression` package; brotli at quality 4, its default for live answers). SSE and
 * NDJSON streams are never compressed: a compressor holds bytes back until its block fills,
 * which would batch tokens and progress lines.
 */
export function createCompression(options: CompressionOptions): RequestHandler {
  return compression({
    threshold: options.thresholdBytes,
    filter: (req, res) => {
      const type = res.getHeader('Content-Type');
      if (typeof type === 'string' && STREAMED.test(type)) return false;
      return compression.filter(req, res);
    },
  });
}
