import assert from 'node:assert/strict';
import { createAdmission } from '../../services/ollama/admission';
import { createManualClock } from '../support/manual-clock';

const codeOf = (code: string) => (err: { code?: string }) => err.code === code;

describe('admission (services/ollama/admission)', () => {
  const build = (maxConcurrency: number, maxQueue: number) => {
    const clock = createManualClock();
    return {
      clock,
      admission: createAdmission({ maxConcurrency, maxQueue, timeoutMs: 5000, clock }),
    };
  };

  it('lets maxConcurrency in, queues the rest in order, and hands a released slot to the oldest', async () => {
    const { admission, clock } = build(1, 2);
    const first = await admission.acquire();
    const order: string[] = [];
    const a = admission.acquire().then((slot) => (order.push('a'), slot));
    const b = admission.acquire().then((slot) => (order.push('b'), slot));
    assert.deepEqual(
      { inFlight: admission.stats().inFlight, queued: admission.stats().queued },
      { inFlight: 1, queued: 2 },
    );
    clock.advance(250);
    assert.equal(admission.stats().oldestWaitMs, 250);
    first.release();
    const slotA = await a;
    assert.equal(slotA.waitedMs, 250);
    slotA.release();
    (await b).release();
    assert.deepEqual(order, ['a', 'b']);
    assert.deepEqual(
      { inFlight: admission.stats().inFlight, queued: admission.stats().queued },
      { inFlight: 0, queued: 0 },
    );
  });

  it('refuses QUEUE_FULL (429) when the queue is full', async () => {
    const { admission } = build(1, 1);
    await admission.acquire();
    void admission.acquire().catch(() => undefined);
    await assert.rejects(admission.acquire(), codeOf('QUEUE_FULL'));
  });

  it('gives a waiter QUEUE_TIMEOUT (503) after timeoutMs on the clock', async () => {
    const { admission, clock } = build(1, 1);
    await admission.acquire();
    const waiting = admission.acquire();
    clock.advance(4999);
    assert.equal(admission.stats().queued, 1);
    clock.advance(1);
    await assert.rejects(waiting, codeOf('QUEUE_TIMEOUT'));
    assert.equal(admission.stats().queued, 0);
  });

  it('drops a waiter whose caller went away, with the caller’s reason', async () => {
    const { admission, clock } = build(1, 1);
    await admission.acquire();
    const controller = new AbortController();
    const waiting = admission.acquire(controller.signal);
    controller.abort(new Error('client left'));
    await assert.rejects(waiting, /client left/);
    assert.equal(admission.stats().queued, 0);
    assert.deepEqual(clock.pending(), [], 'its timeout is cancelled');
  });

  it('releases a slot once however often release is called', async () => {
    const { admission } = build(2, 0);
    const slot = await admission.acquire();
    slot.release();
    slot.release();
    assert.equal(admission.stats().inFlight, 0);
  });
});
