import { createClient, ErrorReply } from 'redis';
import { followAbort } from '../../src/abort';
import { backoff } from '../../src/clock';
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';

/** A reply of `sendCommand` in RESP2 form (node-redis' default). */
export type RedisReply = null | boolean | number | string | RedisReply[];

/** The node-redis client type this service uses (no modules, RESP2). */
export type RedisClient = ReturnType<typeof createClient>;

export interface RedisConnectionOptions {
  /** REDIS_URL (redis:// or rediss://). */
  url: string;
  /** REDIS_PASSWORD_FILE's content, when set; wins over a password in the URL. */
  password?: string;
  logger: Logger;
  /** Deadline of one command (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs: number;
  /** Longest pause between reconnection attempts (they start at 50–100 ms and double). */
  reconnectMaxDelayMs?: number;
  /** Key prefix shared by every replica of this service (REDIS_KEY_PREFIX). */
  prefix: string;
  /** Called after each command with its group, duration and outcome (metrics). */
  onCommand?: (group: string, seconds: number, ok: boolean) => void;
}

export interface SendOptions {
  /** Aborts the command when the caller goes away. */
  signal?: AbortSignal;
  /** A deadline other than the connection's (blocking reads add their block time). */
  timeoutMs?: number;
  /** The metrics group of the command (a small fixed set per caller, e.g. `runs`). */
  group?: string;
}

/**
 * The one Redis connection of a replica (node-redis), shared by every store. Commands carry a
 * deadline and are never queued while disconnected (`disableOfflineQueue`): during an outage they
 * fail at once with REDIS_UNAVAILABLE (503), and every caller decides what that means for it.
 * Blocking reads and pub/sub take connections of their own from `duplicate()`, which reconnect
 * the same way.
 */
export interface RedisConnection {
  /** The key prefix every key of this service starts with, e.g. `oag:`. */
  readonly prefix: string;
  /** The main client, for callers that need node-redis' typed commands (pass `commandOptions`). */
  readonly client: RedisClient;
  /** Sends one command with the deadline. @throws AppError REDIS_UNAVAILABLE */
  send(args: readonly string[], options?: SendOptions): Promise<RedisReply>;
  /** Options for a typed command on `client`: the deadline and the caller's signal. */
  commandOptions(options?: SendOptions): { timeout: number; abortSignal?: AbortSignal };
  /**
   * A connection of its own for blocking commands or SUBSCRIBE, with the same URL, password and
   * reconnection; closed by `stop()`.
   */
  duplicate(): Promise<RedisClient>;
  /** True while connected. */
  isReady(): boolean;
  /** Resolves on the next successful (re)connection. */
  nextReady(): Promise<void>;
  /** Calls `listener` on every change between up and down; returns the unsubscribe. */
  onState(listener: (up: boolean) => void): () => void;
  /** Calls `listener` after each command, like `options.onCommand`; returns the unsubscribe. */
  onCommand(listener: (group: string, seconds: number, ok: boolean) => void): () => void;
  /**
   * The kind of the last connection error: its class and Node's error code (e.g. `Error`,
   * `ECONNREFUSED`), null before any. Never its message, which may carry the address.
   */
  lastError(): { class: string; code: string | null } | null;
  /** Starts connecting; resolves once connected the first time (it keeps retrying). */
  start(): Promise<void>;
  /** Closes every connection and stops reconnecting. */
  stop(): Promise<void>;
}

/** Turns a node-redis failure (closed client, timeout, abort, socket error) into one code. */
export function redisUnavailable(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError('REDIS_UNAVAILABLE', undefined, {
    retryAfterS: 1,
    cause: err,
  });
}

/**
 * Error replies that mean Redis cannot serve right now, not that the command was wrong: out of
 * memory at `maxmemory` (OOM), a replica after a failover (READONLY), a restart loading its
 * data (LOADING), a long script running (BUSY), and a primary or cluster without quorum
 * (MASTERDOWN, NOREPLICAS, CLUSTERDOWN, TRYAGAIN). They are REDIS_UNAVAILABLE (503 with
 * Retry-After), like a lost connection.
 */
const UNAVAILABLE_REPLY =
  /^(OOM|READONLY|LOADING|BUSY|MASTERDOWN|NOREPLICAS|CLUSTERDOWN|TRYAGAIN)\b/;

/**
 * Commands sent within this window without a signal or deadline of their own share one
 * deadline, which fires the command timeout after the window ends: each such command gets
 * between the timeout and the timeout plus this much, for one timer per window instead of one
 * per command.
 */
const DEADLINE_WINDOW_MS = 50;

/** A deadline (or abort) for commands: node-redis' options and the promise that rejects then. */
interface Deadline {
  /** timeout 0: no timer of node-redis' own (its timeout only covers unsent commands). */
  options: { timeout: 0; abortSignal: AbortSignal };
  /** Rejects with the signal's reason when it aborts: a command still waiting fails then. */
  expired: Promise<never>;
  /** Clears a deadline of the command's own once it is answered. */
  release?: () => void;
}

