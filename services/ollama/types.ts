/**
 * The contract between the Ollama service layer (`services/ollama-*`, the only code that
 * talks to Ollama) and its users (agents, health, model management, routers).
 * Every method takes an AbortSignal and has a deadline; every failure is an AppError with
 * one of: OLLAMA_UNAVAILABLE (503), OLLAMA_TIMEOUT (504), OLLAMA_BUSY (503, Retry-After),
 * MODEL_NOT_FOUND (404), OLLAMA_UPSTREAM_ERROR (502), QUEUE_FULL (429), QUEUE_TIMEOUT (503).
 */
import type {
  ChatRequest,
  ChatResponse,
  ListResponse,
  Message as OllamaMessage,
  ProgressResponse,
  ShowResponse,
  Tool,
  ToolCall as OllamaToolCall,
} from 'ollama';
import type { AdmissionTicket } from '../../src/principal';

export type { ChatResponse, ProgressResponse, Tool };

/** A tool call as Ollama sends it: with an id (≥ 0.12.10) and the call's index (§4.2). */
export interface ToolCall {
  id?: string;
  function: OllamaToolCall['function'] & { index?: number };
}

/**
 * A chat message as Ollama takes it: ollama-js's, plus the fields its types do not list yet —
 * `tool_call_id` on a tool result (≥ 0.12.10), ids and indexes on tool calls (§4.2, §4.3).
 */
export interface Message extends Omit<OllamaMessage, 'tool_calls'> {
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

export interface CallOptions {
  /**
   * Aborted when the caller (an HTTP client, a cancelled run) goes away. The call then rejects
   * with the signal's reason (not an AppError), and the Ollama request is aborted.
   */
  signal?: AbortSignal;
  /** Overrides the whole-call deadline of a non-streamed call (health checks use a shorter one). */
  timeoutMs?: number;
  /**
   * A health check (version, tags, ps): it bypasses the generation circuit, so an open circuit
   * never hides that Ollama answers again, and it is not retried (the poller has its own backoff).
   */
  health?: boolean;
  /**
   * Who a generation is for (the caller's key and limits): its admission group. Unset: the
   * internal group, with no cap of its own.
   */
  ticket?: AdmissionTicket;

