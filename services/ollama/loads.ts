import { untilAborted } from '../../src/abort';
import { modelKey } from '../../src/model-name';

/** Starts one load of `model`, owned by the load table (aborted only by `signal`). */
export type StartLoad = (
  model: string,
  keepAlive: string | number,
  signal: AbortSignal,
) => Promise<void>;

export interface Loads {
  /**
   * Resolves once `model` is loaded. A load already under way is joined, never restarted;
   * otherwise one is started that belongs to the table, not to the caller: `signal` only ends
   * this caller's wait (rejecting with its reason), and the load runs on until it ends or its
   * own deadline passes. Resolves with how long this caller waited, ms.
   */
  ensure(
    model: string,
    keepAlive: string | number,
    signal?: AbortSignal,
  ): Promise<{ loadMs: number }>;
  /** Whether `model` answered recently enough that Ollama still holds it (within keep-alive). */
  warm(model: string): boolean;
  /** `model` just answered: Ollama keeps it for another keep-alive. */
  used(model: string): void;
  /** `model` was unloaded or its runner failed: the next call loads it again. */
  forget(model: string): void;
  /** The models being loaded now. */
  loading(): string[];
  /** Aborts every load under way (shutdown). */
  close(): void;
}

export interface LoadsOptions {
  start: StartLoad;
  /** OLLAMA_KEEP_ALIVE in ms (Infinity for "forever", 0 for "unload at once"). */
  keepAliveMs: number;
  now: () => number;
}

/**
 * The loads of models, one per model at a time. Ollama aborts a load when the request that
 * triggered it disconnects, and every request queued behind it then starts a new load from zero
 * (ollama-api.md §3.5a); so the gateway triggers each load itself, with a request no caller can
 * cancel, and callers wait on it. A model that answered within its keep-alive is taken as loaded
 * without asking.
 */
export function createLoads(options: LoadsOptions): Loads {
  const { start, keepAliveMs, now } = options;
  const inFlight = new Map<
    string,
    { model: string; done: Promise<void>; controller: AbortController }
  >();
  const warmUntil = new Map<string, number>();

  function begin(model: string, keepAlive: string | number): Promise<void> {
    const key = modelKey(model);
    const running = inFlight.get(key);
    if (running) return running.done;
    const controller = new AbortController();
    const done = start(model, keepAlive, controller.signal).then(
      () => {
        inFlight.delete(key);
        warmUntil.set(key, now() + keepAliveMs);
      },
      (err: unknown) => {
        inFlight.delete(key);
        throw err;
      },
    );
    // Callers may all have stopped waiting; the outcome is still observed here.
    done.catch(() => undefined);
    inFlight.set(key, { model, done, controller });
    return done;
  }

  return {
    async ensure(model, keepAlive, signal) {
      const started = now();
      await untilAborted(begin(model, keepAlive), signal);
      return { loadMs: now() - started };
    },
    warm(model) {
      return (warmUntil.get(modelKey(model)) ?? 0) > now();
    },
    used(model) {
      if (keepAliveMs > 0) warmUntil.set(modelKey(model), now() + keepAliveMs);
    },
    forget(model) {
      warmUntil.delete(modelKey(model));
    },
    loading: () => [...inFlight.values()].map((l) => l.model),
    close() {
      for (const { controller } of inFlight.values()) controller.abort();
      inFlight.clear();
      warmUntil.clear();
    },
  };
}

/**
 * A keep-alive as Ollama reads it (ollama-api.md §3.2), in ms: a number is seconds, a string is
 * a Go duration (`"5m"`, `"1h30m"`, `"300ms"`); negative means forever. Unreadable → 0, so the
 * gateway never assumes a model is still loaded.
 */
export function keepAliveMs(value: string | number): number {
  if (typeof value === 'number') return value < 0 ? Infinity : value * 1000;
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return keepAliveMs(Number(text));
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1e3,
    m: 6e4,
    h: 3.6e6,
  };
  const match = /^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (!match) return 0;
  let ms = 0;
  for (const part of (match[2] ?? '').matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(part[1]) * (units[part[2] ?? ''] ?? 0);
  }
  return match[1] === '-' ? Infinity : ms;
}

/**
 * The `options` that decide how a model is loaded (ollama-api.md §3.5b: `api.Runner`'s fields);
 * a request that sets one of them, or `shift`, reloads the model unless it was loaded the same way.
 */
const RUNNER_OPTIONS = [
  'num_ctx',
  'num_batch',
  'num_gpu',
  'main_gpu',
  'use_mmap',
  'num_thread',
  'draft_num_predict',
] as const;

/**
 * What a forwarded generation's body does to its model's load (see `ForwardRequest.load`): a
 * `keep_alive` of 0 unloads it; load-time options of its own load it the request's way; any
 * other request is served by a load of the gateway's own.
 */
export function loadOfRequest(
  body: Record<string, unknown> | undefined,
): 'gateway' | 'unload' | undefined {
  const keepAlive = body?.keep_alive;
  if ((typeof keepAlive === 'number' || typeof keepAlive === 'string') && !keepAliveMs(keepAlive)) {
    return 'unload';
  }
  const options = body?.options;
  const ownLoad =
    body?.shift !== undefined ||
    (typeof options === 'object' &&
      options !== null &&
      RUNNER_OPTIONS.some((name) => (options as Record<string, unknown>)[name] !== undefined));
  return ownLoad ? undefined : 'gateway';
}
