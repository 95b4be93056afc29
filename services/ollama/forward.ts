/**
 * Raw forwarding of one HTTP request to Ollama, for the drop-in `/v1` and `/api` endpoints: the
 * body goes out as the client sent it and the answer comes back as byte chunks, as they arrive,
 * never parsed here. It rides the same keep-alive pool, circuit breaker, retry policy and
 * admission queue as the typed calls in ollama-client.ts.
 */
import type { Clock } from '../../src/clock';
import type { Config } from '../../src/config';
import type { Slot } from './admission';
import type { Circuit } from './circuit';
import {
  CallDeadline,
  type AttemptProbe,
  type DeadlineClock,
  type OllamaTransport,
} from './transport';
import { withRetries } from './retry';
import type { CallOptions, CallTimings } from './types';

/**
 * What a forwarded call is: a `generation` waits for an admission slot and is retried only when
 * Ollama never saw it; a `read` is retried; an `admin` call (pull, delete, create…) never is.
 */
export type ForwardKind = 'generation' | 'read' | 'admin';

export interface ForwardRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  /** Ollama's path, e.g. `/v1/chat/completions` or `/api/chat`. */
  path: string;
  /** The JSON body to send, already serialised. */
  body?: string;
  kind: ForwardKind;
  /**
   * The answer is a stream: a first-byte deadline, then an idle deadline re-armed per chunk.
   * Otherwise one whole-call deadline (OLLAMA_TIMEOUT_MS or `timeoutMs`).
   */
  streamed: boolean;
  /** A 404 from this path means "model not installed" (MODEL_NOT_FOUND), not "no such path". */
  modelScoped: boolean;
  /** The model the body names, when it names one: where it is loaded decides the backend. */
  model?: string;
  /**
   * What a generation does to its model's load (ignored for other kinds):
   * - `gateway`: the gateway loads the model first through its own load table, as for agent
   *   runs, so the first-byte deadline starts once the model is loaded and a client that
   *   leaves does not throw a half-done load away (ollama-api.md §3.5a);
   * - `unload`: the request unloads the model (`keep_alive` 0); nothing is loaded first;
   * - undefined: the request sets load-time options of its own, so Ollama loads (or reloads)
   *   the model as the request asks, within the request's deadlines.
   */
  load?: 'gateway' | 'unload';
}

/** Ollama's answer: status and content type, then the body chunks as they arrive. */
export interface ForwardResponse extends AsyncIterable<Uint8Array> {
  status: number;
  contentType: string | null;
  /** Queue wait and first byte are known when it resolves; `ollamaMs` once the body ended. */
  readonly timings: CallTimings;
  /** Stops the upstream request (also happens when the caller's signal aborts). */
  abort(): void;
}

export type ForwardConfig = Pick<
  Config,
  | 'OLLAMA_HOST'
  | 'OLLAMA_TIMEOUT_MS'
  | 'OLLAMA_FIRST_BYTE_TIMEOUT_MS'
  | 'OLLAMA_STREAM_IDLE_TIMEOUT_MS'
  | 'OLLAMA_RETRY_MAX'
  | 'OLLAMA_RETRY_BASE_MS'
>;

/** A generation's model breaker trial, set by `admit` once the breaker lets the call through. */
export interface GenerationCall {
  trial: boolean;
}

/** How a forwarded generation ended (see `ForwarderDeps.settle`). */
export interface GenerationEnd {
  error?: unknown;
  cancelled: boolean;
  sent: boolean;
}

export interface ForwarderDeps {
  config: ForwardConfig;
  transport: OllamaTransport;
  circuit: Circuit;
  /**
   * Admits a generation as the typed calls are admitted: the circuits, the model's load when
   * `req.load` is `gateway`, then an admission slot.
   */
  admit(req: ForwardRequest, opts: CallOptions | undefined, call: GenerationCall): Promise<Slot>;
  /**
   * How a generation on `req.model` ended, for the model's breaker and the load table: `error`
   * undefined when answered in full, `cancelled` when its caller left, `sent` once the client's
   * request went to Ollama (before that, a failure is the gateway's own: its load, the queue).
   */
  settle(req: ForwardRequest, call: GenerationCall, end: GenerationEnd): void;
  /** The Ollama service's retry policy for a kind of call. */
  shouldRetry: (kind: 'read' | 'generation' | 'none') => (err: unknown) => boolean;
  now: () => number;
  /** Call deadlines and the waits between retries. */
  clock: DeadlineClock & Pick<Clock, 'sleep'>;
  random?: () => number;
}

export type Forward = (req: ForwardRequest, opts?: CallOptions) => Promise<ForwardResponse>;

