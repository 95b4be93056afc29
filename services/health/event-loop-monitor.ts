import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';

/** Event-loop delay beyond the expected timer period, in ms. */
export interface EventLoopStats {
  p50Ms: number;
  p99Ms: number;
  /** Worst delay in the current and the previous window. */
  maxMs: number;
}

export interface EventLoopMonitor {
  start(): void;
  stop(): void;
  /** Cheap: reads two histograms, no I/O. */
  stats(): EventLoopStats;
}

export interface EventLoopMonitorOptions {
  /** Sampling period of the histogram, ms (default 10). */
  resolutionMs?: number;
  /**
   * Length of a measurement window, ms (default 10 000). A stall stays visible for one to two
   * windows, so a liveness probe polled every 10 s sees it, and then it is forgotten: one long
   * GC pause must not fail every later probe.
   */
  windowMs?: number;
}

/**
 * Measures event-loop delay with `perf_hooks.monitorEventLoopDelay` in rolling windows.
 * The histogram records the whole timer period, so the resolution is subtracted: an idle loop
 * reports about 0 ms.
 */
export function createEventLoopMonitor(options: EventLoopMonitorOptions = {}): EventLoopMonitor {
  const resolutionMs = options.resolutionMs ?? 10;
  const windowMs = options.windowMs ?? 10_000;
  let current: ELDHistogram | null = null;
  let previous: EventLoopStats = { p50Ms: 0, p99Ms: 0, maxMs: 0 };
  let timer: NodeJS.Timeout | null = null;

  const toMs = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs);
  const read = (h: ELDHistogram): EventLoopStats => ({
    p50Ms: toMs(h.percentile(50)),
    p99Ms: toMs(h.percentile(99)),
    maxMs: toMs(h.max),
  });

  return {
    start() {
      if (current) return;
      current = monitorEventLoopDelay({ resolution: resolutionMs });
      current.enable();
      timer = setInterval(() => {
        if (!current) return;
        previous = read(current);
        current.reset();
      }, windowMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      current?.disable();
      current = null;
    },
    stats() {
      if (!current || current.count === 0) return { ...previous };
      const now = read(current);
      return { ...now, maxMs: Math.max(now.maxMs, previous.maxMs) };
    },
  };
}
