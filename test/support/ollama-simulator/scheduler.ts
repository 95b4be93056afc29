import { HttpError, SERVER_BUSY } from './http-io';
import type { InstalledModel } from './catalog';
import { sleepOn } from './clock';
import type { SimClock } from './clock';
import { optionsDiffer } from './runner-options';
import type { RunnerOptions } from './runner-options';
import type { SimEvent, SimLoadCounts } from './types';

/**
 * A runner in the loaded table. GGUF runners (llama-server, Ollama ≥0.30) enter the table only
 * once loaded; MLX (safetensors) runners enter it when their load starts, with `loading` set
 * and `/api/ps` waiting on `settled` (ollama-api.md §1.5, §3.5c).
 */
export interface LoadedEntry {
  model: InstalledModel;
  runner: RunnerOptions;
  keepAliveMs: number;
  expiresAt: number;
  loading: boolean;
  /** Resolves when the load ends, loaded or not (MLX only; GGUF entries are born loaded). */
  settled: Promise<void>;
  /** Requests holding this runner (leases, preloads, slot waiters): a reload waits for 0. */
  refs: number;
  /** Parallel slots taken (≤ numParallel) and the FIFO of requests waiting for one. */
  active: number;
  waiters: Array<() => void>;
  unloaded: Promise<void>;
  markUnloaded: () => void;
  cancelTimer?: () => void;
}

export interface Lease {
  /** Nanoseconds this request spent loading the model (0 when it was already loaded). */
  loadNs: number;
  /** The runner's effective context window. */
  numCtx: number;
  release(): void;
}

/** What a load ends with: a failure answered 500 with Ollama's text (§2.4), or success. */
export type LoadOutcome = { fail: string } | undefined;

export interface SchedulerDeps {
  numParallel: number;
  maxQueue: number;
  maxLoadedModels: number;
  defaultKeepAliveMs: number;
  loadDelayMs: (model: InstalledModel) => number;
  /** A deterministic load failure configured for this model (failModel), if any. */
  loadOutcome: (model: InstalledModel) => LoadOutcome;
  clock: SimClock;
  emit: (e: SimEvent) => void;
  /** Aborted on close(): cancels load delays. */
  lifetime: AbortSignal;
}

export interface AcquireOptions {
  keepAliveMs: number | undefined;
  runner: RunnerOptions;
  /** False for a preload: it waits for the load but takes no parallel slot (§3.1). */
  slot: boolean;
}

/** Keep-alives this long (Ollama's "forever" among them) arm no timer. */
const NEVER_MS = 2 ** 31 - 1;

const LOAD_ABORTED = 'timed out waiting for llama-server to start: context canceled';

function emptyCounts(): SimLoadCounts {
  return { loads: 0, loadsCompleted: 0, loadsAborted: 0, loadsFailed: 0, reloads: 0, unloads: 0 };
}

/**
 * Ollama's scheduler as ollama-api.md §3.5 and §5 describe it: a bounded pending queue
 * (`maxQueue`, 503 when full) worked one request at a time for every request whose model is
 * not in the loaded table or needs a reload; then a per-model FIFO semaphore of `numParallel`
 * slots with unbounded waiters, which requests for a loaded, matching runner go to directly.
 */
export class Scheduler {
  readonly table = new Map<string, LoadedEntry>();
  private pending = 0;
  private loader: Promise<void> = Promise.resolve();
  private idleWaiters: Array<() => void> = [];
  private readonly totals = emptyCounts();
  private readonly perModel = new Map<string, SimLoadCounts>();

  constructor(private readonly deps: SchedulerDeps) {}

  counts(model?: string): SimLoadCounts {
    if (model === undefined) return { ...this.totals };
    return { ...(this.perModel.get(model) ?? emptyCounts()) };
  }

  /**
   * Wait until `model` is loaded with matching load-time options (loading or reloading it
   * through the pending queue when needed), then hold it: with a parallel slot for
   * generations, without one for preloads.
   */
  async acquire(model: InstalledModel, opts: AcquireOptions, signal: AbortSignal): Promise<Lease> {
    let loadNs = 0;
    for (;;) {
      if (signal.aborted) throw new HttpError(499, 'request canceled');
      const entry = this.table.get(model.name);
      if (entry?.loading) {
        // An MLX runner being loaded: requests block on its lock until the load ends.
        await Promise.race([entry.settled, abortedPromise(signal)]);
        continue;
      }
      if (entry && !optionsDiffer(entry.runner, opts.runner, model.format)) {
        return this.hold(entry, opts, signal, loadNs);
      }
      loadNs += await this.queueLoad(model, opts.runner, signal);
    }
  }

