import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { SimClock } from './clock';

/** An installed (or pullable) model as the simulator's fake model store sees it. */
export interface SimModelSpec {
  name: string;
  family?: string;
  parameterSize?: string;
  quantization?: string;
  capabilities?: string[];
  contextLength?: number;
  sizeBytes?: number;
  /**
   * `details.format`: `gguf` (default) runs in llama-server, `safetensors` in the MLX runner;
   * they differ in what /api/ps does during a load and in reload rules (ollama-api.md §1.5).
   */
  format?: 'gguf' | 'safetensors';
  /** How this model's tool calls are delivered by default (§4.2); default 'rendered'. */
  toolCallMode?: SimToolCallMode;
  /** An installed cloud stub (§1.13): listed with remote_host/remote_model, run remotely. */
  remoteHost?: string;
  remoteModel?: string;
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
  /** Clock for created_at / expires_at / modified_at (default Date.now); see `clock`. */
  now?: () => number;
  /**
   * The time source for every delay the simulator models (load delay, chunk latency,
   * hangFor, failFor windows, a tool call's silence, keep-alive expiry) and its timestamps.
   * Default: wall-clock time (`now`) and real timers. Pass createManualClock() to drive time
   * from the test with `clock.advance(ms)`.
   */
  clock?: SimClock;
  /**
   * OLLAMA_CONTEXT_LENGTH: when set, requests without num_ctx use it as an explicit value;
   * unset (default), they get the automatic `autoNumCtx` (§3.5b, §5).
   */
  contextLength?: number;
  /** The automatic context (Ollama's VRAM tier: 4096 below 23 GiB, CPU included); default 4096. */
  autoNumCtx?: number;
  /** Keep an entry per generation in `sim.generations` (default false; see recordGenerations). */
  recordGenerations?: boolean;
  /** OLLAMA_REMOTES: hosts a cloud stub may run on (default ['ollama.com']). */
  remotes?: string[];
  /** Bind address (default '127.0.0.1'). */
  /**
   * Port to listen on (default 0: a free one). Several simulators on different loopback
   * addresses (127.0.0.2, 127.0.0.3…) with one port stand for the pods behind a headless Service.
   */
  port?: number;
  hostname?: string;
}

export interface SimToolCall {
  function: { name: string; arguments: Record<string, unknown> };
}

/**
 * §4.2: `rendered` (Ollama parses the output: each call in its own done:false chunk with a
 * `call_xxxxxxxx` id, then the final chunk); `native` (llama-server mode, Ollama ≥0.30: calls
 * only on the final done:true chunk, with llama-server's ids).
 */
export type SimToolCallMode = 'rendered' | 'native';

/** A scripted answer for /api/chat, /api/generate or /v1/chat/completions. */
export interface SimScriptedReply {
  content?: string;
  thinking?: string;
  /** Exact content chunks; otherwise `content` is streamed word by word. */
  chunks?: string[];
  tool_calls?: SimToolCall[];
  done_reason?: 'stop' | 'length';
  /** Overrides the model's `toolCallMode` for this reply. */
  toolCallMode?: SimToolCallMode;
  /**
   * Time on the simulator's clock during which the model generates its tool calls and
   * Ollama sends nothing (§4.2), after any content chunks. Default 0.
   */
  silenceMs?: number;
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
  | 'request'
  | 'request-closed'
  | 'aborted'
  | 'chunk'
  | 'queued'
  | 'loading'
  | 'load'
  | 'load-aborted'
  | 'load-failed'
  | 'reload'
  | 'unload'
  | 'crash'
  | 'generation-start'
  | 'generation-end';

/** Load bookkeeping, in total or per model (canonical name). */
export interface SimLoadCounts {
  /** Loads started (a reload's new load included). */
  loads: number;
  loadsCompleted: number;
  /** Loads aborted because the request that triggered them went away (§3.5a). */
  loadsAborted: number;
  /** Loads that failed deterministically (failModel 'load' | 'oom' | 'load-timeout'). */
  loadsFailed: number;
  /** Runners unloaded to be loaded again with other load-time options (§3.5b). */
  reloads: number;
  unloads: number;
}

/**
 * A model's deterministic failure (§2.4), answered 500 with Ollama's text every time:
 * `load` llama-server exits during startup; `oom` out of memory at load; `load-timeout` the
 * load stalls past OLLAMA_LOAD_TIMEOUT; `crash` the runner dies on each request (before the
 * first byte, or after `afterChunks` chunks as an error line) and leaves the loaded table.
 */
export type SimModelFailureKind = 'load' | 'oom' | 'load-timeout' | 'crash';

export interface SimModelFailure {
  kind: SimModelFailureKind;
  /** Replaces the text after Ollama's fixed prefix (llama-server's own output). */
  detail?: string;
  /** `crash` only: chunks written before the runner dies mid-stream. */
  afterChunks?: number;
}

/**
 * What an explicit cloud name (`…:cloud`, `…-cloud`) gets (§1.13): `ok` an answer; `disabled`
 * 403 (OLLAMA_NO_CLOUD); `unauthorized` 401 with `signin_url` (signing failed, the default:
 * a pod whose key is not connected to an account); `unreachable` 502; or an upstream answer
 * passed through unchanged (e.g. ollama.com's 429; its body is upstream-defined, unconfirmed).
 */
export type SimCloudAnswer =
  | 'ok'
  | 'disabled'
  | 'unauthorized'
  | 'unreachable'
  | { status: number; body?: unknown; headers?: Record<string, string> };

/** One generation (a request that held a parallel slot), in the order generations started. */
export interface SimGeneration {
  requestId: number;
  path: string;
  /** Canonical model name. */
  model: string;
  /** Simulator clock times. */
  queuedAt: number;
  startedAt: number;
  endedAt?: number;
  /** Generations running at its start, itself included: over all models and on its model. */
  concurrent: number;
  concurrentOnModel: number;
}

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
  /** The runner's effective context window (num_ctx after normalisation). */
  numCtx: number;
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
  /** Load time on the simulator's clock; with `model`, for that model only. */
  setLoadDelay(ms: number, model?: string): void;
  /** Make `model` fail deterministically (§2.4) until failModel(model, undefined) or reset(). */
  failModel(model: string, failure: SimModelFailure | SimModelFailureKind | undefined): void;
  /**
   * Accept connections and send nothing for `ms` on the simulator's clock: requests arriving
   * in the window wait until it ends, open streams pause; then everything carries on.
   */
  hangFor(ms: number): void;
  /** For `ms` on the clock, answer every request in `scope` with `status` (default 500). */
  failFor(ms: number, status?: number, message?: string, scope?: SimFailScope): void;
  /** How explicit cloud names are answered (default 'unauthorized'). */
  setCloud(answer: SimCloudAnswer): void;
  /** Load bookkeeping since start (not cleared by reset()). */
  counts(model?: string): SimLoadCounts;
  /** Start (or stop) keeping an entry per generation in `generations`. */
  recordGenerations(on?: boolean): void;
  /** Every generation recorded since recording started or reset(), in start order. */
  readonly generations: SimGeneration[];
  /** Most generations ever running at once (on `model`, if given) since start or reset(). */
  maxConcurrency(model?: string): number;
  readonly clock: SimClock;
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
