import type {
  BackendStatus,
  ModelSwitchRecord,
  OllamaHealthSnapshot,
  OllamaService,
} from '../ollama';

/** The cached Ollama snapshot in the API's snake_case, plus the circuit and the queue. */
export interface OllamaFacts {
  status: OllamaHealthSnapshot['status'];
  /** ISO time of the last finished check, null before the first. */
  checked_at: string | null;
  latency_ms: number | null;
  version: string | null;
  active_model: string;
  active_model_installed: boolean | null;
  installed_models: string[] | null;
  loaded_models: Array<{
    name: string;
    size_bytes: number;
    vram_bytes: number;
    expires_at: string;
    context_length?: number;
  }>;
  /** `loaded_models` is the last known set; /api/ps has not answered since (see OllamaHealthSnapshot). */
  loaded_models_stale: boolean;
  last_error: { code: string; message: string; at: string } | null;
  circuit: 'closed' | 'half-open' | 'open';
  queue: { in_flight: number; queued: number; max_concurrency: number; max_queue: number };
  /** Every Ollama backend with its own state (the fields above merge them). */
  backends?: BackendFacts[];
}

export interface BackendFacts {
  id: string;
  state: BackendStatus['state'];
  version: string | null;
  circuit: BackendStatus['circuit'];
  in_flight: number;
  queued: number;
  installed_models: string[] | null;
  loaded_models: string[];
  last_error: { code: string; message: string; at: string } | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Milliseconds since `at`, or null when there is no `at`. */
const ageMs = (at: number | null, now: number): number | null =>
  at === null ? null : Math.max(0, now - at);

export interface OllamaViewSources {
  snapshot: OllamaHealthSnapshot;
  ollama: Pick<OllamaService, 'circuitState' | 'queueStats' | 'backends'>;
  activeModel: string;
}

/** The Ollama facts of `/health/detailed`: the cached snapshot, the circuit and the queue. */
export function ollamaHealthView(src: OllamaViewSources): OllamaFacts {
  const { snapshot: s } = src;
  const queue = src.ollama.queueStats();
  return {
    status: s.status,
    checked_at: s.checkedAt === null ? null : iso(s.checkedAt),
    latency_ms: s.latencyMs,
    version: s.version,
    active_model: src.activeModel,
    active_model_installed: s.activeModelInstalled,
    installed_models: s.installedModels,
    loaded_models: s.loadedModels.map((m) => ({
      name: m.name,
      size_bytes: m.sizeBytes,
      vram_bytes: m.vramBytes,
      expires_at: m.expiresAt,
      ...(m.contextLength === undefined ? {} : { context_length: m.contextLength }),
    })),
    loaded_models_stale: s.loadedModelsStale,
    last_error: s.lastError && { ...s.lastError, at: iso(s.lastError.at) },
    circuit: src.ollama.circuitState(),
    queue: {
      in_flight: queue.inFlight,
      queued: queue.queued,
      max_concurrency: queue.maxConcurrency,
      max_queue: queue.maxQueue,
    },
    ...(src.ollama.backends ? { backends: src.ollama.backends().map(backendFacts) } : {}),
  };
}

function backendFacts(b: BackendStatus): BackendFacts {
  return {
    id: b.id,
    state: b.state,
    version: b.version,
    circuit: b.circuit,
    in_flight: b.inFlight,
    queued: b.queued,
    installed_models: b.installedModels,
    loaded_models: b.loadedModels,
    last_error: b.lastError && { ...b.lastError, at: iso(b.lastError.at) },
  };
}

/** `GET /ollama/health`: the cached status and how old it is. */
export function ollamaHealthSummary(s: OllamaHealthSnapshot, now: number) {
  return {
    status: s.status,
    checked_at: s.checkedAt === null ? null : iso(s.checkedAt),
    age_ms: ageMs(s.checkedAt, now),
  };
}

export interface OllamaDetailsSources extends OllamaViewSources {
  switchingTo: string | null;
  recentSwitches: readonly ModelSwitchRecord[];
  now: number;
}

/**
 * `GET /ollama/health/detailed`: the same facts for an operator, with their ages, the queue's
 * oldest wait and the model switches. All from memory (no I/O).
 */
export function ollamaHealthDetails(src: OllamaDetailsSources) {
  const { now } = src;
  const facts = ollamaHealthView(src);
  const lastError = src.snapshot.lastError;
  return {
    ...facts,
    age_ms: ageMs(src.snapshot.checkedAt, now),
    switching_to: src.switchingTo,
    queue: { ...facts.queue, oldest_wait_ms: src.ollama.queueStats().oldestWaitMs ?? 0 },
    last_error: facts.last_error &&
      lastError && { ...facts.last_error, age_ms: Math.max(0, now - lastError.at) },
    recent_switches: src.recentSwitches.map((r) => ({
      from: r.from,
      to: r.to,
      started_at: r.startedAt,
      duration_ms: r.durationMs,
      outcome: r.outcome,
      ...(r.error !== undefined ? { error: r.error } : {}),
    })),
  };
}
