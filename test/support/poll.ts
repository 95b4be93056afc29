import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Asks `probe` again and again (each call after the previous one answered; no timers) until it
 * returns something other than undefined, and resolves with it; rejects once `withinMs` has
 * passed, naming `what`. For waits across processes, where no clock can be advanced.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  withinMs: number,
): Promise<{ value: T; elapsedMs: number }> {
  const started = performance.now();
  for (;;) {
    const value = await probe();
    const elapsedMs = performance.now() - started;
    if (value !== undefined) return { value, elapsedMs };
    if (elapsedMs > withinMs) throw new Error(`${what}: not reached within ${withinMs} ms`);
    await nextTurn();
  }
}
