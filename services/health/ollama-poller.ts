import type { Clock, TimerHandle } from '../../src/clock';
import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { LoadedModel, OllamaHealth, OllamaHealthSnapshot, OllamaService } from '../ollama';
import type { Telemetry } from '../metrics';
import { sameModel } from '../models';

export interface OllamaHealthOptions {
  ollama: Pick<OllamaService, 'version' | 'ps' | 'list'>;
  /** The model the gateway uses now; its presence in /api/tags is part of the check. */
  activeModel: () => string;
  /** Period of the background refresh, ms (OLLAMA_HEALTH_TTL_MS). */
  ttlMs: number;
  /** Deadline of one check, ms (OLLAMA_HEALTH_TIMEOUT_MS). */
  timeoutMs: number;
  telemetry: Telemetry;
  logger: Logger;
  /** Time and the refresh timer. */
  clock: Pick<Clock, 'now' | 'after'>;
}

const INITIAL: OllamaHealthSnapshot = {
  status: 'unknown',
  checkedAt: null,
  latencyMs: null,
  version: null,
  loadedModels: [],
  installedModels: null,
  activeModelInstalled: null,
  lastError: null,
};

/**
 * The cached view of Ollama: `GET /api/version` says whether it is up; `/api/ps` and
 * `/api/tags` add the loaded models and whether the active model is installed. Readers get
 * the snapshot and never wait on Ollama; a background timer refreshes it every `ttlMs`, re-armed
 * only after a check finished, so checks never overlap; concurrent `refresh()` callers share one
 * in-flight check.
 */
export function createOllamaHealth(options: OllamaHealthOptions): OllamaHealth {
  const { ollama, ttlMs, timeoutMs, telemetry, logger } = options;
  const { clock } = options;
  const { now } = clock;
  let snapshot: OllamaHealthSnapshot = INITIAL;
  let inFlight: Promise<OllamaHealthSnapshot> | null = null;
  let timer: TimerHandle | null = null;
  let running = false;

  async function check(): Promise<OllamaHealthSnapshot> {
    const started = now();
    const call = { timeoutMs };
    const next: OllamaHealthSnapshot = { ...snapshot, lastError: snapshot.lastError };
    try {
      // Version first: while the circuit is half-open only one trial call is let through.
      next.version = await ollama.version(call);
      next.latencyMs = now() - started;
      next.status = 'up';
      const [ps, tags] = await Promise.allSettled([ollama.ps(call), ollama.list(call)]);
      if (ps.status === 'fulfilled') next.loadedModels = ps.value.models.map(toLoaded);
      else next.lastError = describe(ps.reason, now());
      if (tags.status === 'fulfilled') {
        next.installedModels = tags.value.models.map((m) => m.name);
        const active = options.activeModel();
        next.activeModelInstalled = next.installedModels.some((n) => sameModel(n, active));
      } else {
        next.lastError = describe(tags.reason, now());
      }
    } catch (err) {
      next.status = 'down';
      next.latencyMs = null;
      next.lastError = describe(err, now());
      logger.warn('ollama health check failed', { code: next.lastError.code });
    }
    next.checkedAt = now();
    telemetry.healthCheck({ up: next.status === 'up', durationS: (now() - started) / 1000 });
    snapshot = next;
    return next;
  }

  function refresh(): Promise<OllamaHealthSnapshot> {
    inFlight ??= check().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  function loop(): void {
    void refresh().finally(() => {
      if (running) timer = clock.after(ttlMs, loop);
    });
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop();
    },
    stop() {
      running = false;
      timer?.cancel();
      timer = null;
    },
    snapshot: () => snapshot,
    refresh,
  };
}

function toLoaded(m: {
  name: string;
  size: number;
  size_vram: number;
  expires_at: Date | string;
  context_length?: number;
}): LoadedModel {
  const loaded: LoadedModel = {
    name: m.name,
    sizeBytes: m.size,
    vramBytes: m.size_vram,
    expiresAt: String(m.expires_at),
  };
  if (typeof m.context_length === 'number') loaded.contextLength = m.context_length;
  return loaded;
}

function describe(err: unknown, at: number): { code: string; message: string; at: number } {
  if (isAppError(err)) return { code: err.code, message: err.message, at };
  return { code: 'OLLAMA_UNAVAILABLE', message: 'The health check failed.', at };
}
