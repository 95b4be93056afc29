import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { AdmissionTicket } from '../../src/principal';

export type { AdmissionTicket } from '../../src/principal';

/**
 * Admission control in front of one Ollama backend. Ollama's own wait for a loaded model's slot
 * is unbounded (it never answers 503 for a loaded model), so the gateway bounds it: at most
 * `maxConcurrency` generations in flight, at most `maxQueue` waiters, each waiting at most
 * `timeoutMs`. Waiters are grouped by their ticket's key: a key has at most its cap in flight
 * (above it its requests wait, they do not fail), and freed slots go round-robin across keys,
 * weighted by each key's weight, a higher priority class first (see {@link createFairQueue}).
 */
export interface Admission {
  /**
   * Waits for a slot. Rejects with QUEUE_FULL (429) when the queue is full, QUEUE_TIMEOUT (503)
   * after `timeoutMs`, or the signal's reason when the caller goes away while waiting. Without a
   * ticket the call belongs to one internal group with no cap of its own.
   */
  acquire(signal?: AbortSignal, ticket?: AdmissionTicket): Promise<Slot>;
  /** Never waits: a cached snapshot where the state lives elsewhere (Redis). */
  stats(): AdmissionStats;
}

export interface Slot {
  /** Time spent waiting for this slot, ms. */
  readonly waitedMs: number;
  /** Gives the slot back (idempotent). */
  release(): void;
}

export interface AdmissionStats {
  inFlight: number;
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  /** How long the oldest waiter has been waiting, ms (0 when nobody waits). */
  oldestWaitMs: number;
  /**
   * `global`: the figures are every replica's together (Redis); `local`: this replica's own
   * (no Redis configured, or the per-replica share while Redis is unreachable).
   */
  mode?: 'global' | 'local';
}

export interface AdmissionOptions {
  maxConcurrency: number;
  maxQueue: number;
  timeoutMs: number;
  /** Cap of a key whose ticket names none (KEY_MAX_CONCURRENCY resolved; default: no cap). */
  keyMaxConcurrency?: number;
  /** Time and the queue timeout's timer. */
  clock: Pick<Clock, 'now' | 'after'>;
}

