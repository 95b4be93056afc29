/**
 * The HTTP layer under the official `ollama` client: one undici Agent (keep-alive pool) shared
 * by every call, and a `fetch` per call that adds the call's deadline and abort signal (ollama-js
 * passes no signal on non-streamed calls), turns a non-2xx into a typed error before ollama-js
 * sees it, and records how far the answer got.
 */
import { Agent, request as undiciRequest, type Dispatcher } from 'undici';
import type { Clock, TimerHandle } from '../../src/clock';
import { isAppError } from '../../src/errors';
import { errorFromStatus, timeoutError, unavailableError } from './errors';
import { NdjsonLines } from './ndjson';

/** How long an idle pooled connection to Ollama stays open. */
const KEEP_ALIVE_MS = 30_000;
/** Longest error body read from Ollama (they are one short JSON line). */
const MAX_ERROR_BODY = 4096;

/** The phases of a call's deadline; see {@link timeoutError} for what each means. */
export type DeadlinePhase = 'total' | 'first_byte' | 'idle' | 'load';

/** The clock a deadline runs on (the service's, so a test drives deadlines by hand). */
export type DeadlineClock = Pick<Clock, 'now' | 'after'>;

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * One call's deadline and cancellation: a single timer that is re-armed as the call moves
 * from "waiting for the answer" to "waiting for the next chunk", and a signal that aborts when
 * the timer fires (reason: OLLAMA_TIMEOUT) or when a followed signal (the caller's, ollama-js's)
 * aborts (its reason).
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private timer: TimerHandle | undefined;
  private expired = false;
  private phase: DeadlinePhase | undefined;
  private phaseMs = 0;
  /** clock.now() of the last idle re-arm; the idle timer checks it when it fires. */
  private lastProgress = 0;
  private readonly unfollow: Array<() => void> = [];

  constructor(
    caller: AbortSignal | undefined,
    private readonly clock: DeadlineClock,
  ) {
    this.signal = this.controller.signal;
    this.follow(caller);
  }

  /** Aborts this call when `signal` aborts, with its reason (AbortSignal.any without its cost). */
  follow(signal: AbortSignal | undefined): void {
    if (!signal) return;
    if (signal.aborted) {
      this.abort(signal.reason);
      return;
    }
    const onAbort = (): void => this.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.unfollow.push(() => signal.removeEventListener('abort', onAbort));
  }

  arm(phase: DeadlinePhase, ms: number): void {
    if (this.signal.aborted) return;
    // Streams re-arm the idle deadline on every chunk: only note the time, and let the running
    // timer check it when it fires (one timer per call instead of one per chunk).
    if (phase === 'idle' && this.phase === 'idle' && this.phaseMs === ms && this.timer) {
      this.lastProgress = this.clock.now();
      return;
    }
    this.timer?.cancel();
    this.phase = phase;
    this.phaseMs = ms;
    this.lastProgress = this.clock.now();
    this.schedule(ms);
  }

  private schedule(delayMs: number): void {
    this.timer = this.clock.after(delayMs, () => {
      const idleFor = this.clock.now() - this.lastProgress;
      if (this.phase === 'idle' && idleFor < this.phaseMs) {
        this.schedule(this.phaseMs - idleFor);
        return;
      }
      this.expired = true;
      this.controller.abort(timeoutError(this.phase ?? 'total', this.phaseMs));
    });
  }

  /** Ends the call now (the consumer of a stream stopped reading or called abort()). */
  abort(reason: unknown = new DOMException('The Ollama call was aborted.', 'AbortError')): void {
    this.timer?.cancel();
    this.controller.abort(reason);
  }

  dispose(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (const remove of this.unfollow.splice(0)) remove();
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

/** One piece of an answer's body and when it arrived (clock ms). */
export interface BodyChunk {
  data: Buffer;
  at: number;
}

export interface OllamaTransport {
  /** A fetch for one attempt of one call, to hand to `new Ollama({ fetch })`. */
  fetchFor(deadline: CallDeadline, probe: AttemptProbe, modelScoped: boolean): FetchLike;
  /**
   * POSTs a JSON `body` to `url` and reads the whole answer as it arrives, reporting every chunk
   * to the probe (so a streamed answer keeps its idle deadline) without a consumer per chunk.
   * A non-2xx, a cut body, a deadline or the caller's abort reject with the same typed errors
   * as `fetchFor`'s.
   */
  readAll(
    url: string,
    body: string,
    call: { deadline: CallDeadline; probe: AttemptProbe; modelScoped: boolean; now: () => number },
  ): Promise<BodyChunk[]>;
  /**
   * POSTs a JSON `body` to `url` and resolves, once Ollama answered, with its NDJSON answer as
   * it arrives: each line parsed, every chunk reported to the probe. A line that is not JSON is
   * Ollama failing mid-answer; a failed read rejects with the typed error (the deadline's, the
   * caller's abort reason, or OLLAMA_UNAVAILABLE for a cut connection). `abort()` drops the
   * connection.
   */
  streamLines(
    url: string,
    body: string,
    call: { deadline: CallDeadline; probe: AttemptProbe; modelScoped: boolean },
  ): Promise<AsyncIterable<unknown> & { abort(): void }>;
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
  /** Sends one request; a refusal or a non-2xx becomes the typed error Ollama's answer means. */
  async function send(
    url: string,
    init: Pick<Dispatcher.RequestOptions, 'method' | 'headers' | 'body'>,
    deadline: CallDeadline,
    probe: AttemptProbe,
    modelScoped: boolean,
  ): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(url, { ...init, signal: deadline.signal, dispatcher: agent });
    } catch (err) {
      throw deadline.explain(err) ?? unavailableError(err, false);
    }
    probe.responded = true;
    probe.onProgress?.();
    if (res.statusCode < 200 || res.statusCode > 299) {
      const text = await readLimited(res, MAX_ERROR_BODY).catch(() => '');
      throw errorFromStatus(res.statusCode, text, header(res, 'retry-after'), modelScoped);
    }
    return res;
  }

  const postJson = (
    url: string,
    body: string,
    call: { deadline: CallDeadline; probe: AttemptProbe; modelScoped: boolean },
  ): Promise<Dispatcher.ResponseData> =>
    send(
      url,
      { method: 'POST', headers: JSON_HEADERS, body },
      call.deadline,
      call.probe,
      call.modelScoped,
    );

  return {
    fetchFor(deadline, probe, modelScoped) {
      return async (input, init) => {
        // ollama-js passes a signal of its own on streamed calls (its iterator's abort()):
        // forward it into the deadline instead of combining signals with AbortSignal.any,
        // which is costly per call in Node 20.
        deadline.follow(init?.signal ?? undefined);
        const res = await send(
          String(input),
          {
            method: (init?.method ?? 'GET') as Dispatcher.HttpMethod,
            headers: init?.headers as Record<string, string> | undefined,
            body: init?.body as string | undefined,
          },
          deadline,
          probe,
          modelScoped,
        );
        return lightResponse(res, deadline, probe) as unknown as Response;
      };
    },
    async readAll(url, body, call) {
      const { deadline, probe, now } = call;
      const res = await postJson(url, body, call);
      const chunks: BodyChunk[] = [];
      return new Promise((resolve, reject) => {
        res.body.on('data', (data: Buffer) => {
          chunks.push({ data, at: now() });
          probe.onProgress?.();
        });
        res.body.once('end', () => resolve(chunks));
        res.body.once('error', (err) =>
          reject(deadline.explain(err) ?? unavailableError(err, true)),
        );
        // Closed without an end or an error (destroyed quietly): the answer is cut all the same.
        res.body.once('close', () => {
          if (res.body.readableEnded || res.body.errored) return;
          reject(
            deadline.explain(undefined) ??
              unavailableError(new Error('The answer ended before it was complete.'), true),
          );
        });
      });
    },
    async streamLines(url, body, call) {
      const { deadline, probe } = call;
      const res = await postJson(url, body, call);
      return {
        async *[Symbol.asyncIterator]() {
          const lines = new NdjsonLines();
          try {
            for await (const data of res.body as AsyncIterable<Buffer>) {
              probe.onProgress?.();
              for (const line of lines.push(data)) yield line;
            }
            for (const line of lines.end()) yield line;
          } catch (err) {
            throw deadline.explain(err) ?? unavailableError(err, true);
          }
        },
        abort: () => res.body.destroy(),
      };
    },
    close: () => agent.close(),
  };
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

