import { AppError, isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { createModelCatalog, type ModelCatalog } from './catalog';
import { sameModel } from '../../src/model-name';
import type {
  CallOptions,
  ModelManager,
  ModelSwitchRecord,
  OllamaService,
  ProgressResponse,
} from '../ollama';
import type { Telemetry } from '../metrics';

export interface SwitchRequest {
  model: string;
  /** Pull the model first when it is not installed (otherwise 404 MODEL_NOT_FOUND). */
  pull?: boolean;
  /** keep_alive for the preload (default OLLAMA_KEEP_ALIVE). */
  keep_alive?: string | number;
  /** Unload the previous model after the flip (default true). */
  unload_previous?: boolean;
}

export interface SwitchResult {
  previous: string;
  active: string;
  load_ms: number;
  pulled: boolean;
}

/** What a switch reports while it runs (streamed to the operator as NDJSON). */
export type SwitchProgress =
  | (ProgressResponse & { phase: 'pull'; percent?: number })
  | { phase: 'load'; status: 'loading' | 'loaded'; model: string; load_ms?: number };

/** The model manager: the ModelManager contract plus the operations the /ollama router uses. */
export interface ModelService extends ModelManager {
  /**
   * Switches the active model: pull (optional) → preload → atomic flip → unload previous.
   * Throws SWITCH_IN_PROGRESS (409) when another switch runs, MODEL_NOT_FOUND (404) for an
   * unknown model without `pull`, and the Ollama errors of the pull/preload (the previous model
   * then stays active).
   */
  switchModel(
    req: SwitchRequest,
    opts?: CallOptions & { onProgress?: (p: SwitchProgress) => void },
  ): Promise<SwitchResult>;
  /** The model being switched to, or null. */
  switching(): string | null;
  /** Pull progress with a `percent` per layer once its size is known. */
  pull(model: string, opts?: CallOptions): AsyncIterable<ProgressResponse & { percent?: number }>;
  /** Deletes an installed model; MODEL_IN_USE (409) for the active one. */
  remove(model: string, opts?: CallOptions): Promise<void>;
  catalog: ModelCatalog;
}

export interface ModelServiceOptions {
  ollama: OllamaService;
  /** MODELS_CACHE_TTL_MS: how long the model list and model facts are served from cache. */
  cacheTtlMs: number;
  /** Deadline of `/api/ps` during a load with nothing cached (OLLAMA_HEALTH_TIMEOUT_MS). */
  psTimeoutMs: number;
  /** OLLAMA_MODEL: the active model at start. */
  initialModel: string;
  telemetry: Telemetry;
  logger: Logger;
  now?: () => number;
  /** Switches kept for the detailed health view (default 20). */
  maxRecent?: number;
}

/**
 * Builds the model manager. The active model is one variable flipped only after the new model
 * answered its preload, so a request reads either the old or the new model, never a half
 * state; requests already running on the old model finish on it (Ollama unloads a model only
 * when its in-flight requests are done).
 */
export function createModelService(options: ModelServiceOptions): ModelService {
  const { ollama, telemetry, logger } = options;
  const now = options.now ?? Date.now;
  const maxRecent = options.maxRecent ?? 20;
  let active = options.initialModel;
  const catalog = createModelCatalog({
    ollama,
    activeModel: () => active,
    ttlMs: options.cacheTtlMs,
    psTimeoutMs: options.psTimeoutMs,
    now,
  });
  let target: string | null = null;
  const recent: ModelSwitchRecord[] = [];

  async function* withPercent(model: string, opts?: CallOptions) {
    for await (const p of ollama.pull(model, opts)) {
      // Ollama omits `completed` while it is zero.
      yield p.total > 0 ? { ...p, percent: Math.floor(((p.completed ?? 0) / p.total) * 100) } : p;
    }
  }

  /** Is the model installed? A 404 from show says no; anything else is an answer or an error. */
  async function installed(model: string, opts?: CallOptions): Promise<boolean> {
    try {
      await ollama.show(model, opts);
      return true;
    } catch (err) {
      if (isAppError(err) && err.code === 'MODEL_NOT_FOUND') return false;
      throw err;
    }
  }

  async function runSwitch(
    req: SwitchRequest,
    opts: CallOptions & { onProgress?: (p: SwitchProgress) => void },
  ): Promise<SwitchResult> {
    const previous = active;
    const report = opts.onProgress ?? (() => undefined);
    let pulled = false;
    if (!(await installed(req.model, opts))) {
      if (!req.pull) throw new AppError('MODEL_NOT_FOUND', `Model ${req.model} is not installed.`);
      for await (const p of withPercent(req.model, opts)) report({ ...p, phase: 'pull' });
      pulled = true;
      catalog.invalidate();
    }
    report({ phase: 'load', status: 'loading', model: req.model });
    const { loadMs } = await ollama.preload(req.model, req.keep_alive, opts);
    report({ phase: 'load', status: 'loaded', model: req.model, load_ms: loadMs });
    active = req.model;
    if (req.unload_previous !== false && !sameModel(previous, req.model)) {
      // The switch has succeeded; a failed unload only leaves memory in use until keep_alive ends.
      await ollama.unload(previous).catch((err: unknown) => {
        logger.warn('unloading the previous model failed', { model: previous, error: err });
      });
    }
    return { previous, active: req.model, load_ms: loadMs, pulled };
  }

  return {
    active: () => active,
    recentSwitches: () => recent,
    switching: () => target,
    catalog,

    async switchModel(req, opts = {}) {
      if (target !== null) {
        telemetry.modelSwitch({ outcome: 'conflict', durationS: 0 });
        throw new AppError('SWITCH_IN_PROGRESS', undefined, { details: { switching_to: target } });
      }
      target = req.model;
      const started = now();
      const from = active;
      const record = (outcome: 'success' | 'error', error?: string): void => {
        const durationMs = now() - started;
        const entry: ModelSwitchRecord = {
          from,
          to: req.model,
          startedAt: new Date(started).toISOString(),
          durationMs,
          outcome,
        };
        if (error) entry.error = error;
        recent.unshift(entry);
        recent.length = Math.min(recent.length, maxRecent);
        telemetry.modelSwitch({ outcome, durationS: durationMs / 1000 });
      };
      try {
        const result = await runSwitch(req, opts);
        catalog.invalidate();
        record('success');
        logger.info('active model switched', { from, to: req.model, load_ms: result.load_ms });
        return result;
      } catch (err) {
        record('error', isAppError(err) ? err.code : 'INTERNAL_ERROR');
        logger.warn('model switch failed', { from, to: req.model, error: err });
        throw err;
      } finally {
        target = null;
      }
    },

    async *pull(model, opts) {
      try {
        yield* withPercent(model, opts);
      } finally {
        catalog.invalidate();
      }
    },

    async remove(model, opts) {
      if (sameModel(model, active) || (target !== null && sameModel(model, target))) {
        throw new AppError('MODEL_IN_USE', `Model ${model} is the active model.`);
      }
      await ollama.delete(model, opts);
      catalog.invalidate();
    },
  };
}
