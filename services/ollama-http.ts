/**
 * The HTTP layer under the official `ollama` client: one undici Agent (keep-alive pool) shared
 * by every call, and a `fetch` per call that adds the call's deadline and abort signal (ollama-js
 * passes no signal on non-streamed calls), turns a non-2xx into a typed error before ollama-js
 * sees it, and records how far the answer got.
 */
import { Agent, fetch as undiciFetch, Response as UndiciResponse } from 'undici';
import { isAppError } from '../src/errors';
import { errorFromStatus, timeoutError, unavailableError } from './ollama-errors';

/** How long an idle pooled connection to Ollama stays open. */
const KEEP_ALIVE_MS = 30_000;
/** Longest error body read from Ollama (they are one short JSON line). */
const MAX_ERROR_BODY = 4096;

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * One call's deadline and cancellation: a single timer that is re-armed as the call moves
 * from "waiting for the answer" to "waiting for the next chunk", and a signal that aborts when
 * the timer fires (reason: OLLAMA_TIMEOUT) or when the caller's signal aborts (its reason).
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expired = false;

  constructor(caller?: AbortSignal) {
    this.signal = caller
      ? AbortSignal.any([caller, this.controller.signal])
      : this.controller.signal;
  }

  arm(phase: 'total' | 'first_byte' | 'idle', ms: number): void {
    clearTimeout(this.timer);
    if (this.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(timeoutError(phase, ms));
    }, ms);
    this.timer.unref();
  }

  /** Ends the call now (the consumer of a stream stopped reading or called abort()). */
  abort(reason: unknown = new DOMException('The Ollama call was aborted.', 'AbortError')): void {
    clearTimeout(this.timer);
    this.controller.abort(reason);
  }

  dispose(): void {
    clearTimeout(this.timer);
  }

  /** The call was ended by its caller (signal or abort()), not by one of our deadlines. */
  get cancelled(): boolean {
    return this.signal.aborted && !this.expired;
  }

  /**
   * What a failure really was when we can tell: an AppError stays; anything after an abort is
   * the abort's reason (a timeout, or the caller's own reason). Undefined otherwise.
   */
  explain(err: unknown): unknown {
    if (isAppError(err)) return err;
    if (this.signal.aborted) return this.signal.reason as unknown;
    return undefined;
  }
}

/** What one attempt observed, filled in by its fetch. */
export interface AttemptProbe {
  /** Response headers arrived. */
  responded: boolean;
  /** Called when the response headers arrive and for every body chunk after them. */
  onProgress?: () => void;
}

export interface OllamaTransport {
  /** A fetch for one attempt of one call, to hand to `new Ollama({ fetch })`. */
  fetchFor(deadline: CallDeadline, probe: AttemptProbe, modelScoped: boolean): FetchLike;
  /** Closes the pooled connections. */
  close(): Promise<void>;
}

export interface TransportOptions {
  /** Connections per origin in the pool (default unlimited). */
  connections?: number;
}

/** Builds the keep-alive pool. Our own deadlines replace undici's header/body timeouts. */
export function createOllamaTransport(options: TransportOptions = {}): OllamaTransport {
  const agent = new Agent({
    keepAliveTimeout: KEEP_ALIVE_MS,
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(options.connections ? { connections: options.connections } : {}),
  });
  return {
    fetchFor(deadline, probe, modelScoped) {
      return async (input, init) => {
        const signal = init?.signal
          ? AbortSignal.any([init.signal, deadline.signal])
          : deadline.signal;
        let res: UndiciResponse;
        try {
          res = await undiciFetch(input as string, {
            ...(init as Record<string, unknown>),
            signal,
            dispatcher: agent,
          });
        } catch (err) {
          throw deadline.explain(err) ?? unavailableError(err, false);
        }
        probe.responded = true;
        probe.onProgress?.();
        if (!res.ok) {
          const text = await readLimited(res, MAX_ERROR_BODY).catch(() => '');
          throw errorFromStatus(res.status, text, res.headers.get('retry-after'), modelScoped);
        }
        if (!res.body) return res as unknown as Response;
        const body = observeBody(res.body, deadline, probe);
        const wrapped = new UndiciResponse(body, {
          status: res.status,
          statusText: res.statusText,
          headers: res.headers,
        });
        return wrapped as unknown as Response;
      };
    },
    close: () => agent.close(),
  };
}

/**
 * Passes the body through chunk by chunk (nothing is buffered), reports each chunk, and turns
 * a failed read into a typed error so a stream cut in the middle surfaces as
 * OLLAMA_UNAVAILABLE (or the timeout / caller abort that caused it).
 */
function observeBody(
  source: ReadableStream<Uint8Array>,
  deadline: CallDeadline,
  probe: AttemptProbe,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        probe.onProgress?.();
        controller.enqueue(value);
      } catch (err) {
        controller.error(deadline.explain(err) ?? unavailableError(err, true));
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

async function readLimited(res: UndiciResponse, max: number): Promise<string> {
  const text = await res.text();
  return text.length > max ? text.slice(0, max) : text;
}