function header(res: Dispatcher.ResponseData, name: string): string | null {
  const value = res.headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

/**
 * The part of a fetch `Response` that ollama-js reads (ok, status, headers.get, json, text and
 * body.getReader), over undici's Node stream. A WHATWG fetch Response and ReadableStream cost
 * several times more CPU per chunk, and every Ollama answer is dozens of chunks.
 * Chunks pass through as they arrive (nothing is buffered); each is reported to the probe, and
 * a failed read becomes a typed error, so a stream cut in the middle surfaces as
 * OLLAMA_UNAVAILABLE (or the timeout / caller abort that caused it).
 */
function lightResponse(res: Dispatcher.ResponseData, deadline: CallDeadline, probe: AttemptProbe) {
  const failed = (err: unknown): unknown => deadline.explain(err) ?? unavailableError(err, true);
  const text = async (): Promise<string> => {
    try {
      return await res.body.text();
    } catch (err) {
      throw failed(err);
    }
  };
  return {
    ok: true,
    status: res.statusCode,
    statusText: '',
    headers: { get: (name: string) => header(res, name.toLowerCase()) },
    text,
    json: async (): Promise<unknown> => JSON.parse(await text()),
    body: {
      getReader() {
        const chunks = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        return {
          async read(): Promise<{ done: boolean; value: Uint8Array | undefined }> {
            try {
              const { done, value } = await chunks.next();
              if (done) return { done: true, value: undefined };
              probe.onProgress?.();
              return { done: false, value: value as Uint8Array };
            } catch (err) {
              throw failed(err);
            }
          },
          releaseLock(): void {},
          async cancel(): Promise<void> {
            res.body.destroy();
          },
        };
      },
    },
  };
}

/** The first `max` bytes of an error body as text; the rest is not read (the body is dropped). */
async function readLimited(res: Dispatcher.ResponseData, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= max) break;
  }
  // Breaking out of the loop destroys the body, which closes that connection.
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}
