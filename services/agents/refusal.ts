import { AppError, type ErrorCode } from '../../src/errors';
import type { AgentRun } from './types';

/**
 * The gateway's refusals: Ollama could not be asked (our queue, the circuit, a refused
 * connection, Ollama's own queue, a cloud rate limit, a shutdown). A client, a proxy or an
 * autoscaler acts on these by their HTTP status and Retry-After.
 */
const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'QUEUE_FULL',
  'QUEUE_TIMEOUT',
  'OLLAMA_UNAVAILABLE',
  'OLLAMA_BUSY',
  'OLLAMA_CLOUD_RATE_LIMITED',
  'MODEL_FAILING',
  'SHUTTING_DOWN',
]);

/** Retry-After when the refusal itself named none. */
const DEFAULT_RETRY_AFTER_S = 1;

/**
 * Whether a failed model call was a refusal: the gateway never reached Ollama (its queue, the
 * circuit, a refused connection), or Ollama turned the request away before any work (its full
 * queue, a cloud rate limit). `attempt.responded` is what the Ollama adapter reports of a call
 * that got as far as Ollama's answer headers.
 */
export function isRefusal(err: AppError): boolean {
  if (!REFUSALS.has(err.code)) return false;
  if (err.code === 'OLLAMA_BUSY' || err.code === 'OLLAMA_CLOUD_RATE_LIMITED') return true;
  if (err.code === 'MODEL_FAILING') return true;
  return (err as { attempt?: { responded?: boolean } }).attempt?.responded !== true;
}

/**
 * The HTTP refusal an answered run ends with instead of a run object, or undefined:
 * - a run refused before Ollama did any work (`error.details.refused`): its refusal's status
 *   (429 or 503) with Retry-After;
 * - a run stopped by the shutdown before any model step was answered: 503 SHUTTING_DOWN.
 * A run that got an answer from Ollama is the answer, with status `failed` or `cancelled`.
 */
export function refusalOf(run: AgentRun): AppError | undefined {
  if (run.status !== 'failed' && run.status !== 'cancelled') return undefined;
  const details = (run.error?.details ?? {}) as {
    error_code?: unknown;
    code?: unknown;
    refused?: unknown;
    retry_after_ms?: unknown;
  };
  const retryAfterMs = typeof details.retry_after_ms === 'number' ? details.retry_after_ms : 0;
  const options = {
    retryAfterS: retryAfterMs > 0 ? retryAfterMs / 1000 : DEFAULT_RETRY_AFTER_S,
    details: { run_id: run.id },
  };
  if (details.refused === true && typeof details.error_code === 'string') {
    return new AppError(details.error_code as ErrorCode, run.error?.message, options);
  }
  const answered = run.steps.some((s) => s.kind === 'model' && s.status === 'ok');
  if (details.code === 'SHUTTING_DOWN' && !answered) {
    return new AppError('SHUTTING_DOWN', run.error?.message, options);
  }
  return undefined;
}
