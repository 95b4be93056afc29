import type { IncomingMessage, ServerResponse } from 'node:http';

export const JSON_TYPE = 'application/json; charset=utf-8';
export const NDJSON_TYPE = 'application/x-ndjson';
export const TEXT_TYPE = 'text/plain; charset=utf-8';

/** The scheduler's queue-full text; the two spaces after the period are Ollama's. */
export const SERVER_BUSY = 'server busy, please try again.  maximum pending requests exceeded';

/**
 * An error answered as `{"error":message}` (or the OpenAI shape on /v1) with `status`; with
 * `body`, that exact body (and `headers`) on every route, as Ollama's cloud passthrough does.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly raw?: { body: unknown; headers?: Record<string, string> },
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  type = JSON_TYPE,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string) {
  res.writeHead(status, { 'Content-Type': TEXT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Gin's `c.Status(200)`: no content type, zero-length body (delete, copy). */
export function sendEmpty(res: ServerResponse, status = 200) {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Parse a request body the way Ollama's handlers reject it: empty → `missing request body`,
 * anything that is not a JSON object → a Go-decoder-like message (exact Go text unconfirmed).
 */
export function parseJsonObject(raw: string): Record<string, unknown> {
  if (raw.trim() === '') throw new HttpError(400, 'missing request body');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    const first = raw.trim().charAt(0);
    const message = /^[{["0-9tfn-]/.test(first)
      ? 'unexpected EOF'
      : `invalid character '${first}' looking for beginning of value`;
    throw new HttpError(400, message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'json: cannot unmarshal non-object into Go value');
  }
  return value as Record<string, unknown>;
}

/** Resolves when the signal aborts (never, otherwise). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}

/** A string field, or undefined when absent; a wrong JSON type is a 400 like Go's decoder. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new HttpError(
      400,
      `json: cannot unmarshal ${typeof value} into Go struct field .${key} of type string`,
    );
  }
  return value;
}
