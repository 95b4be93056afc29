import { canonicalJson } from './idempotency';
import type { AgentLimits } from './types';

/** Service defaults; the hard caps are the schema maxima (`schemas/agent.schema.json`). */
export const DEFAULT_LIMITS: Readonly<AgentLimits> = Object.freeze({
  max_steps: 10,
  max_tool_calls: 20,
  max_parallel_tool_calls: 4,
  max_repeat_tool_call: 2,
  timeout_ms: 300_000,
  tool_timeout_ms: 30_000,
  max_tool_output_chars: 16_000,
});

/** The request's limits over the agent's over the defaults, field by field. */
export function resolveLimits(
  ...layers: ReadonlyArray<Partial<AgentLimits> | undefined>
): AgentLimits {
  const out: AgentLimits = { ...DEFAULT_LIMITS };
  // Later layers win; absent fields keep what is below them (`??`, so 0 stays a value).
  for (const layer of layers) {
    if (!layer) continue;
    for (const key of Object.keys(out) as Array<keyof AgentLimits>) {
      out[key] = layer[key] ?? out[key];
    }
  }
  return out;
}

export interface RepeatDetector {
  /** Counts one call; true when this (tool, arguments) pair has now been seen more than allowed. */
  record(name: string, args: unknown): boolean;
  /** The counts so far (kept with a paused run, given back as `seed` when it resumes). */
  entries(): Array<[string, number]>;
}

/**
 * Spots a model stuck calling the same tool with the same arguments: arguments are compared
 * as canonical JSON (key order does not matter). More than `maxRepeat` identical calls trips it.
 */
export function createRepeatDetector(
  maxRepeat: number,
  seed: ReadonlyArray<[string, number]> = [],
): RepeatDetector {
  const seen = new Map<string, number>(seed);
  return {
    record(name, args) {
      const key = `${name}\u0000${canonicalJson(args)}`;
      const count = (seen.get(key) ?? 0) + 1;
      seen.set(key, count);
      return count > maxRepeat;
    },
    entries: () => [...seen],
  };
}
