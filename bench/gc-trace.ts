/**
 * `--trace-gc-nvp` read back: V8 prints one line of `name=value` pairs per collection; these
 * are summed by kind of collection for `npm run bench:profile -- --gc`.
 */

/** The sums of one kind of collection (`s` scavenge, `mc` mark-compact, `mms` minor mark-sweep). */
export interface GcSums {
  count: number;
  pauseMs: number;
  promoted: number;
  allocated: number;
}

/** Sums the `--trace-gc-nvp` lines of `text` (one line per collection) by kind. */
export function sumGcLines(text: string): Map<string, GcSums> {
  const sums = new Map<string, GcSums>();
  const field = (line: string, name: string): number => {
    const m = new RegExp(`(?:^|\\s)${name}=([\\d.]+)`).exec(line);
    return m ? Number(m[1]) : 0;
  };
  for (const line of text.split('\n')) {
    const kind = /\sgc=(\w+)/.exec(line)?.[1];
    if (!kind) continue;
    const s = sums.get(kind) ?? { count: 0, pauseMs: 0, promoted: 0, allocated: 0 };
    s.count += 1;
    s.pauseMs += field(line, 'pause');
    s.promoted += field(line, 'promoted');
    s.allocated += field(line, 'allocated');
    sums.set(kind, s);
  }
  return sums;
}

export function gcReport(sums: Map<string, GcSums>, requests: number): string {
  const names: Record<string, string> = {
    s: 'scavenge',
    mms: 'minor mark-sweep',
    mc: 'mark-compact',
  };
  const rows = [...sums].map(
    ([kind, s]) =>
      `${(names[kind] ?? kind).padEnd(17)} ${String(s.count).padStart(5)}  ` +
      `${((1000 * s.pauseMs) / requests).toFixed(1).padStart(7)} µs  ` +
      `${(s.promoted / requests / 1024).toFixed(1).padStart(8)} KB  ` +
      `${(s.allocated / requests / 1024).toFixed(1).padStart(8)} KB`,
  );
  return `collection          count   pause/req  promoted/req  allocated/req\n${rows.join('\n')}\n`;
}
