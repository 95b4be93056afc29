import type { Request } from 'express';
import type { AppError } from '../src/errors';
import type { FieldError } from '../src/validation';

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

/**
 * The first bad field of a request that failed its schema (VALIDATION_FAILED's details): these
 * shapes have no details, so it goes into the message (and OpenAI's `param`).
 */
function firstField(err: AppError): FieldError | undefined {
  const first: unknown = Array.isArray(err.details) ? err.details[0] : undefined;
  const field = first as Partial<FieldError> | undefined;
  return typeof field?.path === 'string' && typeof field.message === 'string'
    ? (field as FieldError)
    : undefined;
}

/** The message with the first bad field's reason: `The request is not valid: /stream must be boolean`. */
function messageOf(err: AppError, field: FieldError | undefined): string {
  if (!field) return err.message;
  return `${err.message.replace(/\.$/, '')}: ${field.path || '/'} ${field.message}`;
}

/** OpenAI's `param` for a JSON pointer in the body: `/messages/0/content` → `messages[0].content`. */
function openaiParam(field: FieldError | undefined): string | null {
  if (!field || field.in !== 'body' || field.path === '') return null;
  return field.path
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(
      (out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part),
      '',
    );
}

/** `{"error":{"message","type","param","code"}}`, OpenAI's shape, with the gateway's code. */
export const openaiErrorShape: ErrorShape = (err) => {
  const field = firstField(err);
  return {
    error: {
      message: messageOf(err, field),
      type: openaiType(err.status),
      param: openaiParam(field),
      code: err.code,
    },
  };
};

/** `{"error":"…"}`, Ollama's shape (ollama-js shows the text as the ResponseError's message). */
export const ollamaErrorShape: ErrorShape = (err) => ({ error: messageOf(err, firstField(err)) });

/**
 * The error shape of a path: OpenAI's under `/v1`, Ollama's under `/api` and at `/` (Ollama's
 * own root), the gateway's everywhere else (undefined).
 */
export function compatErrorShape(req: Request): ErrorShape | undefined {
  // Express routes paths without regard to case, so the shape must not depend on it either.
  const path = req.path.toLowerCase();
  if (path === '/v1' || path.startsWith('/v1/')) return openaiErrorShape;
  if (path === '/' || path === '/api' || path.startsWith('/api/')) return ollamaErrorShape;
  return undefined;
}
