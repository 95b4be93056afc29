import assert from 'node:assert/strict';
import { backoff, createSystemClock } from '../../src/clock';
import { createManualClock } from '../support/manual-clock';

describe('backoff', () => {
  describe('with full jitter', () => {
    it('waits anywhere below a ceiling that doubles per attempt', () => {
      const top = (attempt: number) =>
        backoff(attempt, { baseMs: 100, jitter: 'full', random: () => 0.999999 });
      assert.deepEqual([1, 2, 3, 4].map(top), [100, 200, 400, 800]);
      assert.equal(backoff(3, { baseMs: 100, jitter: 'full', random: () => 0 }), 0);
    });
  });

  describe('with equal jitter', () => {
    it('waits at least half the ceiling', () => {
      const low = (attempt: number) =>
        backoff(attempt, { baseMs: 500, jitter: 'equal', random: () => 0 });
      assert.deepEqual([1, 2, 3].map(low), [250, 500, 1000]);
    });

    it('never exceeds maxMs, however many attempts', () => {
      const options = { baseMs: 500, maxMs: 1500, jitter: 'equal', random: () => 1 } as const;
      assert.deepEqual(
        [1, 2, 3, 4, 100].map((a) => backoff(a, options)),
        [500, 1000, 1500, 1500, 1500],
      );
    });
  });

  it('treats attempt 0 like the first retry', () => {
    const options = { baseMs: 80, jitter: 'full', random: () => 0.5 } as const;
    assert.equal(backoff(0, options), backoff(1, options));
  });
});

describe('the system clock', () => {
  const clock = createSystemClock();

  it('sleeps, and rejects with the reason when the signal aborts', async () => {
    await clock.sleep(1);
    const controller = new AbortController();
    const reason = new Error('stopped');
    const sleeping = clock.sleep(60_000, controller.signal);
    controller.abort(reason);
    await assert.rejects(sleeping, (err) => err === reason);
    await assert.rejects(clock.sleep(1, controller.signal), (err) => err === reason);
  });

  it('fires `after` once and `every` until cancelled', async () => {
    let ticks = 0;
    let afters = 0;
    const ticker = clock.every(1, () => (ticks += 1));
    clock.after(1, () => (afters += 1));
    // The timers are unref'd: a ref'd sleep keeps the process up while they fire.
    await clock.sleep(20);
    ticker.cancel();
    assert.equal(afters, 1);
    const seen = ticks;
    assert.ok(seen >= 1, `${seen} ticks`);
    await clock.sleep(10);
    assert.equal(ticks, seen, 'no tick after cancel');
  });
});

describe('the manual clock (test support)', () => {
  it('fires timers in due order only when advanced, and moves now()', () => {
    const clock = createManualClock({ start: 1000 });
    const fired: string[] = [];
    clock.after(30, () => fired.push('a'));
    const b = clock.every(10, () => fired.push('b'));
    clock.after(5, () => fired.push('c')).cancel();
    assert.deepEqual(clock.pending(), [10, 30]);
    clock.advance(25);
    assert.deepEqual(fired, ['b', 'b']);
    assert.equal(clock.now(), 1025);
    b.cancel();
    clock.fireNext();
    assert.deepEqual(fired, ['b', 'b', 'a']);
    assert.equal(clock.now(), 1030);
  });

  it('resolves a sleep when advanced past it, and rejects it on abort', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    const aborted = clock.sleep(50, controller.signal);
    controller.abort(new Error('gone'));
    await assert.rejects(aborted, /gone/);
    let done = false;
    const sleeping = clock.sleep(50).then(() => (done = true));
    clock.advance(49);
    await Promise.resolve();
    assert.equal(done, false);
    clock.advance(1);
    await sleeping;
    assert.equal(done, true);
    assert.deepEqual(clock.pending(), []);
  });
});
