/** The periods token usage is counted over: UTC calendar days and months. */
export type PeriodKind = 'day' | 'month';

/** One period: its kind, its name (`2026-12-06`, `2026-12`), when it started and ends (ms). */
export interface Period {
  kind: PeriodKind;
  id: string;
  startsAt: number;
  endsAt: number;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** The UTC day and month that contain `ms`. */
export function periodsAt(ms: number): { day: Period; month: Period } {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  return {
    day: {
      kind: 'day',
      id: `${y}-${pad(m + 1)}-${pad(day)}`,
      startsAt: Date.UTC(y, m, day),
      endsAt: Date.UTC(y, m, day + 1),
    },
    month: {
      kind: 'month',
      id: `${y}-${pad(m + 1)}`,
      startsAt: Date.UTC(y, m, 1),
      endsAt: Date.UTC(y, m + 1, 1),
    },
  };
}

/**
 * The period a name denotes (`2026-12-06` a day, `2026-12` a month), or undefined when the
 * name is not a real date of that kind.
 */
export function parsePeriod(kind: PeriodKind, id: string): Period | undefined {
  const m = kind === 'day' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(id) : /^(\d{4})-(\d{2})$/.exec(id);
  if (!m) return undefined;
  const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, kind === 'day' ? Number(m[3]) : 1);
  const p = periodsAt(start)[kind];
  return p.id === id ? p : undefined;
}

/** How long usage of a period is kept after it ended: days ~2 months, months ~13 months. */
export const RETENTION_MS: Readonly<Record<PeriodKind, number>> = {
  day: 62 * 86_400_000,
  month: 400 * 86_400_000,
};