interface BodyReader {
  read(): Promise<{ done: boolean; value: Uint8Array | undefined }>;
  cancel(): Promise<void>;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * Builds the forwarder. A call resolves when Ollama's headers arrived: a non-2xx rejects with
 * the typed error of ollama-errors.ts (MODEL_NOT_FOUND, OLLAMA_BUSY, OLLAMA_UPSTREAM_ERROR…), as
 * do QUEUE_FULL, QUEUE_TIMEOUT, an open circuit and our deadlines. A failure while the body is
 * read is thrown by the iterator. The slot is held until the body ended or was abandoned.
 */
export function createForwarder(deps: ForwarderDeps): Forward {
  const { config, transport, circuit, now } = deps;
  const base = config.OLLAMA_HOST.replace(/\/+$/, '');
  return async (req, opts) => {
    const timings: CallTimings = { queueMs: 0 };
    const deadline = new CallDeadline(opts?.signal, deps.clock);
    const generation = req.kind === 'generation';
    const call: GenerationCall = { trial: false };
    let slot: Slot | undefined;
    let sent = false;
    try {
      if (generation) {
        slot = await deps.admit(req, opts, call);
        timings.queueMs = slot.waitedMs;
      }
      const sentAt = now();
      if (req.streamed) deadline.arm('first_byte', config.OLLAMA_FIRST_BYTE_TIMEOUT_MS);
      else deadline.arm('total', opts?.timeoutMs ?? config.OLLAMA_TIMEOUT_MS);
      // Admin streams (pull, push, create) go quiet while Ollama verifies or writes a blob.
      const idleMs =
        req.kind === 'admin' ? config.OLLAMA_TIMEOUT_MS : config.OLLAMA_STREAM_IDLE_TIMEOUT_MS;
      const onProgress = req.streamed ? () => deadline.arm('idle', idleMs) : undefined;
      const retry = req.kind === 'admin' ? 'none' : req.kind;
      sent = true;
      const res = await circuit.run(() =>
        withRetries(
          () => {
            const probe: AttemptProbe = { responded: false, onProgress };
            return transport.fetchFor(
              deadline,
              probe,
              req.modelScoped,
            )(`${base}${req.path}`, {
              method: req.method,
              headers: req.body === undefined ? {} : { 'content-type': 'application/json' },
              body: req.body,
            });
          },
          {
            retries: retry === 'none' ? 0 : config.OLLAMA_RETRY_MAX,
            baseMs: config.OLLAMA_RETRY_BASE_MS,
            shouldRetry: deps.shouldRetry(retry),
            signal: deadline.signal,
            clock: deps.clock,
            random: deps.random,
          },
        ),
      );
      timings.firstByteMs = now() - sentAt;
      const reader = res.body?.getReader() as BodyReader | undefined;
      const held = slot;
      let iterated = false;
      let finished = false;
      /**
       * The body was read to its end (`complete`), broke off (`failure`, `cancelled` when its
       * caller ended it), or was abandoned (neither).
       */
      const finish = (complete: boolean, failure?: unknown, cancelled = true): void => {
        if (finished) return;
        finished = true;
        deadline.dispose();
        held?.release();
        timings.ollamaMs = now() - sentAt;
        if (!generation) return;
        if (complete) deps.settle(req, call, { cancelled: false, sent });
        else deps.settle(req, call, { error: failure, cancelled, sent });
      };
      /** Breaks the body off: the upstream call is aborted and its slot released. */
      const breakOff = async (failure?: unknown, cancelled = true): Promise<void> => {
        deadline.abort();
        await reader?.cancel().catch(() => undefined);
        finish(false, failure, cancelled);
      };
      /**
       * The body's chunks as they arrive. A plain iterator rather than an async generator: one
       * promise per chunk instead of several. (With the forwarder called straight from a
       * handler, a generator here also made each call's objects outlive a young collection:
       * 4.9 KB promoted per answered `/v1` chat against 0.1; README, Performance.)
       */
      const chunks = (body: BodyReader): AsyncIterator<Uint8Array, undefined> => {
        let over = false;
        return {
          async next() {
            if (over) return DONE;
            try {
              for (;;) {
                const next = await body.read();
                if (next.done) break;
                if (next.value) return { done: false, value: next.value };
              }
            } catch (err) {
              over = true;
              // Read before breakOff's abort, which would make any failure look cancelled.
              await breakOff(deadline.explain(err) ?? err, deadline.cancelled);
              throw err;
            }
            over = true;
            finish(true);
            return DONE;
          },
          async return() {
            if (!over) {
              over = true;
              await breakOff();
            }
            return DONE;
          },
          // A failure handed in by the reader ends the call as one read here would.
          async throw(err?: unknown) {
            if (!over) {
              over = true;
              await breakOff(deadline.explain(err) ?? err, deadline.cancelled);
            }
            throw err;
          },
        };
      };
      return {
        status: res.status,
        contentType: res.headers.get('content-type'),
        timings,
        abort() {
          deadline.abort();
          if (!iterated) finish(false);
        },
        [Symbol.asyncIterator]() {
          if (iterated) throw new Error('A forwarded response can be read only once.');
          iterated = true;
          if (!reader) {
            finish(true);
            return { next: () => Promise.resolve(DONE) };
          }
          return chunks(reader);
        },
      };
    } catch (err) {
      deadline.dispose();
      slot?.release();
      const explained = deadline.explain(err) ?? err;
      if (generation) {
        deps.settle(req, call, { error: explained, cancelled: deadline.cancelled, sent });
      }
      throw explained;
    }
  };
}
