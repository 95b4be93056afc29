import { AppError } from '../../src/errors';
import type { RunHandle } from './run-handle';

/** A run as the store keeps it: its handle, and when it finished. */
export interface RunRecord {
  readonly handle: RunHandle;
  /** When the run reached a terminal state (ms since the epoch); null while it runs. */
  finishedAt: number | null;
}

export interface RunStore {
  /**
   * Adds a run. Finished runs past RUNS_TTL_MS are dropped first, then the oldest finished runs
   * while the store is full.
   * @throws AppError TOO_MANY_RUNS when RUNS_MAX runs are all still running.
   */
  add(record: RunRecord): void;
  /** The run, or undefined when unknown or expired. */
  get(id: string): RunRecord | undefined;
  /** Runs kept right now, and how many of them are still running. */
  stats(): { kept: number; running: number };
  /** Every run still running (for shutdown). */
  running(): RunRecord[];
}

/** Longest time between two sweeps of expired runs. */
const SWEEP_MS = 1000;

/**
 * Bounded in-memory run store. Nothing runs on a timer: expiry is checked when a run is read
 * and when one is added, against the injected clock.
 */
export function createRunStore(options: {
  max: number;
  ttlMs: number;
  now: () => number;
}): RunStore {
  const { max, ttlMs, now } = options;
  // A Map iterates in insertion order, i.e. oldest run first.
  const runs = new Map<string, RunRecord>();
  const expired = (r: RunRecord, at: number): boolean =>
    r.finishedAt !== null && r.finishedAt + ttlMs <= at;

  // The TTL sweep walks every kept run, so it runs at most once per SWEEP_MS of the clock
  // rather than on every add (get() still checks expiry exactly); eviction stays per add.
  let nextSweep = -Infinity;
  const purge = (): void => {
    const at = now();
    if (at >= nextSweep) {
      nextSweep = at + Math.min(ttlMs, SWEEP_MS);
      for (const [id, r] of runs) if (expired(r, at)) runs.delete(id);
    }
    for (const [id, r] of runs) {
      if (runs.size < max) break;
      if (r.finishedAt !== null) runs.delete(id);
    }
  };

  return {
    add(record) {
      purge();
      if (runs.size >= max) {
        throw new AppError('TOO_MANY_RUNS', undefined, {
          retryAfterS: 5,
          details: { runs_max: max },
        });
      }
      runs.set(record.handle.id, record);
    },
    get(id) {
      const r = runs.get(id);
      if (r && expired(r, now())) {
        runs.delete(id);
        return undefined;
      }
      return r;
    },
    stats() {
      let running = 0;
      for (const r of runs.values()) if (r.finishedAt === null) running += 1;
      return { kept: runs.size, running };
    },
    running() {
      return [...runs.values()].filter((r) => r.finishedAt === null);
    },
  };
}
