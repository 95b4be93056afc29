import type { ModelSwitchRecord, OllamaHealthSnapshot, OllamaService } from '../services/ollama';

/** Milliseconds since `at`, or null when there is no `at`. */
function ageMs(at: number | null, now: number): number | null {
  return at === null ? null : Math.max(0, now - at);
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** GET /ollama/health: the cached status and how old it is. */
export function healthView(s: OllamaHealthSnapshot, now: number) {
  return { status: s.status, checked_at: iso(s.checkedAt), age_ms: ageMs(s.checkedAt, now) };
}

export interface DetailedSources {
  snapshot: OllamaHealthSnapshot;
  ollama: Pick<OllamaService, 'circuitState' | 'queueStats'>;
  activeModel: string;
  switchingTo: string | null;
  recentSwitches: readonly ModelSwitchRecord[];
  now: number;
}

/** GET /ollama/health/detailed: everything an operator needs, all from memory (no I/O). */
export function detailedHealthView(src: DetailedSources) {
  const { snapshot: s, now } = src;
  const q = src.ollama.queueStats();
  return {
    ...healthView(s, now),
    version: s.version,
    latency_ms: s.latencyMs,
    active_model: src.activeModel,
    active_model_installed: s.activeModelInstalled,
    switching_to: src.switchingTo,
    loaded_models: s.loadedModels.map((m) => ({
      name: m.name,
      size_bytes: m.sizeBytes,
      vram_bytes: m.vramBytes,
      expires_at: m.expiresAt,
      ...(m.contextLength !== undefined ? { context_length: m.contextLength } : {}),
    })),
    installed_models: s.installedModels,
    circuit: src.ollama.circuitState(),
    queue: {
      in_flight: q.inFlight,
      queued: q.queued,
      max_concurrency: q.maxConcurrency,
      max_queue: q.maxQueue,
      oldest_wait_ms: q.oldestWaitMs ?? 0,
    },
    last_error: s.lastError && {
      code: s.lastError.code,
      message: s.lastError.message,
      at: new Date(s.lastError.at).toISOString(),
      age_ms: Math.max(0, now - s.lastError.at),
    },
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
