import { AppError, isAppError } from '../../src/errors';
import type { KeyBudgets } from '../../src/config';
import type { Logger } from '../../src/logger';
import { modelKey } from '../../src/model-name';
import type { Principal } from '../../src/principal';
import { parsePeriod, periodsAt, type Period, type PeriodKind } from './periods';
import type { TokenCounts, UsageRow, UsageStore } from './store';

/** The response header that says a key is near one of its token budgets. */
export const BUDGET_WARNING_HEADER = 'Token-Budget-Warning';

/** What a generation was allowed with: the warning to send when a budget is nearly used. */
export interface BudgetVerdict {
  /** The Token-Budget-Warning value, when the key used TOKEN_BUDGET_WARN_PERCENT or more. */
  warning?: string;
}

/** GET /usage's query after validation (schemas/usage.query.schema.json). */
export interface UsageQuery {
  period: PeriodKind;
  /** `YYYY-MM-DD` (day) or `YYYY-MM` (month); default the current one. */
  date?: string;
  model?: string;
  key_id?: string;
}

export interface UsageReportRow {
  key_id: string;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface UsageReport {
  object: 'usage';
  period: PeriodKind;
  date: string;
  starts_at: string;
  ends_at: string;
  data: UsageReportRow[];
  /** Each key's budget for this period (keys with one), over every model. */
  budgets: Array<{ key_id: string; limit: number; used: number; remaining: number }>;
}

export interface UsageService {
  /** Counts one generation's tokens for a key (its id) and model. Cheap; never throws. */
  record(keyId: string, model: string, tokens: Partial<TokenCounts>): void;
  /**
   * Before a new generation: refuses a key whose daily or monthly budget is used up.
   * @throws AppError TOKEN_BUDGET_EXCEEDED (429, Retry-After at the next reset)
   */
  check(principal: Principal | undefined, signal?: AbortSignal): Promise<BudgetVerdict>;
  /**
   * Usage of the caller's own key, or (admin) of every key or one.
   * @throws AppError FORBIDDEN (another key's usage without the admin role),
   *   VALIDATION_FAILED (a date that does not exist), REDIS_UNAVAILABLE
   */
  report(query: UsageQuery, principal: Principal, signal?: AbortSignal): Promise<UsageReport>;
}

export interface UsageServiceOptions {
  store: UsageStore;
  now: () => number;
  logger: Logger;
  /** TOKEN_BUDGET_WARN_PERCENT. */
  warnPercent: number;
  /** The budgets of a configured key id (for an admin's report), from the keys in force. */
  budgetsOf: (keyId: string) => KeyBudgets | undefined;
  /** Called for each recorded generation (the metrics' tokens_total). */
  onTokens?: (keyId: string, model: string, tokens: TokenCounts) => void;
}

/** How often, at most, budget checks served without the shared store are logged. */
const UNCHECKED_LOG_INTERVAL_MS = 60_000;

const limitOf = (b: KeyBudgets | undefined, kind: PeriodKind): number | undefined =>
  kind === 'day' ? b?.tokensPerDay : b?.tokensPerMonth;

/**
 * Token usage and budgets. Usage is counted per key id and model from Ollama's counts
 * (prompt_eval_count and eval_count) as each generation ends; budgets count prompt plus
 * completion tokens over every model and replica, per UTC day and month, and are checked
 * before each new generation. A generation that started under its budget runs to its end, so
 * a key can pass its budget by the generations it had in flight. When the shared store cannot
 * be read the generation is served (budgets fail open, like the rate limits) and logged.
 */
export function createUsageService(options: UsageServiceOptions): UsageService {
  const { store, now, logger } = options;
  let lastUncheckedLog = -Infinity;

  const iso = (ms: number): string => new Date(ms).toISOString();

  return {
    record(keyId, model, tokens) {
      const counts = {
        promptTokens: Math.max(0, Math.trunc(tokens.promptTokens ?? 0)),
        completionTokens: Math.max(0, Math.trunc(tokens.completionTokens ?? 0)),
      };
      if (counts.promptTokens + counts.completionTokens === 0) return;
      const name = modelKey(model);
      options.onTokens?.(keyId, name, counts);
      void store.add(keyId, name, counts, now());
    },

    async check(principal, signal) {
      const budgets = principal?.budgets;
      if (!principal || (!budgets?.tokensPerDay && !budgets?.tokensPerMonth)) return {};
      const at = now();
      let used: { day: number; month: number };
      try {
        used = await store.totals(principal.id, at, signal);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'REDIS_UNAVAILABLE') throw err;
        if (at - lastUncheckedLog >= UNCHECKED_LOG_INTERVAL_MS) {
          lastUncheckedLog = at;
          logger.warn('token budgets not checked: Redis is down; generations are served', {
            key_id: principal.id,
          });
        }
        return {};
      }
      const periods = periodsAt(at);
      const exhausted: Array<{ period: Period; limit: number; used: number }> = [];
      const warnings: string[] = [];
      for (const period of [periods.day, periods.month]) {
        const limit = limitOf(budgets, period.kind);
        if (limit === undefined) continue;
        const n = used[period.kind];
        const resetS = Math.max(1, Math.ceil((period.endsAt - at) / 1000));
        if (n >= limit) exhausted.push({ period, limit, used: n });
        else if (n * 100 >= limit * options.warnPercent) {
          warnings.push(`${period.kind};used=${n};limit=${limit};reset=${resetS}`);
        }
      }
      if (exhausted.length > 0) {
        // Usable again only once every exhausted budget has reset.
        const until = Math.max(...exhausted.map((e) => e.period.endsAt));
        throw new AppError('TOKEN_BUDGET_EXCEEDED', undefined, {
          retryAfterS: Math.max(1, Math.ceil((until - at) / 1000)),
          details: exhausted.map((e) => ({
            period: e.period.kind,
            limit: e.limit,
            used: e.used,
            resets_at: iso(e.period.endsAt),
          })),
        });
      }
      return warnings.length > 0 ? { warning: warnings.join(', ') } : {};
    },

    async report(query, principal, signal) {
      const admin = principal.role === 'admin';
      if (!admin && query.key_id !== undefined && query.key_id !== principal.id) {
        throw new AppError('FORBIDDEN', 'Only an admin key may read the usage of other keys.', {
          details: { required_role: 'admin' },
        });
      }
      const keyId = admin ? query.key_id : principal.id;
      const period =
        query.date === undefined
          ? periodsAt(now())[query.period]
          : parsePeriod(query.period, query.date);
      if (!period) {
        throw new AppError('VALIDATION_FAILED', undefined, {
          details: [
            {
              in: 'query',
              path: '/date',
              message:
                query.period === 'day' ? 'must be a date YYYY-MM-DD' : 'must be a month YYYY-MM',
            },
          ],
        });
      }
      const rows = await store.rows(period, keyId, signal);
      const byKey = new Map<string, number>();
      for (const r of rows) {
        byKey.set(r.keyId, (byKey.get(r.keyId) ?? 0) + r.promptTokens + r.completionTokens);
      }
      if (keyId !== undefined && !byKey.has(keyId)) byKey.set(keyId, 0);
      const budgets: UsageReport['budgets'] = [];
      for (const [id, used] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
        const own = id === principal.id ? principal.budgets : options.budgetsOf(id);
        const limit = limitOf(own, period.kind);
        if (limit !== undefined) {
          budgets.push({ key_id: id, limit, used, remaining: Math.max(0, limit - used) });
        }
      }
      const model = query.model === undefined ? undefined : modelKey(query.model);
      return {
        object: 'usage',
        period: period.kind,
        date: period.id,
        starts_at: iso(period.startsAt),
        ends_at: iso(period.endsAt),
        data: rows
          .filter((r: UsageRow) => model === undefined || r.model === model)
          .sort((a, b) => a.keyId.localeCompare(b.keyId) || a.model.localeCompare(b.model))
          .map((r) => ({
            key_id: r.keyId,
            model: r.model,
            prompt_tokens: r.promptTokens,
            completion_tokens: r.completionTokens,
            total_tokens: r.promptTokens + r.completionTokens,
          })),
        budgets,
      };
    },
  };
}