  /** keep_alive 0 with an empty prompt: unload now, or when the last request finishes. */
  unloadSoon(model: InstalledModel): void {
    const entry = this.table.get(model.name);
    if (!entry || entry.loading) return;
    entry.keepAliveMs = 0;
    if (entry.refs === 0) this.unload(entry);
  }

  /** The runner died (runner crash, §2.4): it leaves the table; the next request reloads. */
  crash(model: InstalledModel): void {
    const entry = this.table.get(model.name);
    if (entry && !entry.loading) this.unload(entry);
  }

  /** Settles when no MLX load is in progress: what `/api/ps` waits for (§1.5). */
  async loadsSettled(signal: AbortSignal): Promise<void> {
    for (;;) {
      const loading = [...this.table.values()].filter((e) => e.loading);
      if (loading.length === 0 || signal.aborted) return;
      await Promise.race([Promise.all(loading.map((e) => e.settled)), abortedPromise(signal)]);
    }
  }

  clearTimers(): void {
    for (const entry of this.table.values()) entry.cancelTimer?.();
  }

  private hold(entry: LoadedEntry, opts: AcquireOptions, signal: AbortSignal, loadNs: number) {
    entry.refs += 1;
    entry.cancelTimer?.();
    entry.cancelTimer = undefined;
    if (opts.keepAliveMs !== undefined) entry.keepAliveMs = opts.keepAliveMs;
    entry.expiresAt = this.deps.clock.now() + entry.keepAliveMs;
    let released = false;
    const lease: Lease = {
      loadNs,
      numCtx: entry.runner.numCtx,
      release: () => {
        if (released) return;
        released = true;
        if (opts.slot) this.releaseSlot(entry);
        this.deref(entry);
      },
    };
    if (!opts.slot) return Promise.resolve(lease);
    return this.takeSlot(entry, signal).then(() => {
      if (signal.aborted) lease.release();
      return lease;
    });
  }

  private queueLoad(model: InstalledModel, runner: RunnerOptions, signal: AbortSignal) {
    if (this.pending >= this.deps.maxQueue) throw new HttpError(503, SERVER_BUSY);
    this.pending += 1;
    this.deps.emit({ type: 'queued', model: model.name });
    let finished: Promise<number> = Promise.resolve(0);
    const turn = this.loader.then(async () => {
      this.pending -= 1;
      // A queued request whose client went away is skipped, as Ollama does.
      if (signal.aborted) return;
      const entry = this.table.get(model.name);
      if (entry && (entry.loading || !optionsDiffer(entry.runner, runner, model.format))) return;
      if (entry) await this.drainForReload(entry);
      await this.makeRoom();
      finished = this.load(model, runner, signal);
      // GGUF loads do not overlap: the queue waits for this one. An MLX load only spawns its
      // runner here and is waited for outside the queue (§3.5e).
      if (model.format !== 'safetensors') await finished.catch(() => undefined);
    });
    this.loader = turn.catch(() => undefined);
    return turn.then(() => finished);
  }

  /**
   * A reload (§3.5b): the old runner's keep-alive drops to 0, it unloads when its last request
   * ends (requests that still match it keep being served, and one carrying keep_alive resets
   * it), and the scheduler waits for that before loading again.
   */
  private async drainForReload(entry: LoadedEntry): Promise<void> {
    entry.keepAliveMs = 0;
    if (entry.refs === 0) this.unload(entry);
    await entry.unloaded;
    this.count(entry.model.name, 'reloads');
    this.deps.emit({ type: 'reload', model: entry.model.name });
  }

