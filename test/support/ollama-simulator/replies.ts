import { randomInt } from 'node:crypto';
import type { SimScriptedReply, SimToolCallMode } from './types';

/** A native tool call as Ollama ≥0.12.10 serialises it (object arguments, index, id). */
export interface WireToolCall {
  id: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}

/** What one chat/generate answer consists of, before it is written as chunks. */
export interface ReplyPlan {
  thinking: string[];
  content: string[];
  toolCalls: WireToolCall[];
  /** `native`: the calls go out only on the final done:true chunk (§4.2). */
  toolCallMode: SimToolCallMode;
  /** Clock time during which nothing is sent before the tool calls. */
  silenceMs: number;
  doneReason: 'stop' | 'length';
  evalCount: number;
  promptEvalCount: number;
}

const WORDS = ['Hello', ' from', ' the', ' Ollama', ' simulator', '.'];
const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function toolCallId(): string {
  let id = 'call_';
  for (let i = 0; i < 8; i += 1) id += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return id;
}

const ID_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * llama-server's tool-call id in native mode: llama.cpp's `gen_tool_call_id()`, 32 random
 * characters of [0-9A-Za-z]. The note marks the format unconfirmed (defined in llama.cpp, not
 * in Ollama's tree); the simulator uses it so clients cannot assume `call_…`.
 */
export function llamaServerToolCallId(): string {
  let id = '';
  for (let i = 0; i < 32; i += 1) id += ID_CHARS[randomInt(ID_CHARS.length)];
  return id;
}

/** Split text into at most `n` non-empty consecutive slices. */
export function splitInto(text: string, n: number): string[] {
  if (text === '') return [];
  const count = Math.max(1, Math.min(n, text.length));
  const size = Math.ceil(text.length / count);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** Word-like tokens (leading whitespace kept), the way a model streams prose. */
export function splitWords(text: string): string[] {
  return text.match(/\s*\S+\s*$|\s*\S+/g) ?? (text === '' ? [] : [text]);
}

function defaultWords(n: number): string[] {
  return Array.from({ length: Math.max(1, n) }, (_, i) => WORDS[i % WORDS.length] ?? '');
}

function exampleFor(schema: unknown): unknown {
  const s = (typeof schema === 'object' && schema !== null ? schema : {}) as Record<
    string,
    unknown
  >;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string':
      return 'example';
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [exampleFor(s.items)];
    case 'null':
      return null;
    default: {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, exampleFor(v)]));
    }
  }
}

/** The default answer to a `format` request: JSON text (schema-shaped when a schema is given). */
export function defaultJson(format: unknown): string {
  if (format === 'json' || typeof format !== 'object' || format === null) {
    return JSON.stringify({ answer: 'Hello from the Ollama simulator.' });
  }
  return JSON.stringify(exampleFor(format));
}

/** Rough token count of whatever text a request carries. */
export function promptTokens(texts: string[]): number {
  return Math.max(1, texts.join(' ').split(/\s+/).filter(Boolean).length);
}

export interface PlanInput {
  scripted: SimScriptedReply | undefined;
  chunksPerReply: number;
  format: unknown;
  /** The model has `thinking` and the request did not send think:false. */
  thinkingOn: boolean;
  promptTokens: number;
  /** The model's default tool-call path. */
  toolCallMode: SimToolCallMode;
}

export function planReply(input: PlanInput): ReplyPlan {
  const { scripted } = input;
  let content: string[];
  if (scripted?.chunks) content = [...scripted.chunks];
  else if (scripted?.content !== undefined) content = splitWords(scripted.content);
  else if (scripted?.tool_calls?.length) content = [];
  else if (input.format !== undefined && input.format !== null && input.format !== '') {
    content = splitInto(defaultJson(input.format), input.chunksPerReply);
  } else content = defaultWords(input.chunksPerReply);
  const thinking = input.thinkingOn && scripted?.thinking ? splitWords(scripted.thinking) : [];
  const toolCallMode = scripted?.toolCallMode ?? input.toolCallMode;
  const newId = toolCallMode === 'native' ? llamaServerToolCallId : toolCallId;
  const toolCalls = (scripted?.tool_calls ?? []).map((call, index) => ({
    id: newId(),
    function: { index, name: call.function.name, arguments: call.function.arguments },
  }));
  return {
    thinking,
    content,
    toolCalls,
    toolCallMode,
    silenceMs: scripted?.silenceMs ?? 0,
    doneReason: scripted?.done_reason ?? 'stop',
    evalCount: scripted?.evalCount ?? Math.max(1, thinking.length + content.length),
    promptEvalCount: scripted?.promptEvalCount ?? input.promptTokens,
  };
}
