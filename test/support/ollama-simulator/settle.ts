import assert from 'node:assert/strict';

/** One turn of the event loop: pending I/O callbacks and promise reactions run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * For tests on a manual clock: let pending I/O and promise callbacks run until `cond` holds
 * (no timers, no sleeping); fails the test if it never does within `turns` loop turns.
 */
export async function until(cond: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns && !cond(); i += 1) await turn();
  assert.ok(cond(), 'condition not reached');
}

/** Whether `promise` is still unsettled once the I/O already under way has been handled. */
export async function stillPending(promise: Promise<unknown>, turns = 20): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i += 1) await turn();
  return !settled;
}
