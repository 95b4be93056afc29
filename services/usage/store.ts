import { periodsAt, RETENTION_MS, type Period } from './periods';

/** Tokens of one generation, or summed over several. */
export interface TokenCounts {
  promptTokens: number;
  completionTokens: number;
}

/** The tokens of one key on one model over one period. */
export interface UsageRow extends TokenCounts {
  keyId: string;
  /** The model as Ollama compares names (src/model-name `modelKey`). */
  model: string;
}

/** Where token usage is kept: per key and model, for each UTC day and month. */
export interface UsageStore {
  /**
   * Adds one generation's tokens to its key's day and month (those containing `at`). Never
   * rejects: a store that cannot write now keeps the tokens and adds them later.
   */
  add(keyId: string, model: string, tokens: TokenCounts, at: number): Promise<void>;
  /**
   * A key's total tokens (prompt + completion, every model) in the day and the month that
   * contain `at`. @throws AppError REDIS_UNAVAILABLE when the shared store is down.
   */
  totals(keyId: string, at: number, signal?: AbortSignal): Promise<{ day: number; month: number }>;
  /** The rows of a period, of one key or of every key. @throws AppError REDIS_UNAVAILABLE */
  rows(period: Period, keyId?: string, signal?: AbortSignal): Promise<UsageRow[]>;
}

type ByModel = Map<string, TokenCounts>;

/**
 * Usage in this process's memory (no REDIS_URL: one replica). Periods past their retention
 * are dropped as new usage arrives, so memory stays bounded by keys × models × kept periods.
 */
export function createMemoryUsageStore(): UsageStore {
  // `${kind}:${id}` → key id → model → counts, with each period's end for the pruning.
  const periods = new Map<string, { endsAt: number; keys: Map<string, ByModel> }>();

  const prune = (at: number): void => {
    for (const [name, p] of periods) {
      const kind = name.startsWith('day:') ? 'day' : 'month';
      if (p.endsAt + RETENTION_MS[kind] <= at) periods.delete(name);
    }
  };

  const keysOf = (period: Period) => periods.get(`${period.kind}:${period.id}`)?.keys;

  const total = (byModel: ByModel | undefined): number => {
    let sum = 0;
    for (const c of byModel?.values() ?? []) sum += c.promptTokens + c.completionTokens;
    return sum;
  };

  return {
    async add(keyId, model, tokens, at) {
      prune(at);
      for (const period of Object.values(periodsAt(at))) {
        const name = `${period.kind}:${period.id}`;
        let p = periods.get(name);
        if (!p) {
          p = { endsAt: period.endsAt, keys: new Map() };
          periods.set(name, p);
        }
        let byModel = p.keys.get(keyId);
        if (!byModel) {
          byModel = new Map();
          p.keys.set(keyId, byModel);
        }
        const c = byModel.get(model) ?? { promptTokens: 0, completionTokens: 0 };
        byModel.set(model, {
          promptTokens: c.promptTokens + tokens.promptTokens,
          completionTokens: c.completionTokens + tokens.completionTokens,
        });
      }
    },
    async totals(keyId, at) {
      const { day, month } = periodsAt(at);
      return { day: total(keysOf(day)?.get(keyId)), month: total(keysOf(month)?.get(keyId)) };
    },
    async rows(period, keyId) {
      const rows: UsageRow[] = [];
      for (const [id, byModel] of keysOf(period) ?? []) {
        if (keyId !== undefined && id !== keyId) continue;
        for (const [model, c] of byModel) rows.push({ keyId: id, model, ...c });
      }
      return rows;
    },
  };
}