  /**
   * Where a generation should go when there are several Ollama backends: the affinity key
   * that breaks ties (a run's agent and conversation), and the backend the run's earlier steps
   * used, which the service records here after each pick so every step stays on it.
   */
  route?: RouteHint;
}

export interface RouteHint {
  /** Ties between equally good backends go to the one this key hashes to. */
  affinity?: string;
  /** The backend chosen last (set by the service); kept while it can serve the model. */
  backend?: string;
}

/** One Ollama backend as health views and metrics show it (never its URL). */
export interface BackendStatus {
  /** Its index, or a name the operator gave; a bounded metric label. */
  id: string;
  /** `draining`: it left discovery and finishes its in-flight work. */
  state: 'up' | 'down' | 'unknown' | 'draining';
  version: string | null;
  circuit: 'closed' | 'half-open' | 'open';
  inFlight: number;
  queued: number;
  installedModels: string[] | null;
  /** Loaded as `/api/ps` last said, plus what the gateway loaded or used there since. */
  loadedModels: string[];
  lastError: { code: string; message: string; at: number } | null;
}

/**
 * A chat as the gateway sends it (stream and keep_alive are the adapter's). `think` also takes
 * `max`, and `truncate` exists on chat (ollama-api.md §4.5, §4.6); ollama-js's types do not
 * list them yet.
 */
export type GatewayChatRequest = Omit<
  ChatRequest,
  'stream' | 'keep_alive' | 'think' | 'messages'
> & {
  messages?: Message[];
  think?: boolean | 'low' | 'medium' | 'high' | 'max';
  truncate?: boolean;
};

/** Where the time of one generation went, for Server-Timing and metrics. */
export interface CallTimings {
  /** Wait in the gateway's own admission queue, ms. */
  queueMs: number;
  /** From sending to Ollama until the first byte (streams) or the answer (non-streamed), ms. */
  firstByteMs?: number;
  /** From sending to Ollama until the last byte, ms. */
  ollamaMs?: number;
}

export interface ChatStream extends AsyncIterable<ChatResponse> {
  /** Filled in while the stream is consumed. */
  readonly timings: CallTimings;
  /** Stops the upstream request (also happens when the caller's signal aborts). */
  abort(): void;
}

export interface OllamaService {
  /**
   * An answered chat through admission control: streamed from Ollama (so the first-byte and idle
   * deadlines hold) and put together into one response. Retried only when no byte came back
   * (refused, 503 busy) — a generation that started is never run twice. Waits for the model's
   * load first (a load the service owns: a cancelled caller stops waiting, the load goes on);
   * MODEL_FAILING (503) while the model is paused after failing on its own.
   */
  chat(
    req: GatewayChatRequest,
    opts?: CallOptions,
  ): Promise<{ response: ChatResponse; timings: CallTimings }>;
  /**
   * Streamed chat through admission control. Resolves when Ollama accepted the request (first
   * byte), so errors before the stream (404, 503, refused) reject here; errors inside the stream
   * (an error line, a dropped connection, idle timeout) are thrown while iterating.
   */
  chatStream(req: GatewayChatRequest, opts?: CallOptions): Promise<ChatStream>;
  version(opts?: CallOptions): Promise<string>;
  list(opts?: CallOptions): Promise<ListResponse>;
  show(model: string, opts?: CallOptions): Promise<ShowResponse>;
  ps(opts?: CallOptions): Promise<ListResponse>;
  /**
   * Loads a model (empty chat) and resolves when Ollama reports `done_reason: "load"`. A load
   * under way is joined, never restarted; `opts.signal` ends only this wait, and the load has its
   * own deadline (OLLAMA_LOAD_TIMEOUT_MS).
   */
  preload(
    model: string,
    keepAlive?: string | number,
    opts?: CallOptions,
  ): Promise<{ loadMs: number }>;
  /** Unloads a model (`keep_alive: 0`). */
  unload(model: string, opts?: CallOptions): Promise<void>;
  /** Pull progress as Ollama streams it; an error line is thrown as a typed error. */
  pull(model: string, opts?: CallOptions): AsyncIterable<ProgressResponse>;
  delete(model: string, opts?: CallOptions): Promise<void>;
  /** Circuit breaker state, for health and metrics. */
  circuitState(): 'closed' | 'half-open' | 'open';
  /** Models refused for now because they kept failing on their own (MODEL_FAILING). */
  failingModels(): string[];
  /** Models whose load (a preload the service owns) is under way. */
  loading(): string[];
  /** Every backend with its state (absent on a service with no notion of backends). */
  backends?(): BackendStatus[];
  /** Per model, the backends that have it installed and loaded (from the cached health). */
  placement?(model: string): { installed: string[]; loaded: string[] };
  /** Admission queue state, for health and metrics. */
  queueStats(): {
    inFlight: number;
    queued: number;
    maxConcurrency: number;
    maxQueue: number;
    /** How long the oldest waiter has been waiting, ms (0 when nobody waits). */
    oldestWaitMs?: number;
    /** `global`: every replica's figures together (Redis); `local`: this replica's own. */
    mode?: 'global' | 'local';
  };
}

/** A loaded model as `/api/ps` reports it. */
export interface LoadedModel {
  name: string;
  sizeBytes: number;
  vramBytes: number;
  expiresAt: string;
  contextLength?: number;
}

/** The cached view of Ollama that probes, metrics and /ollama/health read (never waiting on Ollama). */
export interface OllamaHealthSnapshot {
  /** `unknown` until the first check finished. */
  status: 'up' | 'down' | 'unknown';
  /** When the last check finished (ms since the epoch), null before the first. */
  checkedAt: number | null;
  latencyMs: number | null;
  version: string | null;
  loadedModels: LoadedModel[];
  /**
   * The loaded set is the last `/api/ps` answer, not a current one: `/api/ps` has not answered
   * since (it waits while an MLX model loads), failed, or Ollama is down.
   */
  loadedModelsStale: boolean;
  /** Installed model names from /api/tags, null when unknown. */
  installedModels: string[] | null;
  /** Whether the active model is installed, null when unknown. */
  activeModelInstalled: boolean | null;
  lastError: { code: string; message: string; at: number } | null;
}

export interface OllamaHealth {
  /** Runs one check now and re-arms an unref'd timer after each run (never overlapping). */
  start(): void;
  stop(): void;
  /** The cached state; never does I/O. */
  snapshot(): OllamaHealthSnapshot;
  /** Checks now; concurrent callers share one in-flight check. */
  refresh(): Promise<OllamaHealthSnapshot>;
}

export interface ModelSwitchRecord {
  from: string;
  to: string;
  startedAt: string;
  durationMs: number;
  outcome: 'success' | 'error';
  error?: string;
}

export interface ModelManager {
  /** The active model: what agents without their own model use, and what probes check. */
  active(): string;
  recentSwitches(): readonly ModelSwitchRecord[];
}
