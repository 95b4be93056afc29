import { backoff, type Clock, type TimerHandle } from '../../src/clock';
import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { LoadedModel, OllamaHealth, OllamaHealthSnapshot, OllamaService } from '../ollama';
import type { Telemetry } from '../metrics';
import { sameModel } from '../../src/model-name';

export interface OllamaHealthOptions {
  ollama: Pick<OllamaService, 'version' | 'ps' | 'list'>;
  /** The model the gateway uses now; its presence in /api/tags is part of the check. */
  activeModel: () => string;
  /** Period of the background refresh, ms (OLLAMA_HEALTH_TTL_MS). */
  ttlMs: number;
  /** Deadline of one check, ms (OLLAMA_HEALTH_TIMEOUT_MS). */
  timeoutMs: number;
  /** Deadline of `/api/ps`, ms (OLLAMA_PS_TIMEOUT_MS; it blocks while an MLX model loads). */
  psTimeoutMs: number;
  telemetry: Telemetry;
  logger: Logger;
  /** Time and the refresh timer. */
  clock: Pick<Clock, 'now' | 'after'>;
  /** Jitter of the retry backoff (default Math.random). */
  random?: () => number;
}

/** Backoff of the check after a failure: 250 ms doubling up to 1 s (never above the TTL). */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 1000;

const INITIAL: OllamaHealthSnapshot = {
  status: 'unknown',
  checkedAt: null,
  latencyMs: null,
  version: null,
  loadedModels: [],
  loadedModelsStale: false,
  installedModels: null,
  activeModelInstalled: null,
  lastError: null,
};

/**
 * The cached view of Ollama: `GET /api/version` alone says whether it is up; `/api/tags` adds
 * whether the active model is installed, and `/api/ps` the loaded models. Readers get the
 * snapshot and never wait on Ollama; a background timer refreshes it every `ttlMs`, re-armed only
 * after a check finished, so checks never overlap; concurrent `refresh()` callers share one
 * in-flight check. A check that found Ollama down is retried after a short backoff, so readiness
 * comes back within about a second of Ollama answering again.
 *
 * The checks bypass the generation circuit (an open circuit must not hide that Ollama answers
 * again). `/api/ps` waits while an MLX model loads and leaves out a GGUF model being loaded
 * (ollama-api.md §1.5), so it is never part of reachability: a check waits for it at most
 * `timeoutMs`, then it runs on in the background with its own deadline, and until it answers
 * the last loaded set is kept and marked stale.
 */
export function createOllamaHealth(options: OllamaHealthOptions): OllamaHealth {
  const { ollama, ttlMs, timeoutMs, telemetry, logger } = options;
  const { clock } = options;
  const { now } = clock;
  let snapshot: OllamaHealthSnapshot = INITIAL;
  let inFlight: Promise<OllamaHealthSnapshot> | null = null;
  let timer: TimerHandle | null = null;
  let running = false;
  let failures = 0;
  let loaded: Promise<void> | null = null;

  /** Asks /api/ps (one call at a time); its answer, or its failure, lands in the snapshot. */
  function refreshLoaded(): Promise<void> {
    loaded ??= ollama
      .ps({ timeoutMs: options.psTimeoutMs, health: true })
      .then(
        (ps) => {
          snapshot = {
            ...snapshot,
            loadedModels: ps.models.map(toLoaded),
            loadedModelsStale: false,
          };
        },
        (err: unknown) => {
          snapshot = { ...snapshot, loadedModelsStale: true, lastError: describe(err, now()) };
        },
      )
      .finally(() => {
        loaded = null;
      });
    return loaded;
  }

  /** Resolves when `work` ends or `ms` passed on the clock, whichever is first. */
  function within(work: Promise<void>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = clock.after(ms, () => resolve(false));
      void work.then(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  async function check(): Promise<OllamaHealthSnapshot> {
    const started = now();
    const call = { timeoutMs, health: true };
    const next: OllamaHealthSnapshot = { ...snapshot };
    try {
      next.version = await ollama.version(call);
      next.latencyMs = now() - started;
      next.status = 'up';
      const [answered, tags] = await Promise.all([
        within(refreshLoaded(), timeoutMs),
        ollama.list(call).then(
          (value) => ({ status: 'fulfilled' as const, value }),
          (reason: unknown) => ({ status: 'rejected' as const, reason }),
        ),
      ]);
      next.loadedModels = snapshot.loadedModels;
      next.loadedModelsStale = !answered || snapshot.loadedModelsStale;
      next.lastError = snapshot.lastError;
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
      next.loadedModelsStale = true;
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
    void refresh().then((s) => {
      if (!running) return;
      failures = s.status === 'down' ? failures + 1 : 0;
      const wait =
        failures === 0
          ? ttlMs
          : Math.min(
              ttlMs,
              backoff(failures, {
                baseMs: RETRY_BASE_MS,
                maxMs: RETRY_MAX_MS,
                jitter: 'equal',
                random: options.random,
              }),
            );
      timer = clock.after(wait, loop);
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
