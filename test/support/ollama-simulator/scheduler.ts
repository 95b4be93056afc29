import { HttpError, SERVER_BUSY, sleep } from './http-io';
import type { InstalledModel } from './catalog';
import type { SimEvent } from './types';

/** A model in the loaded table (registered when its load starts, as in Ollama's scheduler). */
export interface LoadedEntry {
  model: InstalledModel;
  keepAliveMs: number;
  /** Runtime context window (`options.num_ctx` of the request that loaded it). */
  numCtx: number;
  expiresAt: number;
  ready: Promise<void>;
  loading: boolean;
  active: number;
  waiters: Array<() => void>;
  timer?: NodeJS.Timeout;
}

export interface Lease {
  /** Nanoseconds this request spent loading the model (0 when it was already loaded). */
  loadNs: number;
  release(): void;
}

export interface SchedulerDeps {
  numParallel: number;
  maxQueue: number;
  maxLoadedModels: number;
  defaultKeepAliveMs: number;
  loadDelayMs: () => number;
  now: () => number;
  emit: (e: SimEvent) => void;
  /** Aborted on close(): cancels load delays. */
  lifetime: AbortSignal;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Two layers, like Ollama (§5): a bounded pending queue, worked one load at a time, for
 * requests whose model is not in the loaded table; then a per-model FIFO semaphore of
 * `numParallel` slots with unbounded waiters.
 */
export class Scheduler {
  readonly table = new Map<string, LoadedEntry>();
  private pending = 0;
  private loader: Promise<void> = Promise.resolve();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly deps: SchedulerDeps) {}

  /**
   * Wait for a slot on `model`, loading it first when it is not in the table. A changed
   * num_ctx does not force a reload here (Ollama would reload the runner).
   */
  async acquire(
    model: InstalledModel,
    keepAliveMs: number | undefined,
    signal: AbortSignal,
    numCtx?: number,
  ): Promise<Lease> {
    let loadNs = 0;
    if (!this.table.has(model.name)) loadNs = await this.queueLoad(model, signal, numCtx);
    const entry = this.table.get(model.name);
    if (!entry) throw new HttpError(500, 'model was unloaded while waiting');
    await entry.ready;
    await this.takeSlot(entry, signal);
    if (entry.timer) clearTimeout(entry.timer);
    if (keepAliveMs !== undefined) entry.keepAliveMs = keepAliveMs;
    entry.expiresAt = this.deps.now() + entry.keepAliveMs;
    let released = false;
    const lease: Lease = {
      loadNs,
      release: () => {
        if (released) return;
        released = true;
        this.releaseSlot(entry);
      },
    };
    if (signal.aborted) lease.release();
    return lease;
  }

  /** keep_alive 0 with an empty prompt: unload now, or when the last request finishes. */
  unloadSoon(model: InstalledModel): void {
    const entry = this.table.get(model.name);
    if (!entry) return;
    entry.keepAliveMs = 0;
    if (entry.active === 0 && !entry.loading) this.unload(entry);
  }

  clearTimers(): void {
    for (const entry of this.table.values()) if (entry.timer) clearTimeout(entry.timer);
  }

  private queueLoad(model: InstalledModel, signal: AbortSignal, numCtx?: number): Promise<number> {
    if (this.pending >= this.deps.maxQueue) throw new HttpError(503, SERVER_BUSY);
    this.pending += 1;
    this.deps.emit({ type: 'queued', model: model.name });
    const turn = this.loader.then(async () => {
      this.pending -= 1;
      // A queued request whose client went away is skipped, as Ollama does.
      if (signal.aborted || this.table.has(model.name)) return 0;
      return this.load(model, numCtx);
    });
    this.loader = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async load(model: InstalledModel, numCtx = 4096): Promise<number> {
    await this.makeRoom();
    const started = process.hrtime.bigint();
    let markReady: () => void = () => undefined;
    const entry: LoadedEntry = {
      model,
      keepAliveMs: this.deps.defaultKeepAliveMs,
      numCtx: Math.min(numCtx, model.contextLength),
      expiresAt: this.deps.now() + this.deps.defaultKeepAliveMs,
      ready: new Promise<void>((resolve) => (markReady = resolve)),
      loading: true,
      active: 0,
      waiters: [],
    };
    this.table.set(model.name, entry);
    this.deps.emit({ type: 'loading', model: model.name });
    const finished = await sleep(this.deps.loadDelayMs(), this.deps.lifetime);
    if (!finished) throw new HttpError(500, 'simulator closed during model load');
    entry.loading = false;
    markReady();
    this.deps.emit({ type: 'load', model: model.name });
    return Math.max(1, Number(process.hrtime.bigint() - started));
  }

  /** Evict idle models (shortest keep-alive first, then name) until one more fits. */
  private async makeRoom(): Promise<void> {
    while (this.table.size >= this.deps.maxLoadedModels) {
      const idle = [...this.table.values()]
        .filter((e) => e.active === 0 && !e.loading)
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
          resolve();
          entry.active += 1; // balanced by the caller's immediate release
        },
        { once: true },
      );
    });
  }

  private releaseSlot(entry: LoadedEntry): void {
    const next = entry.waiters.shift();
    if (next) return next(); // the slot passes straight to the next waiter
    entry.active -= 1;
    if (entry.active > 0) return;
    entry.expiresAt = this.deps.now() + entry.keepAliveMs;
    if (entry.keepAliveMs <= 0) this.unload(entry);
    else if (entry.keepAliveMs <= MAX_TIMER_MS) {
      entry.timer = setTimeout(() => this.unload(entry), entry.keepAliveMs);
      entry.timer.unref();
    }
    const idle = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of idle) wake();
  }

  private unload(entry: LoadedEntry): void {
    if (this.table.get(entry.model.name) !== entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.table.delete(entry.model.name);
    this.deps.emit({ type: 'unload', model: entry.model.name });
  }
}
