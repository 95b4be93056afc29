import assert from 'node:assert/strict';
import { createAdmission, type Slot } from '../../services/ollama/admission';
import { keyCap } from '../../services/ollama/admissions';
import { admissionTicket, type AdmissionTicket } from '../../src/principal';
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

  describe('per-key caps and fair queueing', () => {
    /** Lets the promise callbacks of grants run (no time passes on the clock). */
    const flush = () => new Promise((resolve) => setImmediate(resolve));

    const harness = (maxConcurrency: number, maxQueue = 100, keyMaxConcurrency?: number) => {
      const clock = createManualClock();
      const admission = createAdmission({
        maxConcurrency,
        maxQueue,
        timeoutMs: 5000,
        clock,
        ...(keyMaxConcurrency !== undefined ? { keyMaxConcurrency } : {}),
      });
      const order: string[] = [];
      const held: Slot[] = [];
      const take = (name: string, ticket?: AdmissionTicket) =>
        admission.acquire(undefined, ticket).then((slot) => {
          order.push(name);
          held.push(slot);
          return slot;
        });
      /** Releases the oldest held slot and lets the next grant happen. */
      const turnover = async () => {
        held.shift()?.release();
        await flush();
      };
      return { admission, clock, order, held, take, turnover };
    };

    it('holds a key to its cap while another key gets the free slot at once', async () => {
      const { admission, order, take, turnover } = harness(3, 100, 2);
      await take('a1', { key: 'A' });
      await take('a2', { key: 'A' });
      void take('a3', { key: 'A' });
      await flush();
      assert.deepEqual(order, ['a1', 'a2'], 'A waits at its cap of 2 with a slot free');
      assert.deepEqual(
        { inFlight: admission.stats().inFlight, queued: admission.stats().queued },
        { inFlight: 2, queued: 1 },
      );
      await take('b1', { key: 'B' });
      assert.deepEqual(order, ['a1', 'a2', 'b1']);
      await turnover();
      assert.deepEqual(order, ['a1', 'a2', 'b1', 'a3'], 'A’s waiter goes when A is below its cap');
    });

    it('takes the per-key cap from the ticket over the default', async () => {
      const { order, take } = harness(4, 100, 1);
      await take('a1', { key: 'A', maxConcurrency: 3 });
      await take('a2', { key: 'A', maxConcurrency: 3 });
      await take('a3', { key: 'A', maxConcurrency: 3 });
      void take('a4', { key: 'A', maxConcurrency: 3 });
      await take('b1', { key: 'B' });
      void take('b2', { key: 'B' });
      await flush();
      assert.deepEqual(order, ['a1', 'a2', 'a3', 'b1']);
    });

    it('serves waiting keys round-robin, not first come first served', async () => {
      const { order, take, turnover } = harness(1);
      await take('first');
      for (const n of [1, 2, 3, 4]) void take(`a${n}`, { key: 'A' });
      void take('b1', { key: 'B' });
      void take('c1', { key: 'C' });
      for (let i = 0; i < 6; i += 1) await turnover();
      assert.deepEqual(order, ['first', 'a1', 'b1', 'c1', 'a2', 'a3', 'a4']);
    });

    it('gives turns in proportion to the keys’ weights', async () => {
      const { order, take, turnover } = harness(1);
      await take('first');
      for (let n = 0; n < 8; n += 1) {
        void take('A', { key: 'A', weight: 3 });
        void take('B', { key: 'B', weight: 1 });
      }
      for (let i = 0; i < 8; i += 1) await turnover();
      const served = order.slice(1, 9);
      assert.equal(served.filter((k) => k === 'A').length, 6, served.join(','));
      assert.equal(served.filter((k) => k === 'B').length, 2, served.join(','));
    });

    it('serves interactive keys before standard ones, and standard before batch', async () => {
      const { order, take, turnover } = harness(1);
      await take('first');
      void take('batch', { key: 'B', priority: 'batch' });
      void take('standard', { key: 'S' });
      void take('interactive', { key: 'I', priority: 'interactive' });
      for (let i = 0; i < 3; i += 1) await turnover();
      assert.deepEqual(order, ['first', 'interactive', 'standard', 'batch']);
    });

    it('gives a key back no credit for the time it was idle', async () => {
      const { order, take, turnover } = harness(1);
      await take('first');
      for (const n of [1, 2, 3, 4]) void take(`a${n}`, { key: 'A' });
      await turnover();
      await turnover();
      // B arrives after A has had two turns: it goes next, then they alternate.
      void take('b1', { key: 'B' });
      void take('b2', { key: 'B' });
      for (let i = 0; i < 4; i += 1) await turnover();
      assert.deepEqual(order, ['first', 'a1', 'a2', 'b1', 'a3', 'b2', 'a4']);
    });

    it('counts every key’s waiters against QUEUE_MAX, and times out and drops keyed waiters', async () => {
      const { admission, clock, take } = harness(1, 2);
      await take('first');
      const a = take('a', { key: 'A' });
      const controller = new AbortController();
      const b = admission.acquire(controller.signal, { key: 'B' });
      await assert.rejects(take('c', { key: 'C' }), codeOf('QUEUE_FULL'));
      controller.abort(new Error('gone'));
      await assert.rejects(b, /gone/);
      clock.advance(5000);
      await assert.rejects(a, codeOf('QUEUE_TIMEOUT'));
      assert.deepEqual(
        { inFlight: admission.stats().inFlight, queued: admission.stats().queued },
        { inFlight: 1, queued: 0 },
      );
      assert.deepEqual(clock.pending(), []);
    });

    it('makes room in a full queue for a key with fewer waiting by refusing the biggest key’s newest', async () => {
      const { admission, order, take, turnover } = harness(1, 3);
      await take('first');
      const a = [1, 2, 3].map((n) => take(`a${n}`, { key: 'A' }));
      const a3 = a[2]!.then(
        () => 'served',
        (err: { code?: string }) => err.code,
      );
      const b = take('b1', { key: 'B' });
      assert.equal(await a3, 'QUEUE_FULL', 'A’s newest gives its place to B');
      assert.equal(admission.stats().queued, 3);
      // A key with as many waiting as any other is refused itself.
      await assert.rejects(take('a4', { key: 'A' }), codeOf('QUEUE_FULL'));
      await assert.rejects(take('b2', { key: 'B' }), codeOf('QUEUE_FULL'));
      for (let i = 0; i < 3; i += 1) await turnover();
      await Promise.all([a[0], a[1], b]);
      assert.deepEqual(order, ['first', 'a1', 'b1', 'a2']);
    });

    it('defaults a key’s cap to every slot but one (KEY_MAX_CONCURRENCY=0)', () => {
      const config = {
        OLLAMA_MAX_CONCURRENCY: 4,
        QUEUE_MAX: 1,
        QUEUE_TIMEOUT_MS: 1,
        KEY_MAX_CONCURRENCY: 0,
        OLLAMA_MAX_CONCURRENCY_LOCAL: 1,
        ADMISSION_LEASE_MS: 1000,
      };
      assert.equal(keyCap(config, 4), 3);
      assert.equal(keyCap(config, 1), 1);
      assert.equal(keyCap({ ...config, KEY_MAX_CONCURRENCY: 2 }, 4), 2);
    });

    it('builds tickets from the key’s limits, and one group per client IP for anonymous callers', () => {
      assert.deepEqual(admissionTicket(undefined, '10.0.0.7'), { key: 'ip:10.0.0.7' });
      assert.deepEqual(
        admissionTicket(
          {
            id: 'team-a',
            role: 'agent',
            limits: { maxConcurrency: 2, weight: 3, priority: 'batch' },
          },
          '10.0.0.7',
        ),
        { key: 'team-a', maxConcurrency: 2, weight: 3, priority: 'batch' },
      );
    });
  });
});
