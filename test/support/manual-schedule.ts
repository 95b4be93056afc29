import type { Schedule } from '../../services/health/ollama-poller';

/**
 * A `Schedule` whose timers fire only when the test says so: the background health refresh is
 * driven by hand, without sleeping.
 */
export function createManualSchedule(): {
  schedule: Schedule;
  /** Runs every pending timer once (e.g. the next health refresh). */
  fire: () => void;
  /** Delays of the timers waiting right now. */
  pending: () => number[];
} {
  let timers: Array<{ fn: () => void; ms: number }> = [];
  return {
    schedule: (fn, ms) => {
      const timer = { fn, ms };
      timers.push(timer);
      return { cancel: () => void (timers = timers.filter((t) => t !== timer)) };
    },
    fire: () => {
      const due = timers;
      timers = [];
      due.forEach((t) => t.fn());
    },
    pending: () => timers.map((t) => t.ms),
  };
}
