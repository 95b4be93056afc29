/**
 * Reads the Prometheus text format into series → value, so tests can assert exact series.
 * Keys are `name{a="1",b="2"}` with label names sorted (or just `name`), whatever order the
 * exporter printed them in.
 */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const [, name = '', labelText = '', value = ''] = m;
    const labels: Record<string, string> = {};
    for (const l of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] ?? ''] = l[2] ?? '';
    }
    out.set(seriesKey(name, labels), Number(value));
  }
  return out;
}

/** The key {@link parseExposition} uses for a series. */
export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return name;
  return `${name}{${names.map((n) => `${n}="${labels[n] ?? ''}"`).join(',')}}`;
}

/** The series whose metric name starts with one of `prefixes`. */
export function seriesWithPrefix(
  series: Map<string, number>,
  prefixes: readonly string[],
): string[] {
  return [...series.keys()].filter((k) => prefixes.some((p) => k.startsWith(p)));
}

/** The value of an unlabelled counter or gauge in `registry` (0 before its first change). */
export async function metricValue(
  registry: {
    getSingleMetric(name: string): { get(): Promise<{ values: { value: number }[] }> } | undefined;
  },
  name: string,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values[0]?.value ?? 0;
}