  /**
   * One load with the triggering request's context (§3.5a): when that client goes away the
   * load is aborted and the error goes to the gone request; requests queued behind it start
   * a new load from zero when their turn comes.
   */
  private async load(model: InstalledModel, runner: RunnerOptions, signal: AbortSignal) {
    const { clock } = this.deps;
    const mlx = model.format === 'safetensors';
    const startedAt = clock.now();
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const entry = this.newEntry(model, runner, settled);
    if (mlx) this.table.set(model.name, entry);
    this.count(model.name, 'loads');
    this.deps.emit({ type: 'loading', model: model.name });
    const both = AbortSignal.any([signal, this.deps.lifetime]);
    const done = await sleepOn(clock, this.deps.loadDelayMs(model), both);
    try {
      if (!done) {
        this.count(model.name, 'loadsAborted');
        this.deps.emit({ type: 'load-aborted', model: model.name });
        if (mlx) this.table.delete(model.name);
        throw new HttpError(this.deps.lifetime.aborted ? 500 : 499, LOAD_ABORTED);
      }
      const outcome = this.deps.loadOutcome(model);
      if (outcome) {
        this.count(model.name, 'loadsFailed');
        this.deps.emit({ type: 'load-failed', model: model.name, data: outcome.fail });
        if (mlx) this.table.delete(model.name);
        throw new HttpError(500, outcome.fail);
      }
      entry.loading = false;
      entry.expiresAt = clock.now() + entry.keepAliveMs;
      this.table.set(model.name, entry);
      this.count(model.name, 'loadsCompleted');
      this.deps.emit({ type: 'load', model: model.name });
      // Nanoseconds on the simulator's clock; at least 1 so a load is never "0 = none".
      return Math.max(1, (clock.now() - startedAt) * 1_000_000);
    } finally {
      settle();
    }
  }

  private newEntry(model: InstalledModel, runner: RunnerOptions, settled: Promise<void>) {
    let markUnloaded: () => void = () => undefined;
    const unloaded = new Promise<void>((resolve) => (markUnloaded = resolve));
    const entry: LoadedEntry = {
      model,
      runner,
      keepAliveMs: this.deps.defaultKeepAliveMs,
      expiresAt: this.deps.clock.now() + this.deps.defaultKeepAliveMs,
      loading: model.format === 'safetensors',
      settled,
      refs: 0,
      active: 0,
      waiters: [],
      unloaded,
      markUnloaded,
    };
    return entry;
  }

  /** Evict idle models (shortest keep-alive first, then name) until one more fits. */
  private async makeRoom(): Promise<void> {
    while (this.table.size >= this.deps.maxLoadedModels) {
      const idle = [...this.table.values()]
        .filter((e) => e.refs === 0 && !e.loading)
        .sort((a, b) => a.keepAliveMs - b.keepAliveMs || a.model.name.localeCompare(b.model.name));
      const victim = idle[0];
      if (victim) this.unload(victim);
      else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private takeSlot(entry: LoadedEntry, signal: AbortSignal): Promise<void> {
    if (entry.active < this.deps.numParallel) {
      entry.active += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const waiter = () => resolve();
      entry.waiters.push(waiter);
      signal.addEventListener(
        'abort',
        () => {
          const i = entry.waiters.indexOf(waiter);
          if (i === -1) return; // already handed a slot; the caller releases it
          entry.waiters.splice(i, 1);
          entry.active += 1; // balanced by the caller's immediate release
          resolve();
        },
        { once: true },
      );
    });
  }

  private releaseSlot(entry: LoadedEntry): void {
    const next = entry.waiters.shift();
    if (next) return next(); // the slot passes straight to the next waiter
    entry.active -= 1;
  }

  private deref(entry: LoadedEntry): void {
    entry.refs -= 1;
    if (entry.refs > 0) return;
    entry.expiresAt = this.deps.clock.now() + entry.keepAliveMs;
    if (entry.keepAliveMs <= 0) this.unload(entry);
    else if (entry.keepAliveMs < NEVER_MS)
      entry.cancelTimer = this.deps.clock.after(entry.keepAliveMs, () => this.unload(entry));
    const idle = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of idle) wake();
  }

  private unload(entry: LoadedEntry): void {
    if (this.table.get(entry.model.name) !== entry) return;
    entry.cancelTimer?.();
    this.table.delete(entry.model.name);
    this.count(entry.model.name, 'unloads');
    entry.markUnloaded();
    this.deps.emit({ type: 'unload', model: entry.model.name });
  }

  private count(model: string, key: keyof SimLoadCounts): void {
    this.totals[key] += 1;
    const counts = this.perModel.get(model) ?? emptyCounts();
    counts[key] += 1;
    this.perModel.set(model, counts);
  }
}

function abortedPromise(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
