import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';

/** An installed (or pullable) model as the simulator's fake model store sees it. */
export interface SimModelSpec {
  name: string;
  family?: string;
  parameterSize?: string;
  quantization?: string;
  capabilities?: string[];
  contextLength?: number;
  sizeBytes?: number;
}

export interface SimulatorOptions {
  /** Installed models; default llama3.2:3b, qwen3:8b, nomic-embed-text:latest. */
  models?: SimModelSpec[];
  /** Models the fake registry can pull; any other name fails with a manifest error line. */
  pullable?: SimModelSpec[];
  /** Reported by /api/version; default '0.12.6'. */
  version?: string;
  /** Per-model slots (default 1); waiters beyond that queue FIFO without bound. */
  numParallel?: number;
  /** Bounded queue of requests waiting for a model load (default 512); full → 503. */
  maxQueue?: number;
  /** Default 3; loading one more evicts an idle model first. */
  maxLoadedModels?: number;
  /** Delay between streamed chunks (default 0). */
  chunkLatencyMs?: number;
  /** Time to load a model that is not loaded (default 0). */
  loadDelayMs?: number;
  /** Content chunks of a default (unscripted) answer (default 5). */
  chunksPerReply?: number;
  /** Keep-alive used when a request omits it (default '5m'). */
  defaultKeepAlive?: string;
  /** Clock for created_at / expires_at / modified_at (default Date.now). */
  now?: () => number;
  /** Bind address (default '127.0.0.1'). */
  hostname?: string;
}

export interface SimToolCall {
  function: { name: string; arguments: Record<string, unknown> };
}

/** A scripted answer for /api/chat, /api/generate or /v1/chat/completions. */
export interface SimScriptedReply {
  content?: string;
  thinking?: string;
  /** Exact content chunks; otherwise `content` is streamed word by word. */
  chunks?: string[];
  tool_calls?: SimToolCall[];
  done_reason?: 'stop' | 'length';
  evalCount?: number;
  promptEvalCount?: number;
}

/** A scripted HTTP error (status default 500) instead of an answer. */
export interface SimErrorReply {
  error: string;
  status?: number;
}

export type SimReply = SimScriptedReply | SimErrorReply;

export type SimEventType =
  'request' | 'request-closed' | 'aborted' | 'chunk' | 'queued' | 'loading' | 'load' | 'unload';

/**
 * Everything the simulator reports. `requestId` ties request/chunk/aborted events together;
 * load events carry `model` (canonical name); chunk events carry the 0-based `index` and the
 * object written (`data`).
 */
export interface SimEvent {
  type: SimEventType;
  requestId?: number;
  method?: string;
  path?: string;
  model?: string;
  index?: number;
  data?: unknown;
}

export interface SimRequestLog {
  id: number;
  method: string;
  /** Path without the query string. */
  path: string;
  /** Parsed JSON body, or undefined when absent or malformed. */
  body: unknown;
  headers: IncomingHttpHeaders;
  at: Date;
}

/** Returned by hold(): every stream pauses after its first chunk until stepped or released. */
export interface SimGate {
  /** Let each currently paused stream send `n` more chunks (default 1), then pause again. */
  step(n?: number): void;
  /** Stop holding: paused streams run to completion and new streams are not paused. */
  release(): void;
  /** Streams paused at the gate right now. */
  readonly held: number;
}

export interface SimLoadedModel {
  name: string;
  expiresAt: Date;
  keepAliveMs: number;
}

/** Which requests failNext() hits: inference routes only (default) or every routed request. */
export type SimFailScope = 'inference' | 'any';

export interface OllamaSimulator extends EventEmitter {
  readonly url: string;
  readonly port: number;
  /** Close the listener and destroy open sockets (state kept); new connections are refused. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  /** Final teardown; idempotent. */
  close(): Promise<void>;
  /** Queue the next replies of `model` (FIFO); when empty the default answer is used. */
  script(model: string, ...replies: SimReply[]): void;
  setChunkLatency(ms: number): void;
  setLoadDelay(ms: number): void;
  failNext(n: number, status: number, message?: string, scope?: SimFailScope): void;
  errorMidStream(afterChunks: number, message?: string, times?: number): void;
  dropMidStream(afterChunks: number, times?: number): void;
  hang(on: boolean | number): void;
  hold(): SimGate;
  /** Reset knobs, scripts and the request log (installed and loaded models are kept). */
  reset(): void;
  readonly requests: SimRequestLog[];
  inFlight(): number;
  loaded(): SimLoadedModel[];
  waitFor(event: SimEventType, predicate?: (e: SimEvent) => boolean): Promise<SimEvent>;
}
