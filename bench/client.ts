/**
 * A minimal HTTP client that timestamps what the bench needs: when the request was sent, when
 * the first token arrived and when the response ended (process.hrtime, i.e. CLOCK_MONOTONIC,
 * comparable with the simulator's timestamps), and how tokens were spread over socket reads.
 */
import http from 'node:http';
import { createNdjsonParser, createSseParser } from './sse';

/** How the response body carries tokens: one JSON object, Ollama NDJSON, our SSE, or OpenAI's SSE. */
export type BodyKind = 'json' | 'ndjson' | 'sse' | 'openai';

export interface Timed {
  status: number;
  start: bigint;
  /** When the first token (NDJSON content chunk / SSE message.delta) arrived. */
  firstToken: bigint | undefined;
  end: bigint;
  /** Content chunks (NDJSON) or message.delta events (SSE) received. */
  tokens: number;
  /**
   * Body chunks with tokens that arrived in the same socket read (the same event-loop turn) as
   * earlier tokens, or that carried several tokens: tokens batched somewhere upstream. Only
   * meaningful when the simulator paces its chunks.
   */
  batchedReads: number;
  /** The last SSE event type (run.completed when a run succeeded). */
  lastEvent: string | undefined;
}

function tokenCounter(kind: BodyKind): (text: string) => { tokens: number; last?: string } {
  if (kind === 'sse') {
    const parse = createSseParser();
    return (text) => {
      const events = parse(text);
      return {
        tokens: events.filter((e) => e.event === 'message.delta').length,
        last: events.at(-1)?.event,
      };
    };
  }
  if (kind === 'openai') {
    // OpenAI chat chunks: a token is a `data:` event whose delta has content; `[DONE]` ends it.
    const parse = createSseParser();
    return (text) => {
      const events = parse(text);
      const tokens = events.filter((e) => {
        if (e.data === '[DONE]') return false;
        const chunk = JSON.parse(e.data) as { choices?: Array<{ delta?: { content?: unknown } }> };
        const content = chunk.choices?.[0]?.delta?.content;
        return typeof content === 'string' && content !== '';
      }).length;
      return { tokens, last: events.at(-1)?.data === '[DONE]' ? '[DONE]' : undefined };
    };
  }
  if (kind === 'ndjson') {
    const parse = createNdjsonParser();
    return (text) => ({
      tokens: parse(text).filter((line) => {
        const content = (line as { message?: { content?: unknown } }).message?.content;
        return typeof content === 'string' && content !== '';
      }).length,
    });
  }
  return () => ({ tokens: 0 });
}

/**
 * POSTs `body` as JSON and resolves when the response has ended. `onFirstToken` fires once
 * when the first token arrives (used to know a stream is open).
 */
export function timedPost(
  agent: http.Agent,
  url: string,
  body: unknown,
  kind: BodyKind,
  onFirstToken?: () => void,
): Promise<Timed> {
  const payload = JSON.stringify(body);
  const count = tokenCounter(kind);
  return new Promise((resolve, reject) => {
    const timed: Timed = {
      status: 0,
      start: process.hrtime.bigint(),
      firstToken: undefined,
      end: 0n,
      tokens: 0,
      batchedReads: 0,
      lastEvent: undefined,
    };
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        timed.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        // Set while the current event-loop turn has delivered a token (one socket read is
        // parsed in one turn, so a second token in the same turn came in the same read).
        let tokenThisTurn = false;
        res.on('data', (text: string) => {
          const now = process.hrtime.bigint();
          const { tokens, last } = count(text);
          if (tokens > 0 && timed.firstToken === undefined) {
            timed.firstToken = now;
            onFirstToken?.();
          }
          if (tokens > 1 || (tokens > 0 && tokenThisTurn)) timed.batchedReads += 1;
          if (tokens > 0 && !tokenThisTurn) {
            tokenThisTurn = true;
            setImmediate(() => (tokenThisTurn = false));
          }
          timed.tokens += tokens;
          if (last) timed.lastEvent = last;
        });
        res.on('end', () => {
          timed.end = process.hrtime.bigint();
          resolve(timed);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Nanoseconds between two hrtime stamps, in milliseconds. */
export function ms(from: bigint, to: bigint): number {
  return Number(to - from) / 1e6;
}
