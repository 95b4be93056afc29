import assert from 'node:assert/strict';
import { withRetries } from '../../services/ollama/retry';
import { createManualClock } from '../support/manual-clock';

/** A clock whose sleeps are recorded and end at once. */
function recordingClock() {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms: number, signal?: AbortSignal) => {
      waits.push(ms);
      if (signal?.aborted) throw signal.reason;
    },
  };
}

describe('retries (services/ollama/retry)', () => {
  it('retries a retryable failure, waiting a full-jitter backoff that doubles', async () => {
    const clock = recordingClock();
    let attempts = 0;
    const result = await withRetries(
      async (n) => {
        attempts += 1;
        if (n < 3) throw new Error('busy');
        return 'ok';
      },
      {
        retries: 3,
        baseMs: 100,
        shouldRetry: () => true,
        signal: new AbortController().signal,
        clock,
        random: () => 0.5,
      },
    );
    assert.equal(result, 'ok');
    assert.equal(attempts, 4);
    assert.deepEqual(clock.waits, [50, 100, 200]);
  });

  it('gives up after the retries, and at once on an error that is not retryable', async () => {
    const clock = recordingClock();
    const options = {
      retries: 2,
      baseMs: 10,
      signal: new AbortController().signal,
      clock,
    };
    let attempts = 0;
    await assert.rejects(
      withRetries(
        async () => {
          attempts += 1;
          throw new Error('down');
        },
        { ...options, shouldRetry: () => true },
      ),
      /down/,
    );
    assert.equal(attempts, 3);
    attempts = 0;
    await assert.rejects(
      withRetries(
        async () => {
          attempts += 1;
          throw new Error('bad request');
        },
        { ...options, shouldRetry: () => false },
      ),
      /bad request/,
    );
    assert.equal(attempts, 1);
  });

  it('stops waiting when the call is aborted', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    let attempts = 0;
    const running = withRetries(
      async () => {
        attempts += 1;
        throw new Error('busy');
      },
      { retries: 5, baseMs: 1000, shouldRetry: () => true, signal: controller.signal, clock },
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(clock.pending().length, 1, 'waiting before the second attempt');
    controller.abort(new Error('client left'));
    await assert.rejects(running, /client left/);
    assert.equal(attempts, 1);
  });
});
