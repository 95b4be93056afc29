import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createMetrics } from '../../services/metrics/metrics';
import { AppError } from '../../src/errors';
import type { Principal } from '../../src/principal';
import { parsePeriod, periodsAt } from '../../services/usage/periods';
import { createUsageService } from '../../services/usage/service';
import { createMemoryUsageStore } from '../../services/usage/store';
import { createCaptureLogger } from '../support/capture-logger';
import { parseExposition } from '../support/exposition';

const HOUR = 3_600_000;
/** 2026-12-31 22:00 UTC: the day ends in 2 h, the month (and year) with it. */
const NEW_YEARS_EVE = Date.UTC(2026, 11, 31, 22);

function setup(start = Date.UTC(2026, 11, 6, 20)) {
  let now = start;
  const store = createMemoryUsageStore();
  const seen: Array<[string, string, number, number]> = [];
  const usage = createUsageService({
    store,
    now: () => now,
    logger: createCaptureLogger().logger,
    warnPercent: 80,
    budgetsOf: (id) => (id === 'team-b' ? { tokensPerMonth: 500 } : undefined),
    onTokens: (id, model, t) => seen.push([id, model, t.promptTokens, t.completionTokens]),
  });
  return {
    usage,
    store,
    seen,
    set: (ms: number) => void (now = ms),
    /** Lets the store's write (a resolved promise) land. */
    flush: () => new Promise<void>((resolve) => setImmediate(resolve)),
  };
}

const teamA: Principal = {
  id: 'team-a',
  role: 'agent',
  budgets: { tokensPerDay: 1000, tokensPerMonth: 5000 },
};
const admin: Principal = { id: 'ops', role: 'admin' };

async function refusal(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  return assert.fail('expected TOKEN_BUDGET_EXCEEDED');
}

