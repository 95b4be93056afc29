import { modelKey } from '../../src/model-name';
import { isModelFailure, modelFailingError } from './errors';

export interface ModelCircuits {
  /**
   * Throws MODEL_FAILING (503, Retry-After) while `model` is paused; after the pause lets one
   * call through and returns true for it: that call is the trial, and it must be reported
   * with `trial` set (`record`, or `releaseTrial` when its caller left).
   */
  assertAvailable(model: string): boolean;
  /**
   * Records how a call on `model` ended: success (no `err`) closes its breaker, a model failure
   * counts toward pausing it, any other error (Ollama down, a timeout) leaves the count as it
   * was and, when the call was the trial, lets the next call be the trial.
   */
  record(model: string, err?: unknown, trial?: boolean): void;
  /** The trial call ended without a word about the model (its caller left): the next call is. */
  releaseTrial(model: string): void;
  /** The models paused now, as they were named when they failed. */
  failing(): string[];
}

export interface ModelCircuitOptions {
  /** Model failures in a row that pause the model (MODEL_FAILURE_THRESHOLD). */
  threshold: number;
  /** How long a failing model is paused before one trial call (MODEL_COOLDOWN_MS). */
  cooldownMs: number;
  now: () => number;
  /** Models tracked at most; the oldest healthy entry goes first (default 64). */
  maxModels?: number;
}

interface Entry {
  name: string;
  failures: number;
  /** When the pause ends; 0 while the model is not paused. */
  openUntil: number;
  /** A trial call after the pause is in flight. */
  trial: boolean;
}

/**
 * A breaker per model for the failures that belong to one model (ollama-api.md §2.4: a model
 * that cannot load, runs out of memory or crashes answers 500 every time, while Ollama serves
 * every other model). After `threshold` such failures in a row the model is refused at once
 * for `cooldownMs`; then one call is let through, and its outcome closes or reopens it. The
 * Ollama-wide circuit never sees these failures, so one broken model cannot take the gateway
 * out of service. Models are keyed by their canonical name and the table is bounded.
 */
export function createModelCircuits(options: ModelCircuitOptions): ModelCircuits {
  const { threshold, cooldownMs, now } = options;
  const maxModels = options.maxModels ?? 64;
  const entries = new Map<string, Entry>();

  const evict = (): void => {
    if (entries.size <= maxModels) return;
    for (const [key, entry] of entries) {
      if (entry.openUntil === 0) {
        entries.delete(key);
        return;
      }
    }
    entries.delete(entries.keys().next().value as string);
  };

  return {
    assertAvailable(model) {
      const entry = entries.get(modelKey(model));
      if (!entry || entry.openUntil === 0) return false;
      const left = entry.openUntil - now();
      if (left > 0 || entry.trial) {
        throw modelFailingError(entry.name, Math.max(1, Math.ceil(Math.max(left, 0) / 1000)));
      }
      entry.trial = true;
      return true;
    },
    record(model, err, trial = false) {
      const key = modelKey(model);
      const entry = entries.get(key);
      if (err === undefined) {
        entries.delete(key);
        return;
      }
      if (!isModelFailure(err)) {
        // Only the trial's own end hands the trial on: a call refused with MODEL_FAILING, or
        // one admitted before the pause, says nothing about the trial still running.
        if (entry && trial) entry.trial = false;
        return;
      }
      const next = entry ?? { name: model, failures: 0, openUntil: 0, trial: false };
      next.failures += 1;
      next.trial = false;
      if (next.failures >= threshold) next.openUntil = now() + cooldownMs;
      entries.delete(key);
      entries.set(key, next);
      evict();
    },
    releaseTrial(model) {
      const entry = entries.get(modelKey(model));
      if (entry) entry.trial = false;
    },
    failing() {
      const at = now();
      return [...entries.values()]
        .filter((e) => e.openUntil !== 0 && (e.openUntil > at || e.trial))
        .map((e) => e.name);
    },
  };
}
