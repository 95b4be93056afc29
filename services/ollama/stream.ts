import { isAppError } from '../../src/errors';
import type { BodyChunk, CallDeadline } from './transport';
import { midStreamError } from './errors';
import { NdjsonLines } from './ndjson';
import type { CallTimings, ChatResponse, ChatStream } from './types';

/** How a stream ended, reported once. */
export interface StreamEnd {
  /** Undefined on success. */
  error?: unknown;
  /** The consumer stopped early or aborted. */
  cancelled: boolean;
  final?: ChatResponse;
  /** Send → first content, ms. */
  ttftMs?: number;
}

export interface ChatStreamOptions {
  /** Ollama's NDJSON answer, parsed line by line (an error line is still in it). */
  source: AsyncIterable<unknown> & { abort(): void };
  deadline: CallDeadline;
  timings: CallTimings;
  /** When the request was sent to Ollama (ms, same clock as `now`). */
  sentAt: number;
  now: () => number;
  /** Called exactly once, when the stream ended for any reason (release slot, telemetry). */
  onEnd: (end: StreamEnd) => void;
}

/** One line of a streamed chat; an error line is Ollama failing mid-answer. */
function chatPart(line: unknown): ChatResponse {
  const part = line as ChatResponse & { error?: unknown };
  if (part.error !== undefined) throw midStreamError(new Error(String(part.error)));
  return part;
}

const endedEarly = (): Error => midStreamError(new Error('Ollama ended its answer early.'));

function hasContent(chunk: ChatResponse): boolean {
  const m = chunk.message as ChatResponse['message'] | undefined;
  return Boolean(m && (m.content || m.thinking || (m.tool_calls && m.tool_calls.length > 0)));
}

/**
 * A streamed chat as the gateway hands it out: chunks pass through as they arrive; an error
 * line or a cut connection becomes a typed error; breaking out of the loop or calling abort()
 * aborts the Ollama request (so it stops generating); `onEnd` runs exactly once.
 */
export function createChatStream(options: ChatStreamOptions): ChatStream {
  const { source, deadline, timings, sentAt, now, onEnd } = options;
  let iterated = false;
  let ended = false;
  const end = (result: StreamEnd): void => {
    if (ended) return;
    ended = true;
    deadline.dispose();
    timings.ollamaMs = now() - sentAt;
    onEnd(result);
  };

  async function* iterate(): AsyncGenerator<ChatResponse> {
    let final: ChatResponse | undefined;
    let ttftMs: number | undefined;
    try {
      for await (const line of source) {
        const chunk = chatPart(line);
        if (ttftMs === undefined && hasContent(chunk)) ttftMs = now() - sentAt;
        if (chunk.done) final = chunk;
        yield chunk;
      }
      if (!final) throw endedEarly();
      end({ cancelled: false, final, ttftMs });
    } catch (err) {
      const typed = deadline.explain(err) ?? midStreamError(err);
      end({ error: typed, cancelled: deadline.cancelled && !isAppError(typed), final, ttftMs });
      throw typed;
    } finally {
      if (!ended) {
        // The consumer left the loop early: stop Ollama generating for nobody.
        deadline.abort();
        source.abort();
        end({ cancelled: true, final, ttftMs });
      }
    }
  }

  // A stream nobody iterates still ends: its idle deadline aborts it and frees its slot.
  deadline.signal.addEventListener(
    'abort',
    () => {
      if (!iterated) end({ error: deadline.explain(undefined), cancelled: deadline.cancelled });
    },
    { once: true },
  );

  return {
    timings,
    abort() {
      deadline.abort();
      source.abort();
    },
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error('A ChatStream can be iterated only once.');
      iterated = true;
      return iterate();
    },
  };
}

/**
 * Ollama's streamed answer read whole (NDJSON, one object per line), parsed once it ended: the
 * chunks in order, and when the first one with content arrived (ms, the chunks' clock). An
 * error line or a line that is not JSON is Ollama failing mid-answer; an answer without its
 * final `done` object was cut.
 */
export function parseChatLines(chunks: readonly BodyChunk[]): {
  parts: ChatResponse[];
  contentAt?: number;
} {
  const parts: ChatResponse[] = [];
  let contentAt: number | undefined;
  const take = (line: unknown, at: number): void => {
    const part = chatPart(line);
    if (contentAt === undefined && hasContent(part)) contentAt = at;
    parts.push(part);
  };
  const lines = new NdjsonLines();
  for (const { data, at } of chunks) for (const line of lines.push(data)) take(line, at);
  for (const line of lines.end()) take(line, chunks.at(-1)?.at ?? 0);
  if (!parts.at(-1)?.done) throw endedEarly();
  return contentAt === undefined ? { parts } : { parts, contentAt };
}

/**
 * Puts a streamed chat together into the answer Ollama gives when not streaming: the content and
 * thinking joined, the tool calls in order, the final chunk's fields (done_reason, counts).
 */
export function joinChat(parts: readonly ChatResponse[]): ChatResponse {
  let content = '';
  let thinking = '';
  let toolCalls: NonNullable<ChatResponse['message']['tool_calls']> | undefined;
  let last: ChatResponse | undefined;
  for (const chunk of parts) {
    const m = chunk.message as ChatResponse['message'] | undefined;
    if (m) {
      if (m.content) content += m.content;
      if (m.thinking) thinking += m.thinking;
      if (m.tool_calls?.length) (toolCalls ??= []).push(...m.tool_calls);
    }
    last = chunk;
  }
  if (!last) throw midStreamError(new Error('Ollama sent no answer.'));
  const message: ChatResponse['message'] = { ...last.message, content };
  if (thinking) message.thinking = thinking;
  else delete message.thinking;
  if (toolCalls) message.tool_calls = toolCalls;
  else delete message.tool_calls;
  return { ...last, message };
}
