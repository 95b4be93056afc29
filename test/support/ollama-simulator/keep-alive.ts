import { HttpError } from './http-io';

/** Ollama stores "forever" as max int64 nanoseconds; in ms that still fits a JS number. */
export const FOREVER_MS = 9223372036854;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Go's time.ParseDuration, in milliseconds. Returns undefined for text Go rejects; callers
 * turn that into the 400 Ollama answers. A bare number ("300") has no unit and is rejected,
 * except "0", which Go accepts.
 */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  const match = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const part of (match[2] ?? '').matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (UNIT_MS[part[2] ?? ''] ?? 0);
  }
  return match[1] === '-' ? -total : total;
}

/**
 * A request's `keep_alive` in ms: undefined when absent (keep the current / default value),
 * FOREVER_MS for any negative value, numbers are seconds, strings are Go durations.
 */
export function parseKeepAlive(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value < 0 ? FOREVER_MS : value * 1000;
  if (typeof value === 'string') {
    const ms = parseGoDuration(value);
    if (ms === undefined) {
      const missingUnit = /^[+-]?(\d+\.?\d*|\.\d+)$/.test(value);
      throw new HttpError(
        400,
        missingUnit
          ? `time: missing unit in duration "${value}"`
          : `time: invalid duration "${value}"`,
      );
    }
    return ms < 0 ? FOREVER_MS : ms;
  }
  throw new HttpError(
    400,
    `json: cannot unmarshal ${typeof value} into Go struct field .keep_alive`,
  );
}
