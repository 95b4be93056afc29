import assert from 'node:assert/strict';
import { sweepPeriodMs } from '../../services/agents/run-repository';
import { buildTestApp } from '../support/build-app';

describe('the agents runtime without REDIS_URL', () => {
  it('arms the expiry sweeps of runs and idempotency keys on the clock’s (unref’d) timers when started, and cancels them on stop', async () => {
    const t = await buildTestApp({
      simulator: false,
      env: { OLLAMA_HOST: 'http://127.0.0.1:9', RUNS_TTL_MS: '5000', IDEMPOTENCY_TTL_MS: '600000' },
    });
    try {
      const before = t.clock.pending().length;
      t.agents.start();
      const armed = t.clock.pending();
      assert.equal(armed.length, before + 2);
      assert.ok(armed.includes(sweepPeriodMs(5000)), 'the run sweep, every second');
      assert.ok(armed.includes(sweepPeriodMs(600_000)), 'the key sweep, every minute');
      await t.agents.stop();
      assert.equal(t.clock.pending().length, before);
    } finally {
      await t.close();
    }
  });

  it('takes a tenth of the TTL between sweeps, within 1 s and 60 s', () => {
    assert.deepEqual(
      [1000, 5000, 600_000, 3_600_000].map(sweepPeriodMs),
      [1000, 1000, 60_000, 60_000],
    );
  });
});
