import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import {
  createRedisScript,
  type RedisClient,
  type RedisConnection,
  type RedisReply,
} from '../stores';
import { createRunEvents, type RunEvent, type RunEventType, type RunEvents } from './events';
import {
  createRunStreamReader,
  eventsOf,
  storedData,
  type RemoteFollower,
} from './run-events-redis';
import {
  TERMINAL_STATUSES,
  type RunControl,
  type RunRepository,
  type StoredRun,
} from './run-repository';
import type { PauseState } from './pause';
import type { AgentRun } from './types';
import {
  APPEND,
  CLAIM_ORPHANS,
  CLAIM_PAUSE,
  CREATE,
  DUE_PAUSES,
  EXPIRE,
  FLUSH,
  PAUSE,
  RELEASE,
  RENEW,
  SET_FIELD,
} from './run-scripts-redis';

export interface RedisRunRepositoryOptions {
  redis: RedisConnection;
  /** RUNS_MAX: runs kept in Redis, all replicas together. */
  max: number;
  /** RUNS_TTL_MS. */
  ttlMs: number;
  /** RUN_LEASE_MS: how long a run stays held by a replica that stopped renewing. */
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  /**
   * A bound on each run's event stream in Redis (an approximate XADD cap). What reaches Redis
   * is the run's local event log, which keeps at most 10,000 token deltas and every other event
   * (events.ts), so the default, twice that, is a bound the stream does not reach first: it
   * keeps what the in-memory repository keeps.
   */
  maxEvents?: number;
  /** How long one XREAD blocks (it is woken early when a follower is added). */
  blockMs?: number;
  /** This replica's id (default: random). */
  node?: string;
  /**
   * How long token deltas wait to be written together (default 20 ms): one script call per
   * batch instead of one per token. A durable run's other events are written at once; every
   * event of a run that is not durable (answered, streamed) waits the same at most, and its
   * terminal status goes out at once with what is left and the release of its lease.
   */
  deltaFlushMs?: number;
}

/** A running run's keys outlive RUNS_TTL_MS by a day, so a cluster that died entirely leaves nothing forever. */
const RUNNING_EXTRA_MS = 86_400_000;

const DELTAS: ReadonlySet<RunEventType> = new Set(['message.delta', 'thinking.delta']);

/** A run this replica created: its live object and events, and how far Redis has them. */
interface Local extends StoredRun {
  events: RunEvents;
  /** Its events are written at once, not batched (created durable, or resumed here). */
  durable: boolean;
  /** Events up to this sequence number are in the stream. */
  synced: number;
  /** The run object changed since it was last written. */
  runDirty: boolean;
  /** Redis may lack the run (an outage): write it whole and read where its stream ends. */
  needsUpsert: boolean;
  /** Another replica took the run over: write nothing more. */
  lost: boolean;
  flushing: Promise<void> | undefined;
  again: boolean;
  /** Token deltas wait at most `deltaFlushMs` to go out together. */
  deltaTimer: TimerHandle | undefined;
  /** A flush is queued for the end of this tick (events of one tick go out together). */
  queued: boolean;
  /** Moves each follower of the run on this replica to following it through Redis. */
  handoffs: Set<() => void>;
  /**
   * The seq of a `run.requires_action` event that waits for its pause: it, the events after it
   * and the run object go out with the pause (pause()), so no replica sees the event first.
   */
  holdFrom: number | undefined;
}

/**
 * Runs in Redis, shared by every replica. Per run: a hash (`run:<id>`: the run object as JSON,
 * kept current by the executing replica at every event but the token deltas; its owner,
 * status, finish time and executing replica), its events in a stream (`run:<id>:ev`, entry id
 * `<seq>-0`, capped XADD), and the executing replica's lease (`run:<id>:lease`, renewed every
 * third of RUN_LEASE_MS). Two sorted sets order the runs (`runs`, for RUNS_MAX) and list those
 * still held (`runs:live`, for takeover); `runs:control` is the pub/sub channel of cancels.
 * Finished runs expire RUNS_TTL_MS after they finished (on the injected clock, and by Redis).
 *
 * The runs this replica executes are also kept here, in memory, until Redis has all of them:
 * their followers on this replica are served from memory the moment an event is appended, and
 * while Redis is down they go on, and are written whole when it returns. A replica follows a
 * run executing elsewhere through one XREAD BLOCK loop (run-events-redis.ts).
 *
 * Scripts address a few keys derived from the prefix inside Lua: one Redis (or a primary with
 * replicas), not Redis Cluster.
 */