function deadlineOf(signal: AbortSignal): Deadline {
  const expired = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
  expired.catch(() => undefined);
  return { options: { timeout: 0, abortSignal: signal }, expired };
}

export function createRedisConnection(options: RedisConnectionOptions): RedisConnection {
  const { logger, commandTimeoutMs, prefix } = options;
  const maxDelay = options.reconnectMaxDelayMs ?? 2000;
  const build = (): RedisClient =>
    createClient({
      url: options.url,
      ...(options.password !== undefined ? { password: options.password } : {}),
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2000,
        reconnectStrategy: (retries) =>
          backoff(retries + 1, { baseMs: 100, maxMs: maxDelay, jitter: 'equal' }),
      },
    });
  const client = build();
  const extra: RedisClient[] = [];
  const listeners = new Set<(up: boolean) => void>();
  let up = false;
  let stopped = false;
  const setState = (next: boolean): void => {
    if (next === up) return;
    up = next;
    for (const listener of listeners) listener(next);
  };
  const commandListeners = new Set<(group: string, seconds: number, ok: boolean) => void>();
  if (options.onCommand) commandListeners.add(options.onCommand);
  const observe = (group: string, seconds: number, ok: boolean): void => {
    for (const listener of commandListeners) listener(group, seconds, ok);
  };
  let lastError: { class: string; code: string | null } | null = null;
  let logged = false;
  client.on('error', (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    lastError = {
      class: err instanceof Error ? err.constructor.name : typeof err,
      code: typeof code === 'string' ? code : null,
    };
    setState(false);
    if (logged) return;
    logged = true;
    logger.warn('redis unreachable; retrying in the background', { error: err });
  });
  client.on('ready', () => {
    logger.info(logged ? 'redis reconnected' : 'redis connected');
    logged = false;
    setState(true);
  });

  const commandOptions = (
    opts: SendOptions = {},
  ): { timeout: number; abortSignal?: AbortSignal } => ({
    timeout: opts.timeoutMs ?? commandTimeoutMs,
    ...(opts.signal ? { abortSignal: opts.signal } : {}),
  });

  let shared: (Deadline & { until: number }) | undefined;
  /** The deadline of one `send`: the window's unless the caller brings a signal or deadline. */
  const deadlineFor = (opts: SendOptions): Deadline => {
    if (opts.signal || opts.timeoutMs !== undefined) {
      // A timer and a listener, cleared after the reply: AbortSignal.timeout and .any would
      // each add weak references, which cost GC work per command (see src/abort.ts).
      const own = new AbortController();
      const timer = setTimeout(
        () => own.abort(new DOMException('The operation timed out.', 'TimeoutError')),
        opts.timeoutMs ?? commandTimeoutMs,
      );
      timer.unref();
      const unfollow = followAbort(opts.signal, own);
      return {
        ...deadlineOf(own.signal),
        release: () => {
          clearTimeout(timer);
          unfollow();
        },
      };
    }
    const at = performance.now();
    if (!shared || at >= shared.until) {
      shared = {
        until: at + DEADLINE_WINDOW_MS,
        ...deadlineOf(AbortSignal.timeout(commandTimeoutMs + DEADLINE_WINDOW_MS)),
      };
    }
    return shared;
  };

  return {
    prefix,
    client,
    async send(args, opts = {}) {
      if (!client.isReady) throw redisUnavailable(new Error('not connected'));
      const started = performance.now();
      try {
        const deadline = deadlineFor(opts);
        const reply = (await Promise.race<unknown>([
          client.sendCommand([...args], deadline.options),
          deadline.expired,
        ]).finally(deadline.release)) as RedisReply;
        observe(opts.group ?? 'other', (performance.now() - started) / 1000, true);
        return reply;
      } catch (err) {
        observe(opts.group ?? 'other', (performance.now() - started) / 1000, false);
        // A reply error (WRONGTYPE, a script's error) is Redis answering, not Redis missing,
        // unless it says Redis cannot serve right now (see UNAVAILABLE_REPLY).
        // (node-redis' replies are ErrorReply subclasses: SimpleError, BlobError.)
        if (err instanceof ErrorReply && !UNAVAILABLE_REPLY.test(err.message)) throw err;
        throw redisUnavailable(err);
      }
    },
    commandOptions,
    async duplicate() {
      const dup = build();
      dup.on('error', () => undefined);
      extra.push(dup);
      if (!stopped) {
        // Connecting keeps retrying in the background; callers watch `isReady`.
        dup.connect().catch(() => undefined);
      }
      return dup;
    },
    isReady: () => client.isReady,
    nextReady: () => new Promise((resolve) => client.once('ready', () => resolve())),
    onState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onCommand(listener) {
      commandListeners.add(listener);
      return () => commandListeners.delete(listener);
    },
    lastError: () => lastError,
    async start() {
      await client.connect();
    },
    async stop() {
      stopped = true;
      for (const c of [client, ...extra]) if (c.isOpen) c.destroy();
    },
  };
}
