/**
 * How Ollama's failures become the gateway's error codes. Classification is by HTTP status and
 * by what the transport reported, never by message text (Ollama's wording changes per endpoint
 * and per version).
 */
import { AppError, isAppError, type AppErrorOptions, type ErrorCode } from '../../src/errors';
import type { InferenceOutcome } from '../metrics';

/** Retry-After sent with OLLAMA_BUSY when Ollama itself gives none. */
const BUSY_RETRY_AFTER_S = 1;
/**
 * Ollama's 400s for a prompt longer than the context (`truncate:false`, or `shift:false`): the
 * one classification by text, since these 400s carry no other mark (ollama-api.md §1.8, §2.3).
 */
const CONTEXT_EXCEEDED = /(longer than|exceeds) the context length/i;

/** Longest upstream message (4xx only) passed on to the client in `details`. */
const MAX_UPSTREAM_MESSAGE = 300;

/** Facts about one failed attempt, used by the retry policy (never shown to a client). */
export interface AttemptFailure {
  /** Response headers arrived before the failure (the request reached Ollama's handler). */
  responded: boolean;
  /** HTTP status when Ollama answered with a non-2xx. */
  status?: number;
  /**
   * The failure belongs to one model (a 500 on a model's call: load failure, out of memory,
   * runner crash, bad template; ollama-api.md §2.4), not to Ollama as a whole.
   */
  modelFailure?: boolean;
}

/** An AppError that also remembers how far its attempt got, for the retry policy. */
export class OllamaCallError extends AppError {
  constructor(
    code: ErrorCode,
    message: string | undefined,
    options: AppErrorOptions,
    readonly attempt: AttemptFailure,
  ) {
    super(code, message, options);
  }
}

/** The retry facts of an error (anything unclassified counts as "Ollama answered"). */
export function failureOf(err: unknown): AttemptFailure {
  return err instanceof OllamaCallError ? err.attempt : { responded: true };
}

/**
 * A non-2xx answer from Ollama. `modelScoped` says whether a 404 means "that model is not
 * installed" (show, chat, pull, delete…) rather than "wrong path" (version, tags, ps).
 */
export function errorFromStatus(
  status: number,
  bodyText: string,
  retryAfterHeader: string | null,
  modelScoped: boolean,
): AppError {
  const upstream = upstreamMessage(bodyText);
  const facts = { responded: true, status, modelFailure: modelScoped && status === 500 };
  if (status === 404 && modelScoped) {
    return new OllamaCallError('MODEL_NOT_FOUND', undefined, { cause: upstream }, facts);
  }
  const header = Number(retryAfterHeader);
  const retryAfterS = Number.isFinite(header) && header > 0 ? header : BUSY_RETRY_AFTER_S;
  if (status === 503) {
    return new OllamaCallError('OLLAMA_BUSY', undefined, { retryAfterS, cause: upstream }, facts);
  }
  // A 4xx describes the request the gateway forwarded (e.g. a model without tool support, an
  // invalid model name), so its text helps the caller; a 5xx text is Ollama's internals and
  // stays in the log.
  const details: Record<string, unknown> = { upstream_status: status };
  if (status < 500 && upstream) details.upstream_message = upstream.slice(0, MAX_UPSTREAM_MESSAGE);
  const cause = new Error(`Ollama answered ${status}: ${upstream}`);
  // 401/403/429 come from ollama.com through Ollama, for cloud models (ollama-api.md §1.13).
  const code =
    status === 400
      ? CONTEXT_EXCEEDED.test(upstream)
        ? 'OLLAMA_CONTEXT_EXCEEDED'
        : 'OLLAMA_BAD_REQUEST'
      : status === 401
        ? 'OLLAMA_CLOUD_UNAUTHORIZED'
        : status === 403
          ? 'OLLAMA_CLOUD_FORBIDDEN'
          : status === 429
            ? 'OLLAMA_CLOUD_RATE_LIMITED'
            : 'OLLAMA_UPSTREAM_ERROR';
  const options = status === 429 ? { details, cause, retryAfterS } : { details, cause };
  return new OllamaCallError(code, undefined, options, facts);
}

/** Ollama's reason: `{"error":"…"}` on its API, `{"error":{"message":"…"}}` on its `/v1`. */
function upstreamMessage(bodyText: string): string {
  try {
    const parsed = JSON.parse(bodyText) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    const message = (parsed.error as { message?: unknown } | null | undefined)?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON: Ollama's router answers 404/405 in plain text
  }
  return bodyText.trim();
}