describe('token usage and budgets (services/usage)', () => {
  describe('periods', () => {
    it('UTC days and months, across the end of a year and a leap day', () => {
      const p = periodsAt(NEW_YEARS_EVE);
      assert.equal(p.day.id, '2026-12-31');
      assert.equal(p.day.endsAt, Date.UTC(2027, 0, 1));
      assert.equal(p.month.id, '2026-12');
      assert.equal(p.month.endsAt, Date.UTC(2027, 0, 1));
      assert.equal(parsePeriod('day', '2028-02-29')?.endsAt, Date.UTC(2028, 2, 1));
      assert.equal(parsePeriod('day', '2027-02-29'), undefined);
      assert.equal(parsePeriod('month', '2026-13'), undefined);
      assert.equal(parsePeriod('month', '2026-12-01'), undefined);
    });
  });

  describe('budgets', () => {
    it('a used-up daily budget refuses with Retry-After at the next UTC midnight; the reset lets it through', async () => {
      const t = setup();
      assert.deepEqual(await t.usage.check(teamA), {});
      t.usage.record('team-a', 'llama3.2:3b', { promptTokens: 700, completionTokens: 100 });
      await t.flush();
      // 800 of 1000: the warning, with what is used, the limit and the seconds to the reset.
      assert.deepEqual(await t.usage.check(teamA), {
        warning: 'day;used=800;limit=1000;reset=14400',
      });
      t.usage.record('team-a', 'qwen3:8b', { promptTokens: 150, completionTokens: 50 });
      await t.flush();
      const err = await refusal(t.usage.check(teamA));
      assert.equal(err.code, 'TOKEN_BUDGET_EXCEEDED');
      assert.equal(err.status, 429);
      assert.equal(err.retryAfterS, 4 * 3600);
      assert.deepEqual(err.details, [
        { period: 'day', limit: 1000, used: 1000, resets_at: '2026-12-07T00:00:00.000Z' },
      ]);
      t.set(Date.UTC(2026, 11, 7, 0, 0, 1));
      assert.deepEqual(await t.usage.check(teamA), {}, 'a new day');
      // Other keys were never limited, and callers without budgets are not looked up.
      assert.deepEqual(await t.usage.check({ id: 'team-c', role: 'agent' }), {});
      assert.deepEqual(await t.usage.check(undefined), {});
    });

    it('a used-up monthly budget waits for the month; with both used up, the later reset counts', async () => {
      const t = setup(Date.UTC(2026, 11, 30, 12));
      t.usage.record('team-a', 'm', { promptTokens: 4500, completionTokens: 0 });
      t.set(NEW_YEARS_EVE);
      t.usage.record('team-a', 'm', { promptTokens: 900, completionTokens: 100 });
      await t.flush();
      const err = await refusal(t.usage.check(teamA));
      assert.equal(err.retryAfterS, 2 * 3600);
      assert.deepEqual(
        (err.details as Array<{ period: string }>).map((d) => d.period),
        ['day', 'month'],
      );
      const mid = setup(Date.UTC(2026, 11, 20, 12));
      mid.usage.record('team-a', 'm', { promptTokens: 5000, completionTokens: 0 });
      mid.set(Date.UTC(2026, 11, 21, 12));
      await mid.flush();
      const monthly = await refusal(mid.usage.check(teamA));
      // Not tomorrow: the month's budget is the one used up.
      assert.equal(monthly.retryAfterS, (Date.UTC(2027, 0, 1) - Date.UTC(2026, 11, 21, 12)) / 1000);
    });
  });

  describe('the report', () => {
    it('an agent key reads its own usage only; an admin every key, one key, one model or another day', async () => {
      const t = setup();
      t.usage.record('team-a', 'llama3.2:3b', { promptTokens: 10, completionTokens: 5 });
      t.usage.record('team-a', 'Qwen3:8B', { promptTokens: 1, completionTokens: 2 });
      t.usage.record('team-b', 'llama3.2:3b', { promptTokens: 100, completionTokens: 0 });
      t.usage.record('team-b', 'llama3.2:3b', { completionTokens: 0 });
      await t.flush();
      assert.deepEqual(t.seen, [
        ['team-a', 'llama3.2:3b', 10, 5],
        ['team-a', 'qwen3:8b', 1, 2],
        ['team-b', 'llama3.2:3b', 100, 0],
      ]);
      const own = await t.usage.report({ period: 'day' }, teamA);
      assert.equal(own.date, '2026-12-06');
      assert.equal(own.ends_at, '2026-12-07T00:00:00.000Z');
      assert.deepEqual(
        own.data.map((r) => [r.key_id, r.model, r.total_tokens]),
        [
          ['team-a', 'llama3.2:3b', 15],
          ['team-a', 'qwen3:8b', 3],
        ],
      );
      assert.deepEqual(own.budgets, [{ key_id: 'team-a', limit: 1000, used: 18, remaining: 982 }]);
      await assert.rejects(
        t.usage.report({ period: 'day', key_id: 'team-b' }, teamA),
        (err: unknown) => err instanceof AppError && err.code === 'FORBIDDEN',
      );

      const all = await t.usage.report({ period: 'month' }, admin);
      assert.equal(all.date, '2026-12');
      assert.deepEqual(
        all.data.map((r) => r.key_id),
        ['team-a', 'team-a', 'team-b'],
      );
      assert.deepEqual(all.budgets, [{ key_id: 'team-b', limit: 500, used: 100, remaining: 400 }]);
      const model = await t.usage.report({ period: 'day', model: 'llama3.2:3b' }, admin);
      assert.deepEqual(
        model.data.map((r) => [r.key_id, r.prompt_tokens]),
        [
          ['team-a', 10],
          ['team-b', 100],
        ],
      );
      const one = await t.usage.report({ period: 'day', key_id: 'team-b' }, admin);
      assert.deepEqual(
        one.data.map((r) => r.key_id),
        ['team-b'],
      );
      const before = await t.usage.report({ period: 'day', date: '2026-12-05' }, admin);
      assert.deepEqual(before.data, []);
      await assert.rejects(
        t.usage.report({ period: 'day', date: '2026-02-30' }, admin),
        (err: unknown) => err instanceof AppError && err.code === 'VALIDATION_FAILED',
      );
    });

    it('the memory store forgets days past their retention as new usage arrives', async () => {
      const t = setup(Date.UTC(2026, 0, 1, 12));
      t.usage.record('team-a', 'm', { promptTokens: 1, completionTokens: 0 });
      t.set(Date.UTC(2026, 0, 1, 12) + 70 * 24 * HOUR);
      t.usage.record('team-a', 'm', { promptTokens: 1, completionTokens: 0 });
      await t.flush();
      const old = await t.usage.report({ period: 'day', date: '2026-01-01' }, admin);
      assert.deepEqual(old.data, []);
      const month = await t.usage.report({ period: 'month', date: '2026-01' }, admin);
      assert.equal(month.data[0]?.prompt_tokens, 1, 'months are kept longer');
    });
  });

  describe('tokens_total{key_id, model, kind}', () => {
    it('labels configured key ids (and anonymous); any other id folds into other', async () => {
      const metrics = createMetrics({
        registry: new Registry(),
        build: { version: 't' },
        defaultMetrics: false,
        knownModels: () => ['llama3.2:3b'],
        knownKeyIds: () => ['team-a'],
      });
      metrics.keyTokens('team-a', 'llama3.2:3b', { promptTokens: 3, completionTokens: 4 });
      metrics.keyTokens('anonymous', 'llama3.2:3b', { promptTokens: 1, completionTokens: 0 });
      metrics.keyTokens('key_0123456789abcdef', 'gone:1b', {
        promptTokens: 5,
        completionTokens: 6,
      });
      metrics.keyTokens('removed-key', 'llama3.2:3b', { promptTokens: 7, completionTokens: 0 });
      const series = parseExposition(await metrics.registry.metrics());
      const tokens = Object.fromEntries(
        [...series].filter(([name]) => name.startsWith('tokens_total{')),
      );
      assert.deepEqual(tokens, {
        'tokens_total{key_id="team-a",kind="prompt",model="llama3.2:3b"}': 3,
        'tokens_total{key_id="team-a",kind="completion",model="llama3.2:3b"}': 4,
        'tokens_total{key_id="anonymous",kind="prompt",model="llama3.2:3b"}': 1,
        'tokens_total{key_id="other",kind="prompt",model="other"}': 5,
        'tokens_total{key_id="other",kind="completion",model="other"}': 6,
        'tokens_total{key_id="other",kind="prompt",model="llama3.2:3b"}': 7,
      });
    });
  });
});
