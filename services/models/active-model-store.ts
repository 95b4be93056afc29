import { AppError } from '../../src/errors';

/** The active model as a store knows it. */
export interface ActiveModelRecord {
  model: string;
  /**
   * Orders switches: a replica applies a record only when its generation is greater than the
   * one it has. 0 is the configured OLLAMA_MODEL before any switch.
   */
  generation: number;
}

/** Which replicas have not applied a generation yet, and whether that wait ended. */
export interface AppliedResult {
  /** True when every live replica applied the generation before the deadline. */
  settled: boolean;
  /** Replicas still on an older generation when the wait ended (empty when settled). */
  pending: string[];
}

/**
 * The right to switch the active model, held by one switch at a time (per store: the process,
 * or the whole cluster for the Redis store).
 */
export interface SwitchLock {
  /**
   * Aborted with SWITCH_IN_PROGRESS when the lock was lost (it expired and another replica took
   * it); the switch then stops waiting on its preload and commits nothing.
   */
  readonly signal: AbortSignal;
  /**
   * Makes `model` the active model of every replica, only while this lock is held.
   * @throws AppError SWITCH_IN_PROGRESS when the lock was lost, REDIS_UNAVAILABLE
   */
  commit(model: string): Promise<ActiveModelRecord>;
  /**
   * Waits until every live replica has applied `generation` (a replica that stops renewing its
   * presence drops out), up to the store's deadline or until `signal` aborts.
   */
  applied(generation: number, signal?: AbortSignal): Promise<AppliedResult>;
  /** Gives the lock up (idempotent; a lost lock is left to its new holder). */
  release(): Promise<void>;
}

/** A change of the active model this replica applied. */
export interface AppliedChange {
  previous: string;
  model: string;
  /** True when another replica made the switch (the change reached this one through the store). */
  remote: boolean;
}

/**
 * Where the active model lives: in this process (one replica), or in Redis, shared by every
 * replica. Reading never does I/O: `current()` is the last value this replica learned, and it
 * keeps that value while the store is unreachable.
 */
export interface ActiveModelStore {
  readonly kind: 'memory' | 'redis';
  current(): ActiveModelRecord;
  /** The target of the switch holding the lock, as far as this replica knows (no I/O). */
  switching(): string | null;
  /**
   * Takes the switch lock for a switch to `target`.
   * @throws AppError SWITCH_IN_PROGRESS (409, `details.switching_to`), REDIS_UNAVAILABLE (503)
   */
  lock(target: string, opts?: { signal?: AbortSignal }): Promise<SwitchLock>;
  /** Calls `listener` after each change this replica applies; returns the unsubscribe. */
  onApplied(listener: (change: AppliedChange) => void): () => void;
  /**
   * Learns the stored model and keeps following it. Resolves once the first read ended
   * (successfully or not: an unreachable store leaves OLLAMA_MODEL until it answers).
   */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function switchInProgress(target: string | null): AppError {
  return new AppError('SWITCH_IN_PROGRESS', undefined, {
    details: { switching_to: target },
  });
}

/** Notifies listeners; one that throws cannot stop the others. */
export function createAppliedListeners(): {
  add(listener: (change: AppliedChange) => void): () => void;
  emit(change: AppliedChange): void;
} {
  const listeners = new Set<(change: AppliedChange) => void>();
  return {
    add(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit(change) {
      for (const listener of listeners) {
        try {
          listener(change);
        } catch {
          // A listener's own failure is its business; the change is applied either way.
        }
      }
    },
  };
}

/**
 * The active model of one replica (no REDIS_URL): a variable, and a lock that is a flag. Every
 * replica is this one, so a committed switch is applied everywhere at once.
 */
export function createMemoryActiveModelStore(initialModel: string): ActiveModelStore {
  let record: ActiveModelRecord = { model: initialModel, generation: 0 };
  let holder: string | null = null;
  const listeners = createAppliedListeners();
  return {
    kind: 'memory',
    current: () => record,
    switching: () => holder,
    onApplied: listeners.add,
    async lock(target) {
      if (holder !== null) throw switchInProgress(holder);
      holder = target;
      let held = true;
      return {
        signal: new AbortController().signal,
        async commit(model) {
          if (!held) throw switchInProgress(holder);
          const previous = record.model;
          record = { model, generation: record.generation + 1 };
          listeners.emit({ previous, model, remote: false });
          return record;
        },
        applied: async () => ({ settled: true, pending: [] }),
        async release() {
          if (!held) return;
          held = false;
          holder = null;
        },
      };
    },
    start: async () => undefined,
    stop: async () => undefined,
  };
}
