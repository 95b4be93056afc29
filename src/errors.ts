/**
 * The one vocabulary of errors. Every error a client can see has a stable code declared
 * here once, with its HTTP status; clients and tests match on codes, never on message text.
 * A service throws `new AppError('MODEL_NOT_FOUND', ...)`; the terminal error handler turns
 * it into `{"error":{"code","message","details"?,"request_id"}}`.
 */

export const ERROR_CATALOG = {
  // 4xx: the caller can fix these.
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  VALIDATION_FAILED: { status: 400, message: 'The request is not valid.' },
  OLLAMA_BAD_REQUEST: { status: 400, message: 'Ollama refused the request as invalid.' },
  OLLAMA_CONTEXT_EXCEEDED: {
    status: 400,
    message: "The conversation no longer fits the model's context length.",
  },
  UNAUTHENTICATED: { status: 401, message: 'A valid API key is required.' },
  FORBIDDEN: { status: 403, message: 'This API key may not do this.' },
  NOT_FOUND: { status: 404, message: 'No such resource.' },
  MODEL_NOT_FOUND: { status: 404, message: 'The model is not installed in Ollama.' },
  AGENT_NOT_FOUND: { status: 404, message: 'No agent with this name.' },
  RUN_NOT_FOUND: { status: 404, message: 'No run with this id.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed on this path.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time.' },
  SWITCH_IN_PROGRESS: { status: 409, message: 'Another model switch is in progress.' },
  MODEL_IN_USE: { status: 409, message: 'The model is the active model.' },
  IDEMPOTENCY_CONFLICT: {
    status: 409,
    message: 'This Idempotency-Key was used with a different request body.',
  },
  IDEMPOTENCY_RUN_EXPIRED: {
    status: 409,
    message:
      'The run this Idempotency-Key started is no longer kept; send the request with a new key to run it again.',
  },
  RUN_NOT_PAUSED: {
    status: 409,
    message: 'The run is not waiting for tool outputs or approvals.',
  },
  TOOL_CALL_CONFLICT: {
    status: 409,
    message: 'The run is not waiting for these tool calls.',
  },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  EXPECTATION_FAILED: {
    status: 417,
    message: 'The Expect header asks for something this server does not do (only 100-continue).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'The request body must be JSON (Content-Type: application/json).',
  },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  OLLAMA_CLOUD_RATE_LIMITED: {
    status: 429,
    message: 'The Ollama cloud model is rate limited; retry later.',
  },
  QUEUE_FULL: { status: 429, message: 'Too many requests are waiting for Ollama; retry later.' },
  TOO_MANY_RUNS: { status: 429, message: 'Too many agent runs are in progress; retry later.' },
  TOKEN_BUDGET_EXCEEDED: {
    status: 429,
    message: "This API key's token budget is used up until it resets.",
  },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  // 5xx: the service or what it depends on failed.
  INTERNAL_ERROR: { status: 500, message: 'Internal error.' },
  OLLAMA_UPSTREAM_ERROR: { status: 502, message: 'Ollama answered with an error.' },
  OLLAMA_CLOUD_UNAUTHORIZED: {
    status: 502,
    message: 'Ollama is not signed in to ollama.com, so it cannot run cloud models.',
  },
  OLLAMA_CLOUD_FORBIDDEN: {
    status: 502,
    message: "Ollama's ollama.com account may not use this cloud model.",
  },
  OLLAMA_UNAVAILABLE: { status: 503, message: 'Ollama is not reachable.' },
  OLLAMA_BUSY: { status: 503, message: 'Ollama is busy; retry later.' },
  MODEL_FAILING: {
    status: 503,
    message: 'This model keeps failing in Ollama; requests for it are paused for a moment.',
  },
  REDIS_UNAVAILABLE: {
    status: 503,
    message: 'The shared store (Redis) is not reachable; retry later.',
  },
  QUEUE_TIMEOUT: { status: 503, message: 'Timed out waiting for a free Ollama slot.' },
  SHUTTING_DOWN: { status: 503, message: 'The service is shutting down.' },
  OLLAMA_TIMEOUT: { status: 504, message: 'Ollama did not answer in time.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export interface AppErrorOptions {
  /** Machine-readable facts for the client (bad fields, limits). Must be safe to show. */
  details?: unknown;
  /** The underlying error, kept for the log; never sent to the client. */
  cause?: unknown;
  /** Seconds, sent as a Retry-After header. */
  retryAfterS?: number;
  /** Extra response headers (e.g. RateLimit headers). */
  headers?: Record<string, string>;
}

/** An error with a catalogued code. Its message is shown to the client, so keep it free of internals. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  readonly retryAfterS: number | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, options: AppErrorOptions = {}) {
    super(message ?? ERROR_CATALOG[code].message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.details = options.details;
    this.retryAfterS = options.retryAfterS;
    this.headers = options.headers ?? {};
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; request_id: string };
}

export function errorBody(err: AppError, requestId: string): ErrorBody {
  const error: ErrorBody['error'] = { code: err.code, message: err.message, request_id: requestId };
  if (err.details !== undefined) error.details = err.details;
  return { error };
}

/**
 * The one rule from any thrown value to an AppError. Errors raised by Express's body parser
 * carry a `type` and `status`; anything unknown becomes INTERNAL_ERROR, whose generic message
 * hides the original (the original goes to the log as `cause`).
 */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: unknown; status?: unknown; limit?: unknown } | null;
  if (e && typeof e === 'object') {
    if (e.type === 'entity.parse.failed')
      return new AppError('INVALID_JSON', undefined, { cause: err });
    if (e.type === 'entity.too.large') {
      return new AppError('PAYLOAD_TOO_LARGE', undefined, {
        cause: err,
        details: typeof e.limit === 'number' ? { limit_bytes: e.limit } : undefined,
      });
    }
    if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
      return new AppError('UNSUPPORTED_MEDIA_TYPE', 'The request body encoding is not supported.', {
        cause: err,
      });
    }
    if (e.type === 'request.aborted' || e.type === 'request.size.invalid') {
      return new AppError('VALIDATION_FAILED', 'The request body was incomplete.', { cause: err });
    }
    // A 400 from the body parser without a `type`: e.g. a zlib error on a bad gzip body,
    // wrapped by http-errors (which marks client errors `expose`).
    const exposed = (e as { expose?: unknown }).expose === true;
    if (e.status === 400 && (typeof e.type === 'string' || exposed)) {
      return new AppError('VALIDATION_FAILED', 'The request body could not be read.', {
        cause: err,
      });
    }
    // The router's 400 for a path parameter whose %-escapes do not decode (`/agents/runs/%ZZ`).
    if (e.status === 400 && err instanceof URIError) {
      return new AppError('VALIDATION_FAILED', 'A path segment is not valid percent-encoding.', {
        cause: err,
      });
    }
  }
  return new AppError('INTERNAL_ERROR', undefined, { cause: err });
}
