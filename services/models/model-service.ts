import { AppError, isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import {
  createMemoryActiveModelStore,
  switchInProgress,
  type ActiveModelStore,
  type AppliedChange,
  type SwitchLock,
} from './active-model-store';
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
  /** The model being switched to, here or (with Redis) on another replica, or null. */
  switching(): string | null;
  /** Pull progress with a `percent` per layer once its size is known. */
  pull(model: string, opts?: CallOptions): AsyncIterable<ProgressResponse & { percent?: number }>;
  /** Deletes an installed model; MODEL_IN_USE (409) for the active one. */
  remove(model: string, opts?: CallOptions): Promise<void>;
  catalog: ModelCatalog;
  /** Where the active model lives (start/stop it with the service graph). */
  store: ActiveModelStore;
}

export interface ModelServiceOptions {
  ollama: OllamaService;
  /** MODELS_CACHE_TTL_MS: how long the model list and model facts are served from cache. */
  cacheTtlMs: number;
  /** Deadline of `/api/ps` during a load with nothing cached (OLLAMA_HEALTH_TIMEOUT_MS). */
  psTimeoutMs: number;
  /** OLLAMA_MODEL: the active model at start. */
  initialModel: string;
  /** Where the active model lives (default: this process, starting at `initialModel`). */
  store?: ActiveModelStore;
  telemetry: Telemetry;
  logger: Logger;
  now?: () => number;
  /** Switches kept for the detailed health view (default 20). */
  maxRecent?: number;
}

/**
 * Builds the model manager. The active model lives in the store and is flipped only after the
 * new model answered its preload, so a request reads either the old or the new model, never a
 * half state. The switch holds the store's lock from before the preload until the previous
 * model is unloaded, and unloads it only once every live replica applied the new model;
 * requests already running on the old model finish on it (Ollama unloads a model only when its
 * in-flight requests are done).
 */
export function createModelService(options: ModelServiceOptions): ModelService {
  const { ollama, telemetry, logger } = options;
  const now = options.now ?? Date.now;
  const maxRecent = options.maxRecent ?? 20;
  const store = options.store ?? createMemoryActiveModelStore(options.initialModel);
  const active = (): string => store.current().model;
  const catalog = createModelCatalog({
    ollama,
    activeModel: active,
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

  /**
   * Unloads the previous model once no replica can send it new requests: every live replica has
   * applied the new model (the store's acknowledgement). When some replica has not within the
   * store's deadline, the model is left to Ollama's keep_alive instead.
   */
  async function unloadPrevious(previous: string, lock: SwitchLock, generation: number) {
    const { settled, pending } = await lock.applied(generation);
    if (!settled) {
      logger.warn('previous model left loaded: some replicas did not apply the switch in time', {
        model: previous,
        replicas: pending,
      });
      return;
    }
    // The switch has succeeded; a failed unload only leaves memory in use until keep_alive ends.
    await ollama.unload(previous).catch((err: unknown) => {
      logger.warn('unloading the previous model failed', { model: previous, error: err });
    });
  }

  async function runSwitch(
    req: SwitchRequest,
    lock: SwitchLock,
    opts: CallOptions & { onProgress?: (p: SwitchProgress) => void },
  ): Promise<SwitchResult> {
    const previous = active();
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
    const { generation } = await lock.commit(req.model);
    if (req.unload_previous !== false && !sameModel(previous, req.model)) {
      await unloadPrevious(previous, lock, generation);
    }
    return { previous, active: req.model, load_ms: loadMs, pulled };
  }

  store.onApplied((change: AppliedChange) => {
    catalog.invalidate();
    if (!change.remote) return;
    telemetry.modelSwitchPropagated();
    logger.info('active model changed by another replica', {
      from: change.previous,
      to: change.model,
    });
  });

  return {
    active,
    recentSwitches: () => recent,
    switching: () => target ?? store.switching(),
    catalog,
    store,

    async switchModel(req, opts = {}) {
      const conflict = (err: AppError): never => {
        telemetry.modelSwitch({ outcome: 'conflict', durationS: 0 });
        throw err;
      };
      if (target !== null) conflict(switchInProgress(target));
      target = req.model;
      let lock: SwitchLock;
      try {
        lock = await store.lock(req.model, opts.signal ? { signal: opts.signal } : {});
      } catch (err) {
        target = null;
        if (isAppError(err) && err.code === 'SWITCH_IN_PROGRESS') conflict(err);
        throw err;
      }
      const started = now();
      const from = active();
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
      const signal = opts.signal ? AbortSignal.any([opts.signal, lock.signal]) : lock.signal;
      try {
        const result = await runSwitch(req, lock, { ...opts, signal });
        record('success');
        logger.info('active model switched', { from, to: req.model, load_ms: result.load_ms });
        return result;
      } catch (err) {
        record('error', isAppError(err) ? err.code : 'INTERNAL_ERROR');
        logger.warn('model switch failed', { from, to: req.model, error: err });
        throw err;
      } finally {
        target = null;
        await lock.release();
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
      const switching = target ?? store.switching();
      if (sameModel(model, active()) || (switching !== null && sameModel(model, switching))) {
        throw new AppError('MODEL_IN_USE', `Model ${model} is the active model.`);
      }
      await ollama.delete(model, opts);
      catalog.invalidate();
    },
  };
}
