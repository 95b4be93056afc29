/**
 * Token counts read from the end of an answer, without parsing it: every format the drop-in
 * endpoints pass through puts its counts in its last object (OpenAI's `usage`, the Responses
 * API's `usage`, Ollama's final `done:true` line), so only the last few kilobytes are kept.
 */

/** How much of the end of an answer is kept: far more than a final usage object. */
const TAIL_BYTES = 4096;

/** The last chunks of an answer, at least TAIL_BYTES of them when the answer is that long. */
export class TokenTail {
  private chunks: Uint8Array[] = [];
  private bytes = 0;

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.byteLength >= TAIL_BYTES) {
      this.bytes -= this.chunks.shift()!.byteLength;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.byteLength - TAIL_BYTES)).toString('utf8');
  }
}

function last(text: string, field: string): number | undefined {
  const re = new RegExp(`"${field}"\\s*:\\s*(\\d+)`, 'g');
  let found: string | undefined;
  for (const m of text.matchAll(re)) found = m[1];
  return found === undefined ? undefined : Number(found);
}

/** Prompt and completion tokens named in `tail`, in any of the three formats; absent ones stay undefined. */
export function tokenCounts(tail: string): { promptTokens?: number; completionTokens?: number } {
  const promptTokens =
    last(tail, 'prompt_tokens') ?? last(tail, 'input_tokens') ?? last(tail, 'prompt_eval_count');
  const completionTokens =
    last(tail, 'completion_tokens') ?? last(tail, 'output_tokens') ?? last(tail, 'eval_count');
  return {
    ...(promptTokens !== undefined ? { promptTokens } : {}),
    ...(completionTokens !== undefined ? { completionTokens } : {}),
  };
}

const USAGE_EVENT = Buffer.from('"choices":[],"usage":');
const EVENT_START = Buffer.from('data: ');
const EVENT_END = Buffer.from('\n\n');

/**
 * Removes the usage event of an OpenAI chat stream (`data: {…"choices":[],"usage":{…}}`) from
 * a chunk, for a client that did not ask for it: the gateway asks Ollama for usage on every
 * stream so it can count tokens. Ollama writes each event in one write, so the event is whole
 * within a chunk; a chunk without it is returned as it is (no copy).
 */
export function withoutUsageEvent(chunk: Uint8Array): Uint8Array {
  const buf = Buffer.isBuffer(chunk)
    ? chunk
    : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const at = buf.indexOf(USAGE_EVENT);
  if (at === -1) return chunk;
  const start = buf.lastIndexOf(EVENT_START, at);
  const end = buf.indexOf(EVENT_END, at);
  if (start === -1 || end === -1) return chunk;
  return Buffer.concat([buf.subarray(0, start), buf.subarray(end + EVENT_END.length)]);
}
