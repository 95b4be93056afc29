import type { RequestHandler, Response } from 'express';

/** The timings of one upstream call, as the Ollama adapter reports them. */
export interface UpstreamTimings {
  /** Wait in the gateway's admission queue, ms. */
  queueMs: number;
  /** Until the first byte (streams) or the answer (non-streamed), ms. */
  firstByteMs?: number;
  /** Until the last byte, ms. */
  ollamaMs?: number;
}

/** What the router recorded for one answer: the Ollama calls' timings, summed. */
interface RecordedTimings {
  queueMs: number;
  ollamaMs: number;
  firstByteMs: number | undefined;
  calls: number;
}

declare module 'express-serve-static-core' {
  interface Locals {
    /** Set by {@link recordTimings}; read by the server-timing middleware. */
    ollamaTimings?: RecordedTimings;
  }
}

/**
 * Adds the timings of one Ollama call to the answer being built. Call it after each call of an
 * inference answer (an agent run makes several: they are summed; `ollama_ttfb` is the first
 * call's) and before the response headers are written; later calls do not change sent headers.
 */
export function recordTimings(res: Response, timings: UpstreamTimings): void {
  const t = res.locals.ollamaTimings;
  const ollamaMs = timings.ollamaMs ?? timings.firstByteMs ?? 0;
  if (!t) {
    res.locals.ollamaTimings = {
      queueMs: timings.queueMs,
      ollamaMs,
      firstByteMs: timings.firstByteMs,
      calls: 1,
    };
    return;
  }
  t.queueMs += timings.queueMs;
  t.ollamaMs += ollamaMs;
  t.calls += 1;
}

const ms = (n: number): string => (Math.round(n * 10) / 10).toFixed(1);

/** The header values for an answer that took `totalMs` in the gateway. */
export function serverTimingHeaders(
  t: RecordedTimings,
  totalMs: number,
): { 'Server-Timing': string; 'X-Response-Time': string } {
  const gatewayMs = Math.max(0, totalMs - t.queueMs - t.ollamaMs);
  const parts = [
    `gateway;dur=${ms(gatewayMs)};desc="gateway"`,
    `queue;dur=${ms(t.queueMs)};desc="admission queue"`,
    `ollama;dur=${ms(t.ollamaMs)};desc="Ollama (${t.calls} call${t.calls === 1 ? '' : 's'})"`,
  ];
  if (t.firstByteMs !== undefined) {
    parts.push(`ollama_ttfb;dur=${ms(t.firstByteMs)};desc="Ollama first byte"`);
  }
  parts.push(`total;dur=${ms(totalMs)}`);
  return { 'Server-Timing': parts.join(', '), 'X-Response-Time': `${ms(totalMs)}ms` };
}

/** When the request started, and the clock to read at the end (per app, for tests). */
const STARTED = Symbol('serverTimingStarted');
const CLOCK = Symbol('serverTimingClock');
const PATCHED = Symbol('serverTimingPatched');

type Timed = Response & { [STARTED]?: bigint; [CLOCK]?: () => bigint };

/**
 * Wraps `writeHead` on `target`: Express and Node write headers through it (explicitly or on
 * the first write), so it is the last moment a header can be added.
 */
function patchWriteHead(target: object): void {
  const writeHead = (target as Response).writeHead;
  Object.defineProperty(target, 'writeHead', {
    configurable: true,
    writable: true,
    value: function (this: Timed, ...args: Parameters<typeof writeHead>) {
      const t = (this.locals as Response['locals'] | undefined)?.ollamaTimings;
      const started = this[STARTED];
      const now = this[CLOCK];
      if (t && started !== undefined && now && !this.headersSent) {
        const headers = serverTimingHeaders(t, Number(now() - started) / 1e6);
        for (const [name, value] of Object.entries(headers)) this.setHeader(name, value);
      }
      return writeHead.apply(this, args);
    } as typeof writeHead,
  });
  Object.defineProperty(target, PATCHED, { value: true });
}

/**
 * On inference answers (a router called {@link recordTimings}), writes `Server-Timing`
 * (gateway, queue, ollama, ollama_ttfb, total) and `X-Response-Time` just before the headers
 * go out, so a caller sees where the time went. A stream's headers leave when it starts, so
 * there they cover the time until then.
 *
 * The `writeHead` wrapper goes once on the app's response prototype (Express 5 responses
 * inherit from `app.response`, recognisable by its own `app`), so a request only notes when it
 * started; an object that is not an Express response gets the wrapper on itself.
 */
export function createServerTiming(options: { now?: () => bigint } = {}): RequestHandler {
  const now = options.now ?? process.hrtime.bigint;
  return (_req, res, next) => {
    const timed = res as Timed;
    timed[STARTED] = now();
    timed[CLOCK] = now;
    if ((timed as unknown as Record<symbol, unknown>)[PATCHED] !== true) {
      const proto = Object.getPrototypeOf(res) as object | null;
      patchWriteHead(proto && Object.prototype.hasOwnProperty.call(proto, 'app') ? proto : res);
    }
    next();
  };
}
