import type { ListResponse, ShowResponse } from 'ollama';
import { sameModel } from '../../src/model-name';
import type { CallOptions, OllamaService } from '../ollama';

/** An installed model as GET /ollama/models shows it. */
export interface ModelView {
  name: string;
  size_bytes: number;
  family: string | null;
  parameter_size: string | null;
  quantization: string | null;
  modified_at: string;
  active: boolean;
  loaded: boolean;
  /** The backends (ids) that have it installed and loaded, when the service knows backends. */
  backends?: { installed: string[]; loaded: string[] };
}

/** One model's facts as GET /ollama/model-info shows them. */
export interface ModelInfoView {
  name: string;
  family: string | null;
  parameter_size: string | null;
  quantization: string | null;
  context_length: number | null;
  capabilities: string[];
  active: boolean;
  loaded: boolean;
}

export interface ModelCatalog {
  list(opts?: CallOptions & { fresh?: boolean }): Promise<ModelView[]>;
  info(model: string, opts?: CallOptions & { fresh?: boolean }): Promise<ModelInfoView>;
  /** Forget cached answers (after a pull, delete or switch). */
  invalidate(): void;
}

export interface ModelCatalogOptions {
  ollama: Pick<OllamaService, 'list' | 'ps' | 'show' | 'loading' | 'placement'>;
  /**
   * Deadline of `/api/ps` while a load is under way and nothing is cached yet (it waits for an
   * MLX load to end; OLLAMA_HEALTH_TIMEOUT_MS).
   */
  psTimeoutMs: number;
  activeModel: () => string;
  /** MODELS_CACHE_TTL_MS; 0 turns the cache off. */
  ttlMs: number;
  now: () => number;
}

/** Cached `show` answers kept at most (a dashboard looks at a handful of models). */
const MAX_INFO_ENTRIES = 32;

interface Entry<T> {
  at: number;
  value: Promise<T>;
}

/**
 * GET /ollama/models and /ollama/model-info answer from a short cache so a dashboard polling
 * them does not hammer Ollama. The cache holds Ollama's raw answers; `active` and `loaded` are
 * worked out at read time, so a switch shows at once. Concurrent readers share one fetch; a
 * failed fetch is not cached.
 *
 * The loaded set comes from `/api/ps`, which waits while an MLX model loads (ollama-api.md
 * §1.5): while the gateway loads a model, the last `/api/ps` answer is used however old it is
 * (or, with none, `/api/ps` is asked with a short deadline and its failure means "none known"),
 * and a failed `/api/ps` falls back to the last answer too.
 */
export function createModelCatalog(options: ModelCatalogOptions): ModelCatalog {
  const { ollama, activeModel, ttlMs, now, psTimeoutMs } = options;
  /** The last `/api/ps` answer, kept past its TTL and past invalidate(). */
  let lastLoaded: ListResponse | null = null;
  let tags: Entry<ListResponse> | null = null;
  let ps: Entry<ListResponse> | null = null;
  const shows = new Map<string, Entry<ShowResponse>>();

  function cached<T>(
    entry: Entry<T> | null | undefined,
    fresh: boolean | undefined,
    load: () => Promise<T>,
    store: (e: Entry<T> | null) => void,
  ): Promise<T> {
    if (entry && !fresh && now() - entry.at < ttlMs) return entry.value;
    const created: Entry<T> = { at: now(), value: load() };
    created.value.catch(() => store(null));
    store(created);
    return created.value;
  }

  const names = (answer: ListResponse): string[] => answer.models.map((m) => m.name);
  const loadedNames = async (opts?: CallOptions & { fresh?: boolean }): Promise<string[]> => {
    const loading = ollama.loading().length > 0;
    if (loading && lastLoaded) return names(lastLoaded);
    try {
      const answer = await cached(
        ps,
        opts?.fresh,
        () => ollama.ps(loading ? { ...opts, timeoutMs: psTimeoutMs, health: true } : opts),
        (e) => (ps = e),
      );
      lastLoaded = answer;
      return names(answer);
    } catch (err) {
      if (lastLoaded) return names(lastLoaded);
      if (loading) return [];
      throw err;
    }
  };

  return {
    async list(opts) {
      const [installed, loaded] = await Promise.all([
        cached(
          tags,
          opts?.fresh,
          () => ollama.list(opts),
          (e) => (tags = e),
        ),
        loadedNames(opts),
      ]);
      const active = activeModel();
      return installed.models.map((m) => ({
        name: m.name,
        size_bytes: m.size,
        family: m.details?.family || null,
        parameter_size: m.details?.parameter_size || null,
        quantization: m.details?.quantization_level || null,
        modified_at: String(m.modified_at),
        active: sameModel(m.name, active),
        loaded: loaded.some((n) => sameModel(n, m.name)),
        ...(ollama.placement ? { backends: ollama.placement(m.name) } : {}),
      }));
    },

    async info(model, opts) {
      const key = model.toLowerCase();
      const [show, loaded] = await Promise.all([
        cached(
          shows.get(key),
          opts?.fresh,
          () => ollama.show(model, opts),
          (e) => {
            if (!e) return void shows.delete(key);
            shows.delete(key); // re-insert so the map's order is least recently stored first
            shows.set(key, e);
            if (shows.size > MAX_INFO_ENTRIES) shows.delete(shows.keys().next().value as string);
          },
        ),
        loadedNames(opts),
      ]);
      return {
        name: model,
        family: show.details?.family || null,
        parameter_size: show.details?.parameter_size || null,
        quantization: show.details?.quantization_level || null,
        context_length: contextLength(show.model_info as unknown),
        capabilities: show.capabilities ?? [],
        active: sameModel(model, activeModel()),
        loaded: loaded.some((n) => sameModel(n, model)),
      };
    },

    invalidate() {
      tags = null;
      ps = null;
      shows.clear();
    },
  };
}

/** `model_info["<arch>.context_length"]`, where `<arch>` is `general.architecture`. */
export function contextLength(modelInfo: unknown): number | null {
  if (!modelInfo || typeof modelInfo !== 'object') return null;
  const info = modelInfo as Record<string, unknown>;
  const arch = info['general.architecture'];
  if (typeof arch !== 'string') return null;
  const value = info[`${arch}.context_length`];
  return typeof value === 'number' ? value : null;
}
