import { createHash } from 'node:crypto';
import { followAbort } from '../../src/abort';
import type { Clock, TimerHandle } from '../../src/clock';
import { isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { AdmissionTicket } from '../../src/principal';
import type { RedisClient, RedisConnection, RedisReply } from '../stores';
import {
  createHoldAverage,
  flowOf,
  heldSlot,
  queueFull,
  queueTimeout,
  retryAfterS,
  type Admission,
  type AdmissionStats,
  type Flow,
  type Slot,
} from './admission';
import { ADMISSION_SCRIPT } from './admission-script';

export interface RedisAdmissionOptions {
  redis: RedisConnection;
  /** The backend's id: part of every key, so each backend has its own slots and queue. */
  backendId: string;
  /** This replica's id, unique among the replicas (prefix of its slot and waiter ids). */
  replicaId: string;
  /** Generations in flight to this backend from every replica together. */
  maxConcurrency: number;
  /** Waiters of every replica together. */
  maxQueue: number;
  timeoutMs: number;
  keyMaxConcurrency?: number;
  /** Lease of a slot or a place in the queue; renewed every third of it. */
  leaseMs: number;
  /** The replica's own share, used while Redis is unreachable. */
  local: Admission;
  /**
   * While nobody waits, a released slot stays with this replica for its next request of the
   * same key for one to two times this (default 100 ms; 0: handed back at once). See
   * `createRedisAdmission`.
   */
  idleMs?: number;
  clock: Pick<Clock, 'now' | 'after' | 'every'>;
  logger: Logger;
}

export interface RedisAdmission extends Admission {
  /** Subscribes to grants and starts renewing leases (and the stats snapshot). */
  start(): void;
  stop(): void;
}

type Outcome = 'granted' | 'full' | 'timeout' | 'aborted' | 'lost' | 'requeue';

interface RemoteWaiter {
  /** Settles the wait; the first outcome wins. */
  settle(outcome: Outcome): void;
}

/** What a renewal reports of a waiter: granted, refused (queue full), unknown to Redis. */
const RENEWED: Record<string, Outcome> = { g: 'granted', f: 'full', x: 'requeue' };

interface Snapshot {
  inFlight: number;
  queued: number;
  /** How long the oldest waiter had waited when the snapshot was taken, ms (-1: none). */
  oldestWaitMs: number;
  /** Local time of the snapshot. */
  at: number;
  /** Slots this replica kept idle when the snapshot was taken (counted in `inFlight` by Redis). */
  idle: number;
}

const SHA = createHash('sha1').update(ADMISSION_SCRIPT).digest('hex');

/** Redis does not have the script cached (a restart, SCRIPT FLUSH): send it whole once. */
function noScript(err: unknown): boolean {
  const reply = isAppError(err) && err.cause instanceof Error ? err.cause : err;
  return reply instanceof Error && reply.message.startsWith('NOSCRIPT');
}

/**
 * The admission of one backend shared by every replica through Redis: Lua scripts (one,
 * admission-script.ts) on the replica's one connection keep the slots in flight, each key's
 * share and the fair queue, atomically. Slots and places in the queue are leases in Redis
 * time, renewed by their replica every third of `leaseMs`; a replica that dies stops renewing,
 * so what it held is free again within a lease. A grant is published on the backend's channel
 * (a `duplicate()` connection subscribes), so a waiter wakes as soon as a slot is handed to
 * it; the renewal also reports grants, so a lost message delays a waiter by a renewal at most.
 *
 * A released slot is not handed back at once while nobody waits (as far as the last reply of
 * Redis said): the replica keeps it for one to two `idleMs` for its next request of the same
 * key, which then starts without a round trip, so a steady flow costs no script call per request.
 * Kept slots still count in Redis (the limit holds across replicas), and they go back when they
 * are not reused in time, when a reply shows waiters, or when any replica queues a waiter: the
 * acquire that queues it publishes `?` on the channel, and every replica then releases the slots
 * it keeps, and those it releases next until a reply shows the queue empty. So a waiter on
 * another replica waits for that message, not for the idle time.
 *
 * While Redis is unreachable the replica admits through `local` (its own share), says so in a
 * log line and in `stats().mode`; back to global when the connection is up again, no restart.
 */
export function createRedisAdmission(options: RedisAdmissionOptions): RedisAdmission {
  const { redis, maxConcurrency, maxQueue, timeoutMs, leaseMs, local, clock, logger } = options;
  const { now } = clock;
  const idleMs = options.idleMs ?? 100;
  const base = `${redis.prefix}adm:{${options.backendId}}:`;
  const channel = `${base}granted`;
  const waiters = new Map<string, RemoteWaiter>();
  /** Slots this replica holds: id → key. */
  const held = new Map<string, string>();
  const hold = createHoldAverage();
  /** Released slots kept for the next request of their key (in `held`): id → when released. */
  const idle = new Map<string, number>();
  let idleTimer: TimerHandle | undefined;
  // Leases are renewed every third of a lease, and at least every second for the snapshot.
  const renewMs = Math.max(100, Math.min(1000, Math.floor(leaseMs / 3)));
  let counter = 0;
  let global = false;
  let snapshot: Snapshot = { inFlight: 0, queued: 0, oldestWaitMs: -1, at: now(), idle: 0 };
  let ticker: TimerHandle | undefined;
  let subscriber: RedisClient | undefined;
  let unsubscribeState: (() => void) | undefined;
  let stopped = false;

  const unavailable = (err: unknown): boolean =>
    isAppError(err) && err.code === 'REDIS_UNAVAILABLE';

  /** Runs one operation of the script (EVALSHA, loading it on a NOSCRIPT). */
  async function run(op: string, args: readonly string[]): Promise<RedisReply[]> {
    const tail = ['1', base, op, String(maxConcurrency), String(leaseMs), ...args];
    let reply: RedisReply;
    try {
      reply = await redis.send(['EVALSHA', SHA, ...tail], { group: 'admission' });
    } catch (err) {
      if (!noScript(err)) throw err;
      reply = await redis.send(['EVAL', ADMISSION_SCRIPT, ...tail], { group: 'admission' });
    }
    const values = reply as RedisReply[];
    const oldestAt = Number(values[3]);
    snapshot = {
      inFlight: Number(values[1]),
      queued: Number(values[2]),
      oldestWaitMs: oldestAt < 0 ? -1 : Math.max(0, Number(values[4]) - oldestAt),
      at: now(),
      idle: idle.size,
    };
    if (snapshot.queued > 0) releaseIdle();
    return values;
  }

  /** Hands a slot back to Redis (when Redis is gone its lease runs out instead). */
  const release = (id: string): void => {
    held.delete(id);
    run('release', [id]).catch(() => undefined);
  };

  /** Hands back the kept slots released at or before `before` (local time; default: all). */
  function releaseIdle(before = Infinity): void {
    for (const [id, since] of idle) {
      if (since > before) continue;
      idle.delete(id);
      release(id);
    }
    if (idle.size === 0) {
      idleTimer?.cancel();
      idleTimer = undefined;
    }
    armIdle();
  }

  /** Each kept slot goes back after one or two idle times, unless reused before. */
  function armIdle(): void {
    if (idleTimer || idle.size === 0) return;
    const armedAt = now();
    idleTimer = clock.after(idleMs, () => {
      idleTimer = undefined;
      releaseIdle(armedAt);
    });
  }

  /** Forgets the kept slots without a word to Redis (it is gone: their leases run out). */
  function dropIdle(): void {
    for (const id of idle.keys()) held.delete(id);
    idle.clear();
    idleTimer?.cancel();
    idleTimer = undefined;
  }

  /** The oldest slot kept for `key`, taken out of the kept ones; undefined when none. */
  function takeIdle(key: string): string | undefined {
    for (const id of idle.keys()) {
      if (held.get(id) !== key) continue;
      idle.delete(id);
      return id;
    }
    return undefined;
  }

  const retryAfter = (): number => retryAfterS(hold.value(), snapshot.queued, maxConcurrency);

  function toLocal(reason: unknown): void {
    if (!global) return;
    global = false;
    dropIdle();
    logger.warn('admission falls back to the per-replica share: Redis is unreachable', {
      backend: options.backendId,
      mode: 'local',
      error: reason,
    });
    for (const waiter of waiters.values()) waiter.settle('lost');
  }

  function toGlobal(): void {
    if (global || stopped) return;
    global = true;
    logger.info('admission is global across replicas (Redis)', {
      backend: options.backendId,
      mode: 'global',
    });
    void renew();
  }

  /** Renews this replica's leases, picks up grants it missed, refreshes the snapshot. */
  async function renew(): Promise<void> {
    if (!global) {
      if (redis.isReady()) toGlobal();
      return;
    }
    const ids = [...waiters.keys()];
    const pairs = [...held].flat();
    try {
      const reply = await run('refresh', [String(held.size), ...pairs, ...ids]);
      const states = reply[0] as string[];
      ids.forEach((id, i) => {
        const outcome = RENEWED[states[i] ?? ''];
        if (outcome) waiters.get(id)?.settle(outcome);
      });
    } catch (err) {
      if (unavailable(err)) toLocal(err);
      else logger.error('admission lease renewal failed', { error: err });
    }
  }

  const slot = (id: string, key: string, waitedMs: number): Slot => {
    held.set(id, key);
    return heldSlot(waitedMs, hold, now, () => {
      if (!global || stopped || idleMs <= 0 || snapshot.queued > 0) return release(id);
      idle.set(id, now());
      armIdle();
    });
  };

  /** Queues in Redis and waits for a grant, the timeout, the caller leaving or Redis failing. */
  async function acquireGlobal(
    signal: AbortSignal | undefined,
    ticket: AdmissionTicket | undefined,
    flow: Flow,
  ): Promise<Slot> {
    counter += 1;
    const id = `${options.replicaId}:${counter}`;
    const enqueuedAt = now();
    for (;;) {
      let early: Outcome | undefined;
      // Until the script answered, a renewal racing it may not know the waiter yet: only its
      // "unknown" is ignored.
      const waiter: RemoteWaiter = {
        settle: (o) => {
          if (o !== 'requeue') early ??= o;
        },
      };
      waiters.set(id, waiter);
      let reply: RedisReply[];
      try {
        reply = await run('acquire', [
          id,
          flow.key,
          flow.priority,
          String(flow.cap),
          String(flow.weight),
          String(maxQueue),
        ]);
      } catch (err) {
        waiters.delete(id);
        if (!unavailable(err)) throw err;
        // Whether it was queued is unknown: a place left behind runs out with its lease.
        toLocal(err);
        return acquireLocal(signal, ticket, enqueuedAt);
      }
      const status = reply[0];
      if (status === 'granted') {
        waiters.delete(id);
        return slot(id, flow.key, now() - enqueuedAt);
      }
      if (status === 'full') {
        waiters.delete(id);
        throw queueFull(retryAfter(), snapshot.queued, maxQueue);
      }
      const outcome = await new Promise<Outcome>((resolve) => {
        let done = false;
        const finish = (o: Outcome): void => {
          if (done) return;
          done = true;
          timer.cancel();
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        };
        const remaining = Math.max(0, timeoutMs - (now() - enqueuedAt));
        const timer = clock.after(remaining, () => finish('timeout'));
        const onAbort = (): void => finish('aborted');
        signal?.addEventListener('abort', onAbort, { once: true });
        waiter.settle = finish;
        // A grant or an outage that arrived while the script ran.
        if (early) finish(early);
        else if (signal?.aborted) finish('aborted');
        else if (!global) finish('lost');
      });
      waiters.delete(id);
      switch (outcome) {
        case 'granted':
          return slot(id, flow.key, now() - enqueuedAt);
        case 'requeue':
          continue;
        case 'full':
          throw queueFull(retryAfter(), snapshot.queued, maxQueue);
        case 'lost':
          // Best effort: a place left behind in Redis would otherwise wait out its lease.
          void run('leave', [id]).catch(() => undefined);
          return acquireLocal(signal, ticket, enqueuedAt);
        case 'timeout':
          void run('leave', [id]).catch(() => undefined);
          throw queueTimeout(retryAfter(), now() - enqueuedAt);
        case 'aborted':
          void run('leave', [id]).catch(() => undefined);
          throw signal?.reason;
      }
    }
  }

  /** The per-replica share, within what is left of the queue timeout. */
  async function acquireLocal(
    signal: AbortSignal | undefined,
    ticket: AdmissionTicket | undefined,
    enqueuedAt: number,
  ): Promise<Slot> {
    const remaining = timeoutMs - (now() - enqueuedAt);
    if (remaining <= 0) throw queueTimeout(retryAfter(), now() - enqueuedAt);
    // Aborts on the queue timeout or with the caller's signal, whichever comes first.
    const wait = new AbortController();
    const timer = clock.after(remaining, () =>
      wait.abort(queueTimeout(retryAfter(), now() - enqueuedAt)),
    );
    const unfollow = followAbort(signal, wait);
    try {
      const inner = await local.acquire(wait.signal, ticket);
      return { waitedMs: now() - enqueuedAt, release: () => inner.release() };
    } finally {
      unfollow();
      timer.cancel();
    }
  }

  function onGranted(message: string): void {
    if (message === '?') {
      // A waiter was queued somewhere: the slots kept here are its, and so are those released
      // until a reply shows the queue empty again.
      snapshot = { ...snapshot, queued: Math.max(1, snapshot.queued) };
      return releaseIdle();
    }
    for (const id of message.split(' ')) {
      if (id.startsWith('!')) waiters.get(id.slice(1))?.settle('full');
      else waiters.get(id)?.settle('granted');
    }
  }

  async function subscribe(): Promise<void> {
    const client = await redis.duplicate();
    subscriber = client;
    // node-redis subscribes again by itself after a reconnection.
    const first = (): void => {
      client.off('ready', first);
      client.subscribe(channel, onGranted).catch((err: unknown) => {
        logger.warn('admission grant channel not subscribed', { error: err });
      });
    };
    if (client.isReady) first();
    else client.on('ready', first);
  }

  return {
    acquire(signal, ticket) {
      if (signal?.aborted) return Promise.reject(signal.reason as unknown);
      if (!global) return local.acquire(signal, ticket);
      const flow = flowOf(ticket, maxConcurrency, options.keyMaxConcurrency);
      const kept = takeIdle(flow.key);
      if (kept !== undefined) return Promise.resolve(slot(kept, flow.key, 0));
      return acquireGlobal(signal, ticket, flow);
    },
    stats(): AdmissionStats {
      if (!global) return { ...local.stats(), mode: 'local' };
      const age = now() - snapshot.at;
      return {
        inFlight: Math.max(0, snapshot.inFlight - snapshot.idle),
        queued: snapshot.queued,
        maxConcurrency,
        maxQueue,
        oldestWaitMs: snapshot.oldestWaitMs < 0 ? 0 : snapshot.oldestWaitMs + age,
        mode: 'global',
      };
    },
    start() {
      if (ticker || stopped) return;
      unsubscribeState = redis.onState((up) => {
        if (up) toGlobal();
        else toLocal(new Error('connection lost'));
      });
      void subscribe().catch((err: unknown) => {
        logger.warn('admission grant channel not available', { error: err });
      });
      ticker = clock.every(renewMs, () => void renew());
      if (redis.isReady()) toGlobal();
      else {
        logger.warn('admission uses the per-replica share until Redis answers', {
          backend: options.backendId,
          mode: 'local',
        });
      }
    },
    stop() {
      releaseIdle();
      stopped = true;
      ticker?.cancel();
      unsubscribeState?.();
      if (subscriber?.isOpen) subscriber.destroy();
    },
  };
}
