/** The event types of a run's stream, in the order they can appear. */
export type RunEventType =
  | 'run.created'
  | 'run.in_progress'
  | 'step.started'
  | 'message.delta'
  | 'thinking.delta'
  | 'tool_call.created'
  | 'tool_call.completed'
  | 'step.completed'
  | 'candidate.completed'
  | 'judge.completed'
  | 'run.requires_action'
  | 'run.completed'
  | 'run.incomplete'
  | 'run.failed'
  | 'run.cancelled';

/** The events that end a run's stream: exactly one of them is a run's last event. */
export const TERMINAL_EVENT_TYPES = [
  'run.completed',
  'run.incomplete',
  'run.failed',
  'run.cancelled',
] as const satisfies readonly RunEventType[];

const TERMINAL: ReadonlySet<RunEventType> = new Set(TERMINAL_EVENT_TYPES);

export function isTerminalEvent(type: RunEventType): boolean {
  return TERMINAL.has(type);
}

const DELTAS: ReadonlySet<RunEventType> = new Set(['message.delta', 'thinking.delta']);

/** One event: `seq` starts at 1 and increases by one; it is the SSE `id:`. */
export interface RunEvent {
  seq: number;
  type: RunEventType;
  data: Record<string, unknown>;
}

export type RunEventListener = (event: RunEvent) => void;

export interface RunEvents {
  /** Appends an event (stamped with `run_id` and `seq`) and hands it to every subscriber. */
  emit(type: RunEventType, data?: Record<string, unknown>): RunEvent;
  /** Stored events with `seq > after`, in order. */
  since(after: number): RunEvent[];
  /**
   * Calls `listener` for each later event. Reading `since()` and subscribing in the same tick
   * loses nothing, since emission is synchronous.
   */
  subscribe(listener: RunEventListener): () => void;
  /** The last sequence number used (0 before the first event). */
  readonly lastSeq: number;
  /** Deltas not stored because the per-run limit was reached (live subscribers still got them). */
  readonly dropped: number;
}

/**
 * Sequence-numbered events of one run, kept for replay while the run is kept. At most
 * `maxStored` events are stored; past that, `message.delta` and `thinking.delta` events are passed to live
 * subscribers but not stored (every other event, including the terminal one that carries the
 * whole output, is always stored), so a very long answer cannot hold unbounded memory.
 */
export function createRunEvents(
  runId: string,
  options: { maxStored?: number; afterSeq?: number } = {},
): RunEvents {
  const maxStored = options.maxStored ?? 10_000;
  const stored: RunEvent[] = [];
  const listeners = new Set<RunEventListener>();
  // A run that goes on where another replica's events ended numbers its events after them.
  let seq = options.afterSeq ?? 0;
  let dropped = 0;
  return {
    emit(type, data = {}) {
      seq += 1;
      const event: RunEvent = { seq, type, data: { run_id: runId, seq, ...data } };
      if (!DELTAS.has(type) || stored.length < maxStored) stored.push(event);
      else dropped += 1;
      for (const listener of [...listeners]) listener(event);
      return event;
    },
    since(after) {
      // Stored events are ordered by seq; find the first one past `after`.
      let lo = 0;
      let hi = stored.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((stored[mid]?.seq ?? 0) <= after) lo = mid + 1;
        else hi = mid;
      }
      return stored.slice(lo);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get lastSeq() {
      return seq;
    },
    get dropped() {
      return dropped;
    },
  };
}

/** One event as server-sent-events text: `id`, `event` and a one-line JSON `data`. */
export function formatSse(event: RunEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}
