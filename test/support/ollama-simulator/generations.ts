import type { SimEvent, SimGeneration } from './types';

/**
 * The generation log behind `sim.generations` and `sim.maxConcurrency()`: every request that
 * held a parallel slot, in the order they started, with how many ran at once. The maxima are
 * always kept; entries only while `recording` is on.
 */
export class GenerationLog {
  readonly entries: SimGeneration[] = [];
  /** Keep an entry per generation (off by default: a long benchmark would grow it forever). */
  recording = false;
  private running = new Map<string, number>();
  private total = 0;
  private maxTotal = 0;
  private maxByModel = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly emit: (e: SimEvent) => void,
  ) {}

  /** Record a generation's start; call the returned function once when it ends. */
  start(requestId: number, path: string, model: string, queuedAt: number): () => void {
    this.total += 1;
    const onModel = (this.running.get(model) ?? 0) + 1;
    this.running.set(model, onModel);
    this.maxTotal = Math.max(this.maxTotal, this.total);
    this.maxByModel.set(model, Math.max(this.maxByModel.get(model) ?? 0, onModel));
    const entry: SimGeneration = {
      requestId,
      path,
      model,
      queuedAt,
      startedAt: this.now(),
      concurrent: this.total,
      concurrentOnModel: onModel,
    };
    if (this.recording) this.entries.push(entry);
    this.emit({ type: 'generation-start', requestId, path, model });
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      entry.endedAt = this.now();
      this.total -= 1;
      this.running.set(model, (this.running.get(model) ?? 1) - 1);
      this.emit({ type: 'generation-end', requestId, path, model });
    };
  }

  maxConcurrency(model?: string): number {
    return model === undefined ? this.maxTotal : (this.maxByModel.get(model) ?? 0);
  }

  /** Forget finished history; generations still running keep counting. */
  reset(): void {
    this.entries.length = 0;
    this.maxTotal = this.total;
    this.maxByModel = new Map([...this.running].filter(([, n]) => n > 0));
  }
}
