import assert from 'node:assert/strict';
import { createEventLoopMonitor } from '../../services/health/event-loop-monitor';

/** Keeps the event loop busy for `ms` (a stall, not a sleep: nothing else can run). */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

describe('the event-loop monitor', () => {
  it('reports the stall after a blocked loop', async () => {
    const monitor = createEventLoopMonitor({ resolutionMs: 10 });
    monitor.start();
    try {
      // What is measured is real timer lateness, so this one test needs real ticks of the
      // histogram's own 10 ms timer (there is no clock to inject into perf_hooks): its first
      // tick only sets the baseline, the first tick after the stall records it.
      await new Promise((resolve) => setTimeout(resolve, 30));
      blockFor(120);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const stats = monitor.stats();
      assert.ok(stats.maxMs >= 100, JSON.stringify(stats));
      assert.ok(stats.p50Ms <= stats.maxMs);
    } finally {
      monitor.stop();
    }
  });

  it('reports zeros when stopped', () => {
    const monitor = createEventLoopMonitor();
    assert.deepEqual(monitor.stats(), { p50Ms: 0, p99Ms: 0, maxMs: 0 });
  });
});
