/**
 * A run's events in Redis: one stream per run (`run:<id>:ev`, entry id `<seq>-0`, fields `t`
 * for the type and `d` for the data), and the one XREAD BLOCK loop through which a replica
 * follows the runs executing on other replicas, on a connection of its own, woken with CLIENT
 * UNBLOCK when a follower joins.
 */
import type { Clock } from '../../src/clock';
import type { RedisClient, RedisConnection, RedisReply } from '../stores';
import type { RunEvent, RunEventType } from './events';

/** `[id, [field, value, …]]` entries of XRANGE / XREAD as events of run `id`. */
export function eventsOf(runId: string, entries: RedisReply): RunEvent[] {
  if (!Array.isArray(entries)) return [];
  const out: RunEvent[] = [];
  for (const entry of entries) {
    if (!Array.isArray(entry)) continue;
    const [entryId, fields] = entry;
    if (typeof entryId !== 'string' || !Array.isArray(fields)) continue;
    const seq = Number.parseInt(entryId, 10);
    let type = '';
    let data = '{}';
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 't') type = String(fields[i + 1]);
      else if (fields[i] === 'd') data = String(fields[i + 1]);
    }
    out.push({
      seq,
      type: type as RunEventType,
      data: { run_id: runId, seq, ...(JSON.parse(data) as Record<string, unknown>) },
    });
  }
  return out;
}

/** An event's data as stored: without `run_id` and `seq`, which the entry itself carries. */
export function storedData(data: Record<string, unknown>): string {
  // A rest copy, not `delete` on a copy: deleting turns the copy into a slow dictionary object.
  const { run_id: _runId, seq: _seq, ...rest } = data;
  return JSON.stringify(rest);
}

/** A follower of a run executing elsewhere: the last seq it got, and where the next ones go. */
export interface RemoteFollower {
  seq: number;
  onEvent: (event: RunEvent) => void;
}

export interface RunStreamReader {
  /** Follows run `id`'s stream after `follower.seq`; the returned function stops it. */
  follow(id: string, follower: RemoteFollower): () => void;
  /**
   * Makes the loop's connection (at start, so a first follower does not wait for it); after
   * `close`, a new one.
   */
  connect(): void;
  /** Reads no more: the loop ends when its read under way returns. */
  stop(): void;
  /** Stops, wakes the read under way and closes the connection (also one still being made). */
  close(): void;
}

export interface RunStreamReaderOptions {
  redis: Pick<RedisConnection, 'duplicate' | 'send' | 'commandOptions'>;
  clock: Pick<Clock, 'after'>;
  /** How long one XREAD blocks (it is woken early when a follower is added). */
  blockMs: number;
  /** The stream key of run `id`, and the run id of a stream key. */
  eventsKey: (id: string) => string;
  runIdOf: (streamKey: string) => string;
}

/** The pause before the loop tries again after a failed read or while its connection is down. */
const RETRY_MS = 200;

export function createRunStreamReader(options: RunStreamReaderOptions): RunStreamReader {
  const { redis, clock, blockMs } = options;
  const followers = new Map<string, Set<RemoteFollower>>();
  let client: RedisClient | undefined;
  let clientId: string | undefined;
  let connecting: Promise<RedisClient> | undefined;
  let reading = false;
  let blocked = false;
  let stopped = false;

  const pause = (): Promise<void> => new Promise((resolve) => clock.after(RETRY_MS, resolve));

  const wake = (): void => {
    if (!blocked || clientId === undefined) return;
    redis.send(['CLIENT', 'UNBLOCK', clientId], { group: 'runs' }).catch(() => undefined);
  };

  const connection = (): Promise<RedisClient> => {
    if (connecting) return connecting;
    const made = redis.duplicate().then((opened) => {
      if (connecting !== made) {
        // Closed while it was being made.
        if (opened.isOpen) opened.destroy();
        return opened;
      }
      client = opened;
      // A new connection has a new id (for CLIENT UNBLOCK).
      opened.on('ready', () => {
        if (client === opened) clientId = undefined;
      });
      return opened;
    });
    connecting = made;
    return made;
  };

  /** Hands each event read to the followers of its run that have not had it. */
  const deliver = (reply: RedisReply): void => {
    if (reply === null || typeof reply !== 'object') return;
    // RESP3 (node-redis' default) answers a map of streams; RESP2 an array of pairs.
    const streams = Array.isArray(reply)
      ? reply.filter(Array.isArray)
      : Object.entries(reply as Record<string, RedisReply>);
    for (const [streamKey, entries] of streams) {
      const id = options.runIdOf(String(streamKey));
      for (const event of eventsOf(id, entries ?? null)) {
        for (const follower of [...(followers.get(id) ?? [])]) {
          if (event.seq <= follower.seq) continue;
          follower.seq = event.seq;
          follower.onEvent(event);
        }
      }
    }
  };

  const readLoop = async (): Promise<void> => {
    if (reading) return wake();
    reading = true;
    try {
      while (followers.size > 0 && !stopped) {
        // Asked each time round: a connection closed and made again (close, connect) is new.
        const reader = await connection();
        if (!reader.isReady) {
          await pause();
          continue;
        }
        try {
          clientId ??= String(await reader.sendCommand(['CLIENT', 'ID']));
          const ids = [...followers.keys()];
          const cursors = ids.map(
            (id) => `${Math.min(...[...(followers.get(id) ?? [])].map((f) => f.seq))}-0`,
          );
          blocked = true;
          const reply = (await reader.sendCommand(
            [
              'XREAD',
              'COUNT',
              '1000',
              'BLOCK',
              String(blockMs),
              'STREAMS',
              ...ids.map(options.eventsKey),
              ...cursors,
            ],
            redis.commandOptions({ timeoutMs: blockMs + 2000 }),
          )) as RedisReply;
          blocked = false;
          deliver(reply);
        } catch {
          blocked = false;
          await pause();
        }
      }
    } finally {
      reading = false;
      blocked = false;
    }
  };

  return {
    follow(id, follower) {
      let set = followers.get(id);
      if (!set) followers.set(id, (set = new Set()));
      set.add(follower);
      void readLoop();
      return () => {
        set.delete(follower);
        if (set.size === 0 && followers.get(id) === set) followers.delete(id);
      };
    },

    connect() {
      stopped = false;
      connection().catch(() => undefined);
    },

    stop() {
      stopped = true;
    },

    close() {
      stopped = true;
      wake();
      if (client?.isOpen) client.destroy();
      client = undefined;
      clientId = undefined;
      connecting = undefined;
    },
  };
}