export function createRedisRunRepository(options: RedisRunRepositoryOptions): RunRepository {
  const { redis, max, ttlMs, leaseMs, clock, logger } = options;
  const { now } = clock;
  const maxEvents = String(options.maxEvents ?? 20_000);
  const blockMs = options.blockMs ?? 5000;
  const deltaFlushMs = options.deltaFlushMs ?? 20;
  const node = options.node ?? randomBytes(8).toString('hex');
  const p = redis.prefix;
  const key = {
    all: `${p}runs`,
    live: `${p}runs:live`,
    paused: `${p}runs:paused`,
    counter: `${p}runs:n`,
    control: `${p}runs:control`,
    run: (id: string) => `${p}run:${id}`,
    events: (id: string) => `${p}run:${id}:ev`,
    lease: (id: string) => `${p}run:${id}:lease`,
  };
  const send = { group: 'runs' };
  const script = (source: string) => createRedisScript(redis, source);
  const scripts = {
    create: script(CREATE),
    flush: script(FLUSH),
    renew: script(RENEW),
    claimOrphans: script(CLAIM_ORPHANS),
    release: script(RELEASE),
    append: script(APPEND),
    setField: script(SET_FIELD),
    expire: script(EXPIRE),
    pause: script(PAUSE),
    claimPause: script(CLAIM_PAUSE),
    duePauses: script(DUE_PAUSES),
  };
  const runningExpiry = String(ttlMs + RUNNING_EXTRA_MS);
  const entries = new Map<string, Local>();
  /** Runs whose lease this replica renews: those it executes and those it took over. */
  const held = new Set<string>();
  /** Finished runs whose terminal write also let go of them: `release` has nothing to send. */
  const released = new Set<string>();
  const listeners = new Set<(id: string, control: RunControl) => void>();
  const timers: TimerHandle[] = [];
  let stopped = false;
  let outageLogged = false;
  /** When the connection last came up (clock time); undefined while it is down. */
  let upSince = redis.isReady() ? now() : undefined;

  const expired = (finishedAt: number | null): boolean =>
    finishedAt !== null && finishedAt + ttlMs <= now();
  const notFound = (): AppError => new AppError('RUN_NOT_FOUND');
  const tooManyRuns = (): AppError =>
    new AppError('TOO_MANY_RUNS', undefined, { retryAfterS: 5, details: { runs_max: max } });
  const view = ({ run, owner, finishedAt }: StoredRun): StoredRun => ({ run, owner, finishedAt });

  const control = (id: string, what: RunControl): void => {
    for (const listener of listeners) listener(id, what);
  };

  const lose = (e: Local): void => {
    if (e.lost) return;
    e.lost = true;
    held.delete(e.run.id);
    logger.warn('run taken over by another replica; this replica stops it', {
      run_id: e.run.id,
    });
    control(e.run.id, 'lost');
  };

  /**
   * Writes what Redis lacks of a local run in one script call: the run object when it changed
   * (or all of it after an outage), and the events after those Redis has.
   */
  const flushOnce = async (e: Local): Promise<void> => {
    if (e.lost) return;
    const id = e.run.id;
    const upsert = e.needsUpsert;
    // After an outage Redis may have lost what it had (a restart): offer every event again.
    const hold = e.holdFrom;
    // An upsert writes the run whole; while a pause is being written, that waits for it.
    if (hold !== undefined && upsert) return;
    let pending = e.events.since(upsert ? 0 : e.synced);
    if (hold !== undefined) pending = pending.filter((event) => event.seq < hold);
    const writeRun = (e.runDirty || upsert) && hold === undefined;
    if (!writeRun && pending.length === 0) return;
    if (writeRun) e.runDirty = false;
    const finished = e.finishedAt !== null;
    // A finished run without a webhook record still to write is let go of in the same call.
    const release = finished && held.has(id) && !e.run.webhook;
    const args = [
      id,
      writeRun ? JSON.stringify(e.run) : '',
      e.owner,
      node,
      e.run.status,
      finished ? String(e.finishedAt) : '',
      finished ? String(ttlMs) : runningExpiry,
      String(leaseMs),
      held.has(id) ? '1' : '0',
      upsert ? '1' : '0',
      maxEvents,
      release ? '1' : '0',
      String(max),
      p,
    ];
    for (const event of pending) args.push(String(event.seq), event.type, storedData(event.data));
    let last: number;
    try {
      last = Number(
        await scripts.flush.run(
          [key.all, key.live, key.counter, key.run(id), key.lease(id), key.events(id)],
          args,
          send,
        ),
      );
    } catch (err) {
      if (writeRun) e.runDirty = true;
      throw err;
    }
    if (last === -1) return lose(e);
    if (last === -2) {
      e.needsUpsert = true;
      e.again = true;
      return;
    }
    e.needsUpsert = false;
    e.synced = Math.max(e.synced, pending.at(-1)?.seq ?? 0);
    if (release) {
      held.delete(id);
      released.add(id);
    }
  };

  const drained = (e: Local): boolean =>
    !e.needsUpsert && !e.runDirty && e.events.since(e.synced).length === 0;

  /**
   * Brings Redis up to date with a local run, one pass at a time (a pass that starts while
   * another runs is folded into it). Never rejects: while Redis is down the run is marked to
   * be written whole when it returns, and a finished run that Redis has entirely is dropped
   * from memory.
   */
  const flush = (e: Local): Promise<void> => {
    if (e.flushing) {
      e.again = true;
      return e.flushing;
    }
    return (e.flushing = (async () => {
      try {
        do {
          e.again = false;
          await flushOnce(e);
        } while (e.again && !e.lost);
      } catch (err) {
        e.needsUpsert = true;
        if (!outageLogged) {
          outageLogged = true;
          logger.warn('runs not written to redis; kept here until it returns', {
            run_id: e.run.id,
            error: err,
          });
        }
      } finally {
        e.flushing = undefined;
        // A lost run stays until released: its last local events must not reach Redis.
        if (!e.lost && e.finishedAt !== null && drained(e) && !e.again) entries.delete(e.run.id);
      }
    })());
  };

  const catchUp = (): void => {
    outageLogged = false;
    for (const e of entries.values()) if (e.needsUpsert) void flush(e);
  };

  const reader = createRunStreamReader({
    redis,
    clock,
    blockMs,
    eventsKey: key.events,
    runIdOf: (streamKey) => streamKey.slice(p.length + 4, -3),
  });

  const get = async (id: string): Promise<StoredRun | undefined> => {
    const e = entries.get(id);
    if (e && !e.lost) {
      if (!expired(e.finishedAt)) return view(e);
      entries.delete(id);
      return undefined;
    }
    const reply = await redis.send(
      ['HMGET', key.run(id), 'run', 'owner', 'status', 'finished'],
      send,
    );
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') return undefined;
    const [json, owner, status, finished] = reply as [string, string, string, string];
    const finishedAt = finished ? Number(finished) : null;
    if (expired(finishedAt)) return undefined;
    const run = JSON.parse(json) as AgentRun;
    run.status = status as AgentRun['status'];
    return { run, owner, finishedAt };
  };

  const readAfter = async (id: string, afterSeq: number): Promise<RunEvent[]> => {
    const e = entries.get(id);
    if (e) return e.events.since(afterSeq);
    const out: RunEvent[] = [];
    let from = afterSeq + 1;
    for (;;) {
      const [exists, page] = (await Promise.all([
        out.length === 0 ? redis.send(['EXISTS', key.run(id)], send) : 1,
        redis.send(['XRANGE', key.events(id), `${from}-0`, '+', 'COUNT', '1000'], send),
      ])) as [RedisReply, RedisReply];
      if (exists === 0) throw notFound();
      const events = eventsOf(id, page);
      out.push(...events);
      const last = events.at(-1);
      if (events.length < 1000 || !last) return out;
      from = last.seq + 1;
    }
  };

  const heartbeat = async (): Promise<void> => {
    if (!redis.isReady()) return;
    // Runs whose last write failed while Redis stayed up (a timed-out command) are retried here.
    for (const e of entries.values()) if (e.needsUpsert && !e.flushing) void flush(e);
    await Promise.all(
      [...held].map(async (id) => {
        const renewed = Number(
          await scripts.renew.run([key.run(id), key.lease(id)], [node, String(leaseMs)], send),
        );
        const e = entries.get(id);
        if (renewed === 0) {
          held.delete(id);
          if (e) lose(e);
        } else if (renewed === -1) {
          // The run is gone from Redis: write a local one whole again; forget any other.
          if (!e) held.delete(id);
          else {
            e.needsUpsert = true;
            void flush(e);
          }
        }
      }),
    ).catch(() => undefined);
  };

  let subscriber: RedisClient | undefined;
  const subscribe = async (): Promise<void> => {
    subscriber = await redis.duplicate();
    const client = subscriber;
    const onMessage = (message: string): void => {
      const [what, id] = message.split(' ');
      if (what === 'cancel' && id !== undefined && entries.has(id)) control(id, 'cancel');
    };
    let subscribed = false;
    const trySubscribe = (): void => {
      if (subscribed || stopped) return;
      subscribed = true;
      // node-redis subscribes again by itself after a reconnection.
      client.subscribe(key.control, onMessage).catch(() => (subscribed = false));
    };
    client.on('ready', trySubscribe);
    if (client.isReady) trySubscribe();
  };

  const newLocal = (run: AgentRun, owner: string, synced: number, durable: boolean): Local => ({
    run,
    owner,
    finishedAt: null,
    events: createRunEvents(run.id, { afterSeq: synced }),
    durable,
    synced,
    runDirty: false,
    needsUpsert: false,
    lost: false,
    flushing: undefined,
    again: false,
    deltaTimer: undefined,
    queued: false,
    holdFrom: undefined,
    handoffs: new Set(),
  });

  /** This replica stops executing a run (it paused): its followers here go on through Redis. */
  const letGo = (e: Local): void => {
    // Nothing more of this copy goes to Redis: a resume writes the run from now on.
    e.lost = true;
    entries.delete(e.run.id);
    held.delete(e.run.id);
    e.deltaTimer?.cancel();
    for (const handoff of [...e.handoffs]) handoff();
  };

  return {
    async create(run, owner, opts = {}) {
      const id = run.id;
      const e = newLocal(run, owner, 0, opts.durable === true);
      /** The run goes on from memory; its next flush writes it whole. */
      const keepHere = (): void => {
        if (entries.size >= max) throw tooManyRuns();
        e.needsUpsert = true;
      };
      // An unannounced run is written by its first flush (its first batch of events, or its end).
      if (opts.unannounced && !opts.durable) keepHere();
      else {
        try {
          const created = await scripts.create.run(
            [key.all, key.live, key.counter, key.run(id), key.lease(id)],
            [
              id,
              JSON.stringify(run),
              owner,
              node,
              String(max),
              run.status,
              runningExpiry,
              String(leaseMs),
              p,
            ],
            send,
          );
          if (created === 0) throw tooManyRuns();
        } catch (err) {
          if (opts.durable || !(err instanceof AppError) || err.code !== 'REDIS_UNAVAILABLE') {
            throw err;
          }
          // Redis is down: the run goes on here and is written whole when it returns.
          keepHere();
        }
      }
      entries.set(id, e);
      held.add(id);
    },

    get,

    async updateStatus(id, status) {
      const terminal = TERMINAL_STATUSES.has(status);
      const e = entries.get(id);
      if (e) {
        e.run.status = status;
        if (terminal) {
          e.finishedAt ??= now();
          // What waits for the batch goes out now, with the status.
          e.deltaTimer?.cancel();
          e.deltaTimer = undefined;
        }
        e.runDirty = true;
        return flush(e);
      }
      const done = await scripts.setField.run(
        [key.run(id), key.events(id)],
        ['status', status, terminal ? String(now()) : '', terminal ? String(ttlMs) : ''],
        send,
      );
      if (done === 0) throw notFound();
    },

    async append(id, type, data) {
      const e = entries.get(id);
      if (e) {
        const event = e.events.emit(type, data);
        if (type === 'run.requires_action') {
          // Written with its pause (pause()), never before it.
          e.holdFrom ??= event.seq;
        } else if (e.holdFrom !== undefined) {
          e.runDirty = true;
        } else if (!DELTAS.has(type) && e.durable) {
          e.runDirty = true;
          e.deltaTimer?.cancel();
          e.deltaTimer = undefined;
          if (!e.queued) {
            e.queued = true;
            queueMicrotask(() => {
              e.queued = false;
              void flush(e);
            });
          }
        } else if (e.flushing) {
          // Goes out with the next pass, right after the one in flight.
          if (!DELTAS.has(type)) e.runDirty = true;
          e.again = true;
        } else {
          if (!DELTAS.has(type)) e.runDirty = true;
          e.deltaTimer ??= clock.after(deltaFlushMs, () => {
            e.deltaTimer = undefined;
            void flush(e);
          });
        }
        return event;
      }
      const seq = await scripts.append.run(
        [key.run(id), key.events(id)],
        [type, JSON.stringify(data ?? {}), maxEvents, String(ttlMs)],
        send,
      );
      if (seq === 0) throw notFound();
      return { seq: Number(seq), type, data: { run_id: id, seq: Number(seq), ...data } };
    },

    readAfter,

    async follow(id, afterSeq, onEvent) {
      const e = entries.get(id);
      if (e) {
        const follower: RemoteFollower = { seq: afterSeq, onEvent };
        const deliver = (event: RunEvent): void => {
          follower.seq = event.seq;
          onEvent(event);
        };
        for (const event of e.events.since(afterSeq)) deliver(event);
        let stop = e.events.subscribe(deliver);
        const handoff = (): void => {
          stop();
          stop = reader.follow(id, follower);
        };
        e.handoffs.add(handoff);
        return () => {
          e.handoffs.delete(handoff);
          stop();
        };
      }
      const past = await readAfter(id, afterSeq);
      for (const event of past) onEvent(event);
      return reader.follow(id, { seq: past.at(-1)?.seq ?? afterSeq, onEvent });
    },

    async list(filter = {}) {
      const ids = (await redis.send(['ZRANGE', key.all, '0', '-1'], send)) as string[];
      const out: StoredRun[] = [];
      const seen = new Set<string>();
      const runs = await Promise.all(ids.map(get));
      for (const stored of runs) {
        if (!stored) continue;
        seen.add(stored.run.id);
        if (!filter.running || stored.finishedAt === null) out.push(stored);
      }
      for (const e of entries.values()) {
        if (seen.has(e.run.id) || expired(e.finishedAt)) continue;
        if (!filter.running || e.finishedAt === null) out.push(view(e));
      }
      return out;
    },

    async expire() {
      for (const [id, e] of entries) if (expired(e.finishedAt)) entries.delete(id);
      return Number(
        await scripts.expire.run([key.all, key.live], [p, String(now()), String(ttlMs)], send),
      );
    },

    async save(run) {
      const e = entries.get(run.id);
      if (e) {
        e.run = run;
        e.runDirty = true;
        return flush(e);
      }
      await scripts.setField.run(
        [key.run(run.id), key.events(run.id)],
        ['run', JSON.stringify(run), '', ''],
        send,
      );
    },

    async release(id) {
      if (released.delete(id)) return;
      held.delete(id);
      if (entries.get(id)?.lost) entries.delete(id);
      await scripts.release.run([key.live, key.run(id), key.lease(id)], [id, node], send);
    },

    async pause(id, run, state) {
      const e = entries.get(id);
      if (e) {
        e.run = run;
        // The writes under way go first: the pause's script writes what they left.
        while (e.flushing) await e.flushing;
      }
      const run1 = async (upsert: boolean): Promise<number> => {
        const events = e ? e.events.since(upsert ? 0 : e.synced) : [];
        const args = [
          id,
          JSON.stringify(run),
          e ? e.owner : '',
          e ? node : '',
          JSON.stringify(state),
          state.token,
          runningExpiry,
          maxEvents,
          upsert ? '1' : '0',
          String(state.expiresAt),
          String(max),
          p,
        ];
        for (const event of events)
          args.push(String(event.seq), event.type, storedData(event.data));
        return Number(
          await scripts.pause.run(
            [
              key.all,
              key.live,
              key.counter,
              key.run(id),
              key.lease(id),
              key.events(id),
              key.paused,
            ],
            args,
            send,
          ),
        );
      };
      let result: number;
      try {
        result = await run1(e?.needsUpsert ?? false);
        // Redis lost the run (a restart): this replica still has all of it.
        if (result === -2 && e) result = await run1(true);
      } catch (err) {
        // Not paused: the held events go out as usual (the service ends the run).
        if (e) {
          e.holdFrom = undefined;
          e.runDirty = true;
        }
        throw err;
      }
      if (result === -1 && e) lose(e);
      if (result !== 1) throw notFound();
      if (e) letGo(e);
    },

    async getPause(id) {
      const text = await redis.send(['HGET', key.run(id), 'pause'], send);
      return typeof text === 'string' && text !== '' ? (JSON.parse(text) as PauseState) : undefined;
    },

    async claimPause(id, token) {
      const reply = await scripts.claimPause.run(
        [key.live, key.counter, key.run(id), key.lease(id), key.events(id), key.paused],
        [id, token, node, String(leaseMs)],
        send,
      );
      if (!Array.isArray(reply)) return undefined;
      const [json, pause, owner, last] = reply as [string, string, string, string];
      const run = JSON.parse(json) as AgentRun;
      // This replica executes the run from here on: its events follow those in the stream.
      const e = newLocal(run, owner, Number(last), true);
      entries.set(id, e);
      held.add(id);
      return { run, pause: JSON.parse(pause) as PauseState };
    },

    async duePauses(at) {
      const flat = (await scripts.duePauses.run([key.paused], [p, String(at)], send)) as string[];
      const out: Array<{ id: string; token: string }> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        out.push({ id: flat[i] as string, token: flat[i + 1] as string });
      }
      return out;
    },

    async claimOrphans() {
      // Leases lapse in Redis' time while replicas cannot reach it. After an outage, every
      // replica that is still alive reconnects (backoff up to 2 s) and renews its leases, so
      // none is claimed until this replica has been connected for a whole lease: what lapses
      // in that time belongs to replicas that are gone.
      if (upSince === undefined || now() - upSince < leaseMs) return [];
      const ids = (await scripts.claimOrphans.run(
        [key.live],
        [p, node, String(leaseMs)],
        send,
      )) as string[];
      for (const id of ids) held.add(id);
      return ids;
    },

    async unclaim(id) {
      // Only a claimed run, which this replica does not execute: the heartbeat stops renewing it.
      if (!entries.has(id)) held.delete(id);
    },

    async requestCancel(id) {
      await redis.send(['PUBLISH', key.control, `cancel ${id}`], send);
    },

    onControl(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    start() {
      if (timers.length > 0) return;
      stopped = false;
      timers.push(clock.every(Math.max(100, Math.floor(leaseMs / 3)), () => void heartbeat()));
      const offState = redis.onState((up) => {
        upSince = up ? now() : undefined;
        if (!up) return;
        // Leases first: after an outage longer than the lease, renew before others claim.
        void heartbeat();
        catchUp();
      });
      timers.push({ cancel: offState });
      reader.connect();
      subscribe().catch((err: unknown) =>
        logger.warn('run control channel not subscribed', { error: err }),
      );
    },

    async stop() {
      stopped = true;
      reader.stop();
      for (const timer of timers.splice(0)) timer.cancel();
      // The last writes of runs that just ended (a shutdown cancels them) go out first.
      await Promise.all([...entries.values()].map((e) => e.flushing));
      reader.close();
      if (subscriber?.isOpen) subscriber.destroy();
    },
  };
}