/** Priority classes, served in this order: a ticket without a priority is `standard`. */
export const PRIORITY_CLASSES = ['interactive', 'standard', 'batch'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** A ticket with every default filled in, as the queues use it. */
export interface Flow {
  key: string;
  cap: number;
  weight: number;
  priority: PriorityClass;
}

/** The group of calls that carry no ticket (internal callers): capped by the backend only. */
export const UNKEYED = '-';

/** Fills in a ticket's defaults: the key's cap, weight 1, the `standard` class. */
export function flowOf(
  ticket: AdmissionTicket | undefined,
  maxConcurrency: number,
  keyMaxConcurrency: number | undefined,
): Flow {
  if (!ticket) return { key: UNKEYED, cap: maxConcurrency, weight: 1, priority: 'standard' };
  const cap = ticket.maxConcurrency ?? keyMaxConcurrency ?? maxConcurrency;
  return {
    key: ticket.key,
    cap: Math.max(1, Math.floor(cap)),
    weight: ticket.weight !== undefined && ticket.weight > 0 ? ticket.weight : 1,
    priority: ticket.priority ?? 'standard',
  };
}

/** Weight of the newest sample in the moving average of slot hold times. */
const HOLD_EWMA_WEIGHT = 0.2;

/** A Retry-After guess: the time for the queue ahead to drain, 1–60 s. */
export function retryAfterS(avgHoldMs: number, queued: number, maxConcurrency: number): number {
  return Math.min(60, Math.max(1, Math.ceil((avgHoldMs * (queued + 1)) / maxConcurrency / 1000)));
}

/** The moving average of how long a slot is held, for Retry-After. */
export function createHoldAverage(): { sample(ms: number): void; value(): number } {
  let avg = 1000;
  return {
    sample: (ms) => (avg += HOLD_EWMA_WEIGHT * (ms - avg)),
    value: () => avg,
  };
}

/**
 * A slot whose first `release()` records how long it was held and then calls `free`; later
 * calls do nothing.
 */
export function heldSlot(
  waitedMs: number,
  hold: { sample(ms: number): void },
  now: () => number,
  free: () => void,
): Slot {
  const heldFrom = now();
  let released = false;
  return {
    waitedMs,
    release() {
      if (released) return;
      released = true;
      hold.sample(now() - heldFrom);
      free();
    },
  };
}

export function queueFull(retryAfter: number, queued: number, maxQueue: number): AppError {
  return new AppError('QUEUE_FULL', undefined, {
    retryAfterS: retryAfter,
    details: { queued, max_queue: maxQueue },
  });
}

export function queueTimeout(retryAfter: number, waitedMs: number): AppError {
  return new AppError('QUEUE_TIMEOUT', undefined, {
    retryAfterS: retryAfter,
    details: { waited_ms: waitedMs },
  });
}

interface QueueEntry<T> {
  flow: Flow;
  item: T;
}

interface FlowQueue<T> {
  key: string;
  priority: PriorityClass;
  /** Virtual time of the flow's next turn (stride scheduling): lowest goes first. */
  pass: number;
  entries: Array<QueueEntry<T>>;
}

/**
 * The fair queue: waiting items grouped in flows (a key within a priority class). `next()`
 * serves the highest class that has an eligible flow (one with waiters whose key is below its
 * cap); within a class, the flow with the lowest virtual time, which then advances by
 * 1/weight (stride scheduling: over time each waiting key gets turns in proportion to its
 * weight, and one key's long queue never delays another key's request by more than a turn).
 * A flow that comes back after idling starts at the class's current virtual time, so it
 * gets no credit for the time it did not wait.
 */
export function createFairQueue<T>() {
  const flows = new Map<string, FlowQueue<T>>();
  const vtime: Record<PriorityClass, number> = { interactive: 0, standard: 0, batch: 0 };
  const idOf = (f: Flow): string => `${f.priority}\n${f.key}`;
  let size = 0;

  return {
    size: () => size,
    push(flow: Flow, item: T): void {
      const id = idOf(flow);
      let queue = flows.get(id);
      if (!queue) {
        queue = { key: flow.key, priority: flow.priority, pass: 0, entries: [] };
        flows.set(id, queue);
      }
      if (queue.entries.length === 0) queue.pass = Math.max(queue.pass, vtime[flow.priority]);
      queue.entries.push({ flow, item });
      size += 1;
    },
    /** Removes `item` (a waiter that left); true when it was queued. */
    remove(flow: Flow, item: T): boolean {
      const queue = flows.get(idOf(flow));
      const index = queue ? queue.entries.findIndex((e) => e.item === item) : -1;
      if (!queue || index === -1) return false;
      queue.entries.splice(index, 1);
      size -= 1;
      return true;
    },
    /** Takes the next item to serve, given each key's slots in flight; undefined: none may go. */
    next(inFlightOf: (key: string) => number): QueueEntry<T> | undefined {
      for (const priority of PRIORITY_CLASSES) {
        let best: FlowQueue<T> | undefined;
        for (const [id, queue] of flows) {
          if (queue.priority !== priority) continue;
          const head = queue.entries[0];
          if (!head) {
            // Idle with no credit left over: forget it (it restarts at the class's time).
            if (queue.pass <= vtime[priority]) flows.delete(id);
            continue;
          }
          if (inFlightOf(queue.key) >= head.flow.cap) continue;
          if (!best || queue.pass < best.pass) best = queue;
        }
        if (best) {
          const entry = best.entries.shift()!;
          size -= 1;
          vtime[priority] = best.pass;
          best.pass += 1 / entry.flow.weight;
          return entry;
        }
      }
      return undefined;
    },
    /**
     * When the queue is full: the newest item of the key with the most waiting, if that key has
     * more waiting than `flow`'s (which then takes its place); else undefined (`flow`'s newcomer
     * is the one refused). So one key's burst never locks the others out of the queue.
     */
    evictFor(flow: Flow): T | undefined {
      const waitingOf = new Map<string, number>();
      for (const queue of flows.values()) {
        waitingOf.set(queue.key, (waitingOf.get(queue.key) ?? 0) + queue.entries.length);
      }
      let victim: string | undefined;
      let most = waitingOf.get(flow.key) ?? 0;
      for (const [key, n] of waitingOf) {
        if (n > most) [victim, most] = [key, n];
      }
      if (victim === undefined) return undefined;
      // Its newest request, from its lowest class that has one.
      for (const priority of [...PRIORITY_CLASSES].reverse()) {
        const entry = flows.get(`${priority}\n${victim}`)?.entries.pop();
        if (entry) {
          size -= 1;
          return entry.item;
        }
      }
      return undefined;
    },
  };
}

interface Waiter {
  enqueuedAt: number;
  grant: () => void;
  /** Refused after all: the queue is full and its key has the most waiting. */
  refuse: () => void;
}

/** The admission of one replica, in memory. */
export function createAdmission(options: AdmissionOptions): Admission {
  const { maxConcurrency, maxQueue, timeoutMs, clock } = options;
  const { now } = clock;
  const queue = createFairQueue<Waiter>();
  /** Every waiter, oldest first (for oldestWaitMs). */
  const waiting = new Set<Waiter>();
  const perKey = new Map<string, number>();
  const hold = createHoldAverage();
  let inFlight = 0;

  const inFlightOf = (key: string): number => perKey.get(key) ?? 0;
  const retryAfter = (): number => retryAfterS(hold.value(), waiting.size, maxConcurrency);

  /** Hands free slots to the waiters the fair queue picks. */
  const dispatch = (): void => {
    while (inFlight < maxConcurrency) {
      const entry = queue.next(inFlightOf);
      if (!entry) return;
      waiting.delete(entry.item);
      take(entry.flow.key);
      entry.item.grant();
    }
  };

  const take = (key: string): void => {
    inFlight += 1;
    perKey.set(key, inFlightOf(key) + 1);
  };

  const slot = (key: string, waitedMs: number): Slot =>
    heldSlot(waitedMs, hold, now, () => {
      inFlight -= 1;
      const left = inFlightOf(key) - 1;
      if (left > 0) perKey.set(key, left);
      else perKey.delete(key);
      dispatch();
    });

  return {
    acquire(signal, ticket) {
      if (signal?.aborted) return Promise.reject(signal.reason as unknown);
      const flow = flowOf(ticket, maxConcurrency, options.keyMaxConcurrency);
      return new Promise<Slot>((resolve, reject) => {
        const enqueuedAt = now();
        /** Armed once the waiter really waits (not when it was served at once). */
        const armed: { timer?: TimerHandle } = {};
        // Served within this call (a free slot): it did not wait, whatever the clock ticked.
        let served = true;
        const disarm = (): void => {
          armed.timer?.cancel();
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          enqueuedAt,
          grant: () => {
            disarm();
            resolve(slot(flow.key, served ? 0 : now() - enqueuedAt));
          },
          refuse: () => {
            disarm();
            waiting.delete(waiter);
            reject(queueFull(retryAfter(), waiting.size, maxQueue));
          },
        };
        const leave = (): void => {
          disarm();
          queue.remove(flow, waiter);
          waiting.delete(waiter);
        };
        const onAbort = (): void => {
          leave();
          reject(signal?.reason as unknown);
        };
        queue.push(flow, waiter);
        waiting.add(waiter);
        dispatch();
        served = false;
        if (!waiting.has(waiter)) return;
        if (waiting.size > maxQueue) {
          const evicted = queue.evictFor(flow);
          if (evicted === undefined || evicted === waiter) {
            leave();
            reject(queueFull(retryAfter(), waiting.size, maxQueue));
            return;
          }
          evicted.refuse();
        }
        armed.timer = clock.after(timeoutMs, () => {
          leave();
          reject(queueTimeout(retryAfter(), now() - enqueuedAt));
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    stats() {
      const oldest = waiting.values().next().value;
      return {
        inFlight,
        queued: waiting.size,
        maxConcurrency,
        maxQueue,
        oldestWaitMs: oldest ? now() - oldest.enqueuedAt : 0,
      };
    },
  };
}
