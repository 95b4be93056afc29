/** Small statistics for the bench: medians across repetitions, percentiles within one. */

/** The median of `values` (mean of the two middle values for an even count); NaN if empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (`p` in 0..100) of `values`; NaN if empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/**
 * Collapses repetitions into one record: every numeric field becomes the median of that field
 * over `reps` (fields missing in a repetition are ignored for that repetition).
 */
export function medianOfRecords<K extends string>(
  reps: ReadonlyArray<Partial<Record<K, number>>>,
): Record<K, number> {
  const keys = new Set<K>();
  for (const rep of reps) for (const key of Object.keys(rep) as K[]) keys.add(key);
  const out = {} as Record<K, number>;
  for (const key of keys) {
    out[key] = median(reps.map((r) => r[key]).filter((v): v is number => typeof v === 'number'));
  }
  return out;
}

/** The order of a repetition: `items` rotated by `rep`, so none is always loaded first. */
export function rotation<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
