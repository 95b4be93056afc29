import { AppError } from '../../src/errors';
import { createRunEvents, type RunEvent, type RunEventType, type RunEvents } from './events';
import type { PauseState } from './pause';
import type { AgentRun, RunStatus } from './types';

/** A run as the repository keeps it. */
export interface StoredRun {
  /** The run object. */
  run: AgentRun;
  /** Principal id that created the run (`anonymous` without auth). */
  owner: string;
  /** When the run reached a terminal state (ms since the epoch); null while it runs. */
  finishedAt: number | null;
}

export interface CreateOptions {
  /**
   * The run must be readable on every replica before it starts (background and webhook runs,
   * whose callers come back through any replica): when the shared store cannot take it,
   * `create` refuses with REDIS_UNAVAILABLE instead of keeping a local copy.
   */
  durable?: boolean;
  /**
   * Nobody but the request that starts the run learns its id before the run is answered (an
   * answered run without an Idempotency-Key or a `wait_timeout_ms`): the shared store may take
   * the run with its first batch of events, or with its end, instead of before it starts. It
   * counts against RUNS_MAX from that write, which never refuses it (it has run already).
   */
  unannounced?: boolean;
}

/** What another replica asks of the run this one executes, or tells it. */
export type RunControl =
  /** A cancel sent through another replica. */
  | 'cancel'
  /** The run's lease was taken over: another replica has ended it; stop without a trace. */
  | 'lost';

/**
 * Where runs and their event logs live: what any replica needs to read, follow or cancel a run.
 * What only the executing replica has (the AbortController, the running loop) stays out of it.
 * Every implementation passes the contract suite in test/support/run-repository-contract.ts.
 */
export interface RunRepository {
  /**
   * Stores a new run. Finished runs past their TTL go first, then the oldest finished runs while
   * the repository is full.
   * @throws AppError TOO_MANY_RUNS when every kept run is still running.
   */
  create(run: AgentRun, owner: string, options?: CreateOptions): Promise<void>;
  /** The run, or undefined when unknown or expired. */
  get(id: string): Promise<StoredRun | undefined>;
  /** Records the run's status; a terminal one starts the run's TTL. */
  updateStatus(id: string, status: RunStatus): Promise<void>;
  /** Appends an event, numbered from 1, and hands it to every follower. */
  append(id: string, type: RunEventType, data?: Record<string, unknown>): Promise<RunEvent>;
  /** The stored events with `seq > afterSeq`, in order. */
  readAfter(id: string, afterSeq: number): Promise<RunEvent[]>;
  /**
   * Calls `onEvent` with each stored event after `afterSeq`, then with each new one as it is
   * appended; resolves (after the replay) with the function that stops following.
   */
  follow(id: string, afterSeq: number, onEvent: (event: RunEvent) => void): Promise<() => void>;
  /**
   * Records that the run paused for its caller (status `requires_action`): stores the run as it
   * is now and what a resume needs, replacing any earlier pause. `state` is plain JSON. The
   * `run.requires_action` event appended just before is written with it (a shared store makes
   * the event and the pause visible together), and this replica no longer holds the run (as
   * after `release`): nobody takes a paused run over.
   * @throws AppError RUN_NOT_FOUND
   */
  pause(id: string, run: AgentRun, state: PauseState): Promise<void>;
  /** The run's current pause, or undefined when it is not paused (or unknown). */
  getPause(id: string): Promise<PauseState | undefined>;
  /**
   * Takes the pause named by `token` away, atomically: resolves with the run and the pause for
   * the one caller that got it, undefined for everyone else (another resume, an expiry or a
   * cancel took it first, or the run is not paused). The run stays `requires_action` until its
   * new owner changes its status. The claiming replica now holds the run as if it had created
   * it (lease, takeover if it dies): it ends or pauses it, and calls `release` when done.
   */
  claimPause(id: string, token: string): Promise<{ run: AgentRun; pause: PauseState } | undefined>;
  /**
   * The pauses whose `expiresAt` is at or before `now`, by run id and token: whoever claims one
   * ends its run (the replica that armed its expiry timer may be gone).
   */
  duePauses(now: number): Promise<Array<{ id: string; token: string }>>;
  /** The kept runs, oldest first; `running` keeps only those not finished. */
  list(filter?: { running?: boolean }): Promise<StoredRun[]>;
  /** Drops the finished runs past their TTL; resolves with how many went. */
  expire(): Promise<number>;
  /**
   * Writes the run object as it is now, for changes that come without an event (the webhook
   * delivery record after the terminal event).
   */
  save(run: AgentRun): Promise<void>;
  /**
   * This replica is done with a run it executed or took over (its terminal event and webhook
   * delivery): nobody holds it any longer, and no replica takes it over.
   */
  release(id: string): Promise<void>;
  /**
   * Claims the runs whose executing replica stopped holding them (it died: its lease lapsed),
   * atomically, so exactly one replica gets each; resolves with their ids. The caller ends
   * each (or delivers its webhook) and then calls `release`.
   */
  claimOrphans(): Promise<string[]>;
  /**
   * Lets go of a run this replica claimed but could not end (Redis failed on the way): its
   * lease is no longer renewed, so it lapses and a later round, of any replica, claims the run
   * again. Nothing else changes.
   */
  unclaim(id: string): Promise<void>;
  /** Asks the replica that executes the run to cancel it (it hears it through `onControl`). */
  requestCancel(id: string): Promise<void>;
  /** Calls `listener` when a run executing here is cancelled elsewhere or taken over. */
  onControl(listener: (id: string, control: RunControl) => void): () => void;
  /** Starts the background work (expiry sweep, leases, control messages), on unref'd timers. */
  start(): void;
  /** Stops it. */
  stop(): Promise<void>;
}

