import type { RequestHandler, Response } from 'express';
import onHeaders from 'on-headers';

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

/**
 * On inference answers (a router called {@link recordTimings}), writes `Server-Timing`
 * (gateway, queue, ollama, ollama_ttfb, total) and `X-Response-Time` just before the headers
 * go out (the `on-headers` package), so a caller sees where the time went. A stream's headers
 * leave when it starts, so there they cover the time until then.
 */
export function createServerTiming(options: { now?: () => bigint } = {}): RequestHandler {
  const now = options.now ?? process.hrtime.bigint;
  return (_req, res, next) => {
    const started = now();
    onHeaders(res, function (this: Response) {
      const t = this.locals.ollamaTimings;
      if (!t) return;
      const headers = serverTimingHeaders(t, Number(now() - started) / 1e6);
      for (const [name, value] of Object.entries(headers)) this.setHeader(name, value);
    });
    next();
  };
}
