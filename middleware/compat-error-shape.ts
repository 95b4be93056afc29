import type { Request } from 'express';
import type { AppError } from '../src/errors';

/** Builds an error body for one API; the request id travels in the X-Request-Id header. */
export type ErrorShape = (err: AppError, requestId: string) => unknown;

/** OpenAI's error `type` for a status (what its SDKs and docs use); our code goes in `code`. */
function openaiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return 'api_error';
}

/** `{"error":{"message","type","param","code"}}`, OpenAI's shape, with the gateway's code. */
export const openaiErrorShape: ErrorShape = (err) => ({
  error: { message: err.message, type: openaiType(err.status), param: null, code: err.code },
});

/** `{"error":"…"}`, Ollama's shape (ollama-js shows the text as the ResponseError's message). */
export const ollamaErrorShape: ErrorShape = (err) => ({ error: err.message });

/**
 * The error shape of a path: OpenAI's under `/v1`, Ollama's under `/api` and at `/` (Ollama's
 * own root), the gateway's everywhere else (undefined).
 */
export function compatErrorShape(req: Request): ErrorShape | undefined {
  const path = req.path;
  if (path === '/v1' || path.startsWith('/v1/')) return openaiErrorShape;
  if (path === '/' || path === '/api' || path.startsWith('/api/')) return ollamaErrorShape;
  return undefined;
}