export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set([
  'completed',
  'incomplete',
  'failed',
  'cancelled',
]);

interface Entry extends StoredRun {
  events: RunEvents;
  /** The pause as JSON text, as a shared store would keep it (so it never shares objects). */
  pause: string | null;
}

/** The period of the expiry sweep for a TTL: a tenth of it, within 1 s and 60 s. */
export function sweepPeriodMs(ttlMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.round(ttlMs / 10)));
}

/**
 * The in-memory repository: the default for one replica. Bounded to `max` runs; finished runs
 * expire `ttlMs` after they finished, checked on read, (at most once a second) on create, and
 * by the runtime's periodic `expire()`. Each run's event log is bounded too
 * (see createRunEvents). One process executes every run, so none is ever orphaned or
 * controlled from elsewhere.
 */
export function createMemoryRunRepository(options: {
  max: number;
  ttlMs: number;
  now: () => number;
}): RunRepository {
  const { max, ttlMs, now } = options;
  // A Map iterates in insertion order, i.e. oldest run first.
  const runs = new Map<string, Entry>();
  const expired = (r: Entry, at: number): boolean =>
    r.finishedAt !== null && r.finishedAt + ttlMs <= at;
  const live = (id: string): Entry | undefined => {
    const r = runs.get(id);
    if (r && expired(r, now())) {
      runs.delete(id);
      return undefined;
    }
    return r;
  };
  const known = (id: string): Entry => {
    const r = live(id);
    if (!r) throw new AppError('RUN_NOT_FOUND');
    return r;
  };
  const sweep = (): number => {
    const at = now();
    let dropped = 0;
    for (const [id, r] of runs) {
      if (expired(r, at)) {
        runs.delete(id);
        dropped += 1;
      }
    }
    return dropped;
  };
  // The TTL sweep walks every kept run, so create() runs it at most once per second of the
  // clock; eviction of the oldest finished runs stays per create.
  let nextSweep = -Infinity;
  const view = ({ run, owner, finishedAt }: Entry): StoredRun => ({ run, owner, finishedAt });

  return {
    async create(run, owner) {
      const at = now();
      if (at >= nextSweep) {
        nextSweep = at + Math.min(ttlMs, 1000);
        sweep();
      }
      for (const [id, r] of runs) {
        if (runs.size < max) break;
        if (r.finishedAt !== null) runs.delete(id);
      }
      if (runs.size >= max) {
        throw new AppError('TOO_MANY_RUNS', undefined, {
          retryAfterS: 5,
          details: { runs_max: max },
        });
      }
      runs.set(run.id, {
        run,
        owner,
        finishedAt: null,
        events: createRunEvents(run.id),
        pause: null,
      });
    },
    async get(id) {
      const r = live(id);
      return r && view(r);
    },
    async updateStatus(id, status) {
      const r = known(id);
      r.run.status = status;
      if (TERMINAL_STATUSES.has(status)) {
        r.finishedAt ??= now();
        r.pause = null;
      }
    },
    async pause(id, run, state) {
      const r = known(id);
      r.run = run;
      r.run.status = 'requires_action';
      r.pause = JSON.stringify(state);
    },
    async getPause(id) {
      const text = live(id)?.pause;
      return text ? (JSON.parse(text) as PauseState) : undefined;
    },
    async claimPause(id, token) {
      const r = live(id);
      if (!r?.pause) return undefined;
      const pause = JSON.parse(r.pause) as PauseState;
      if (pause.token !== token) return undefined;
      // Read and cleared in one synchronous step: no other claim can see it in between.
      r.pause = null;
      return { run: r.run, pause };
    },
    async duePauses(at) {
      const out: Array<{ id: string; token: string }> = [];
      for (const id of runs.keys()) {
        const text = live(id)?.pause;
        if (!text) continue;
        const { token, expiresAt } = JSON.parse(text) as PauseState;
        if (expiresAt <= at) out.push({ id, token });
      }
      return out;
    },
    async append(id, type, data) {
      return known(id).events.emit(type, data);
    },
    async readAfter(id, afterSeq) {
      return known(id).events.since(afterSeq);
    },
    async follow(id, afterSeq, onEvent) {
      const { events } = known(id);
      // Events are appended synchronously here, so none fall between replay and subscription.
      for (const event of events.since(afterSeq)) onEvent(event);
      return events.subscribe(onEvent);
    },
    async list(filter = {}) {
      const out: StoredRun[] = [];
      for (const id of [...runs.keys()]) {
        const r = live(id);
        if (r && (!filter.running || r.finishedAt === null)) out.push(view(r));
      }
      return out;
    },
    async expire() {
      return sweep();
    },
    async save(run) {
      const r = live(run.id);
      if (r) r.run = run;
    },
    async release() {},
    async claimOrphans() {
      return [];
    },
    async unclaim() {},
    async requestCancel() {},
    onControl() {
      return () => undefined;
    },
    // Its expiry sweep is `expire`, which the runtime calls on the clock's unref'd timer.
    start() {},
    async stop() {},
  };
}