/** The connection failed (refused, reset, DNS, socket closed) before or during the answer. */
export function unavailableError(cause: unknown, responded: boolean): AppError {
  const options = { cause, retryAfterS: BUSY_RETRY_AFTER_S };
  return new OllamaCallError('OLLAMA_UNAVAILABLE', undefined, options, { responded });
}

/** A deadline of ours expired; `phase` says which one. */
export function timeoutError(
  phase: 'total' | 'first_byte' | 'idle' | 'load',
  ms: number,
): AppError {
  const messages = {
    total: `Ollama did not answer within ${ms} ms.`,
    load: `Ollama did not finish loading the model within ${ms} ms.`,
    first_byte: `Ollama did not start answering within ${ms} ms.`,
    idle: `Ollama stopped sending for ${ms} ms in the middle of a stream.`,
  };
  return new OllamaCallError(
    'OLLAMA_TIMEOUT',
    messages[phase],
    { details: { phase } },
    { responded: phase === 'idle' },
  );
}

/** An `{"error":…}` line inside a stream, or a stream that ended without its final object. */
export function midStreamError(cause: unknown): AppError {
  return new OllamaCallError(
    'OLLAMA_UPSTREAM_ERROR',
    'Ollama failed in the middle of its answer.',
    { details: { phase: 'stream' }, cause },
    { responded: true, modelFailure: true },
  );
}

/**
 * An error line in a pull. Its text is about the registry (e.g. "file does not exist"), not
 * Ollama's internals, and says why the pull failed, so it is passed on (truncated).
 */
export function pullError(cause: unknown): AppError {
  const text = cause instanceof Error ? cause.message : String(cause);
  return new OllamaCallError(
    'OLLAMA_UPSTREAM_ERROR',
    'Ollama could not pull the model.',
    { details: { phase: 'pull', upstream_message: text.slice(0, MAX_UPSTREAM_MESSAGE) }, cause },
    { responded: true },
  );
}

/** The circuit breaker is open: fail fast until the next trial. */
export function circuitOpenError(retryAfterS: number): AppError {
  return new OllamaCallError(
    'OLLAMA_UNAVAILABLE',
    'Ollama is failing; requests are paused for a moment.',
    { retryAfterS, details: { circuit: 'open' } },
    { responded: false },
  );
}

/**
 * Errors that say Ollama as a whole is unhealthy, and so count toward opening the circuit:
 * transport failures, our deadlines, and Ollama's 503. A model's own failures (500s, a stream
 * cut by its runner) are counted per model instead ({@link isModelFailure}); a missing model, a
 * bad request, a full queue of ours or a caller that went away say nothing about Ollama.
 */
export function countsAsOllamaFailure(err: unknown): boolean {
  if (!isAppError(err)) return false;
  return (
    err.code === 'OLLAMA_UNAVAILABLE' || err.code === 'OLLAMA_TIMEOUT' || err.code === 'OLLAMA_BUSY'
  );
}

/** A failure of one model (Ollama answered 500 for it, or its runner cut the stream). */
export function isModelFailure(err: unknown): boolean {
  return err instanceof OllamaCallError && err.attempt.modelFailure === true;
}

/** A model failed too often in a row: refuse it for `retryAfterS` without calling Ollama. */
export function modelFailingError(model: string, retryAfterS: number): AppError {
  return new OllamaCallError(
    'MODEL_FAILING',
    undefined,
    { retryAfterS, details: { model } },
    { responded: false },
  );
}

/** The telemetry outcome of a failed call (`cancelled`: its caller ended it). */
export function outcomeOf(err: unknown, cancelled = false): InferenceOutcome {
  if (cancelled) return 'cancelled';
  if (!isAppError(err)) return 'error';
  switch (err.code) {
    case 'OLLAMA_TIMEOUT':
      return 'timeout';
    case 'OLLAMA_BUSY':
      return 'busy';
    case 'MODEL_FAILING':
      return 'circuit_open';
    case 'OLLAMA_UNAVAILABLE':
      return (err.details as { circuit?: string } | undefined)?.circuit === 'open'
        ? 'circuit_open'
        : 'unavailable';
    case 'MODEL_NOT_FOUND':
      return 'not_found';
    case 'QUEUE_FULL':
      return 'queue_full';
    case 'QUEUE_TIMEOUT':
      return 'queue_timeout';
    default:
      return 'error';
  }
}
