/**
 * Several Ollama servers behind one gateway. Each backend is a full Ollama service of its own
 * (./client.ts: keep-alive pool, circuit breaker, admission, load table) with its own cached
 * health (services/health); this module keeps the set (fixed by OLLAMA_HOST / OLLAMA_HOSTS, or
 * discovered through DNS), routes each generation to one of them (./routing.ts) and fans model
 * management out to all of them. The set itself is an OllamaClient, so everything above it
 * codes against one Ollama whatever the number of backends.
 */
import type { Clock, TimerHandle } from '../../src/clock';
import type { Config } from '../../src/config';
import { AppError, isAppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { modelKey, sameModel } from '../../src/model-name';
import { createOllamaHealth } from '../health';
import type { Telemetry } from '../metrics';
import type { Admission } from './admission';
import { settled, settling } from './answer-end';
import type { CircuitState } from './circuit';
import { createOllamaService, type OllamaClient } from './client';
import { discoveryName, dnsResolver, reconcile, urlFor, type Resolver } from './discovery';
import { failureOf } from './errors';
import {
  everywhere,
  firstAnswer,
  firstFailure,
  firstFound,
  notFound,
  pullEverywhere,
  union,
} from './fan-out';
import { keepAliveMs as keepAliveToMs } from './loads';
import { bestCircuit, mergeSnapshots } from './merged-health';
import { createPlacement, type PlacedBackend } from './placement';
import { affinityScore, chooseBackend, type RouteCandidate, type RouteReason } from './routing';
import type {
  BackendStatus,
  CallOptions,
  OllamaHealth,
  OllamaHealthSnapshot,
  RouteHint,
} from './types';

export interface BackendSetOptions {
  config: Readonly<Config>;
  telemetry: Telemetry;
  logger: Logger;
  clock: Clock;
  /** The active model: each backend's health checks whether it is installed there. */
  activeModel: () => string;
  /** One admission per backend (default: an in-process one each). */
  admissionFor?: (backendId: string) => Admission;
  /** The resolver behind OLLAMA_DISCOVERY (default: node:dns/promises). */
  resolve?: Resolver;
  random?: () => number;
}

/** The backends seen as one Ollama, plus their health and their per-backend state. */
export interface BackendSet extends OllamaClient {
  /** The health of every backend, merged (readiness: at least one serves the active model). */
  health: OllamaHealth;
  backends(): BackendStatus[];
}

interface Backend extends PlacedBackend {
  /** The address it was discovered at (unset for OLLAMA_HOST / OLLAMA_HOSTS backends). */
  address?: string;
  client: OllamaClient;
  health: OllamaHealth;
  draining: boolean;
  /** Generations routed here by this replica and not finished. */
  active: number;
}

/** Errors before the first byte after which another backend may take the generation. */
const FAILOVER_CODES = new Set([
  'OLLAMA_UNAVAILABLE',
  'OLLAMA_BUSY',
  'OLLAMA_TIMEOUT',
  'MODEL_NOT_FOUND',
  'MODEL_FAILING',
  'QUEUE_FULL',
]);

function canFailOver(err: unknown): boolean {
  if (!isAppError(err)) return false;
  if (FAILOVER_CODES.has(err.code)) return true;
  return err.code === 'OLLAMA_UPSTREAM_ERROR' && (failureOf(err).status ?? 0) >= 500;
}

/**
 * Builds the backend set: OLLAMA_HOSTS when given, else OLLAMA_HOST unless OLLAMA_DISCOVERY is
 * set; discovered backends join when `health.start()` starts the discovery timer.
 */
export function createBackendSet(options: BackendSetOptions): BackendSet {
  const { config, telemetry, logger, clock } = options;
  const backends = new Map<string, Backend>();
  const circuitListeners = new Set<(state: CircuitState) => void>();
  let healthRunning = false;
  let lastCircuit: CircuitState | undefined;
  let discoveryTimer: TimerHandle | null = null;
  let discovering: Promise<void> | null = null;
  let closed = false;
  let refreshing: Promise<OllamaHealthSnapshot> | null = null;
  /** Aborted on close: ends the background warm-up of discovered backends. */
  const lifetime = new AbortController();

  function add(id: string, url: string, address?: string): Backend {
    const client = createOllamaService({
      config: { ...config, OLLAMA_HOST: url },
      telemetry,
      logger,
      clock,
      random: options.random,
      ...(options.admissionFor ? { admission: options.admissionFor(id) } : {}),
      onLoad: () => telemetry.modelLoad?.({ backend: id }),
    });
    const health = createOllamaHealth({
      ollama: client,
      activeModel: options.activeModel,
      ttlMs: config.OLLAMA_HEALTH_TTL_MS,
      timeoutMs: config.OLLAMA_HEALTH_TIMEOUT_MS,
      psTimeoutMs: config.OLLAMA_PS_TIMEOUT_MS,
      telemetry,
      logger,
      clock,
      random: options.random,
    });
    const backend: Backend = {
      id,
      client,
      health,
      draining: false,
      active: 0,
      sent: new Map(),
      leaving: new Map(),
    };
    if (address !== undefined) backend.address = address;
    client.onCircuitChange(() => circuitChanged());
    backends.set(id, backend);
    if (healthRunning) health.start();
    return backend;
  }

  const statics =
    config.OLLAMA_HOSTS.length > 0
      ? config.OLLAMA_HOSTS
      : config.OLLAMA_DISCOVERY === ''
        ? [config.OLLAMA_HOST]
        : [];
  statics.forEach((url, i) => add(String(i), url));

  const list = (): Backend[] => [...backends.values()];
  const serving = (): Backend[] => list().filter((b) => !b.draining);

  const placement = createPlacement({
    clock,
    keepAliveMs: keepAliveToMs(config.OLLAMA_KEEP_ALIVE),
    healthTimeoutMs: config.OLLAMA_HEALTH_TIMEOUT_MS,
    serving,
    onLoad: (b) => telemetry.modelLoad?.({ backend: b.id }),
  });

  function loadOf(b: Backend): number {
    const q = b.client.queueStats();
    return Math.max(b.active, q.inFlight + q.queued);
  }

  function candidate(
    b: Backend,
    model: string | undefined,
    holders?: ReadonlyMap<string, number>,
    held: ReadonlySet<string> = placement.held(b),
  ): RouteCandidate {
    const snap = b.health.snapshot();
    const installed =
      model === undefined || snap.installedModels === null
        ? model === undefined
          ? true
          : null
        : snap.installedModels.some((n) => sameModel(n, model));
    return {
      id: b.id,
      status: snap.status,
      circuit: b.client.circuitState(),
      installed,
      loaded: model !== undefined && held.has(modelKey(model)),
      loadedCount: held.size,
      load: loadOf(b),
      capacity: b.client.queueStats().maxConcurrency,
      ...(holders ? { redundant: [...held].every((k) => (holders.get(k) ?? 0) > 1) } : {}),
    };
  }

  /**
   * Picks a backend for `model`, leaving out `tried`; undefined when none is left. The models
   * each backend holds are worked out once per pick and handed back with the choice.
   */
  function pick(
    model: string | undefined,
    hint: RouteHint | undefined,
    tried: ReadonlySet<string>,
  ): { backend: Backend; reason: RouteReason; held: ReadonlySet<string> } | undefined {
    const held = new Map(serving().map((b) => [b, placement.held(b)] as const));
    const holders = placement.holderCounts(held.values());
    const pool = [...held].filter(([b]) => !tried.has(b.id));
    const choice = chooseBackend(
      pool.map(([b, keys]) => candidate(b, model, holders, keys)),
      {
        affinity: hint?.affinity ?? model ?? '',
        ...(hint?.backend !== undefined && tried.size === 0 ? { sticky: hint.backend } : {}),
      },
    );
    if (!choice) return undefined;
    const reason: RouteReason = tried.size > 0 ? 'failover' : choice.reason;
    const backend = backends.get(choice.id)!;
    return { backend, reason, held: held.get(backend)! };
  }

  function noBackend(): AppError {
    return new AppError('OLLAMA_UNAVAILABLE', 'No Ollama backend is available.', {
      retryAfterS: 1,
      details: { backends: serving().length },
    });
  }

  /**
   * Runs one generation on the backend the rules pick; when it fails before its first byte in
   * a way another backend may not, the next best backend gets it. `wrap` ties the routed count
   * to the answer's end.
   */
  async function routed<T>(
    model: string | undefined,
    opts: CallOptions | undefined,
    call: (b: Backend) => Promise<T>,
    wrap: (answer: T, done: () => void) => T,
    /** Whether sending the model where it is not loaded is a load only this call causes. */
    causesLoad = false,
  ): Promise<T> {
    const tried = new Set<string>();
    let lastErr: unknown;
    for (;;) {
      const picked = pick(model, opts?.route, tried);
      if (!picked) throw lastErr ?? noBackend();
      const { backend, reason, held } = picked;
      telemetry.route?.({ reason, backend: backend.id });
      backend.active += 1;
      const ended = placement.sending(backend, held, model, causesLoad);
      let settled = false;
      const done = (reached = true): void => {
        if (settled) return;
        settled = true;
        backend.active -= 1;
        ended(reached);
      };
      try {
        const answer = await call(backend);
        if (opts?.route) opts.route.backend = backend.id;
        return wrap(answer, () => done());
      } catch (err) {
        done(false);
        if (opts?.signal?.aborted || !canFailOver(err)) throw err;
        logger.warn('generation failed before its first byte; trying another backend', {
          backend: backend.id,
          code: isAppError(err) ? err.code : undefined,
        });
        tried.add(backend.id);
        lastErr = err;
      }
    }
  }

  /** Backends not known to be down, in id order. */
  const reachable = (): Backend[] => serving().filter((b) => b.health.snapshot().status !== 'down');

  /**
   * The backends a preload of `model` goes to: those having it, loaded ones first, then the
   * least busy; a tie goes by the model's rendezvous score, so every replica picks alike.
   */
  function preloadTargets(model: string): Backend[] {
    const pool = reachable();
    const having = pool.filter((b) => candidate(b, model).installed !== false);
    const targets = having.length > 0 ? having : pool;
    const replicas = config.OLLAMA_MODEL_REPLICAS;
    if (replicas <= 0 || targets.length <= replicas) return targets;
    const ranked = targets
      .map((b) => ({ b, c: candidate(b, model) }))
      .sort(
        (x, y) =>
          Number(y.c.loaded) - Number(x.c.loaded) ||
          x.c.loadedCount - y.c.loadedCount ||
          x.c.load - y.c.load ||
          affinityScore(modelKey(model), y.b.id) - affinityScore(modelKey(model), x.b.id),
      );
    return ranked.slice(0, replicas).map((r) => r.b);
  }

  /**
   * OLLAMA_PULL_ON_START: the model is pulled on every reachable backend known not to have it
   * (a backend whose pull fails is left out of the preload; the others go on).
   */
  async function pullWhereMissing(model: string, opts: CallOptions | undefined): Promise<void> {
    const missing = reachable().filter((b) => candidate(b, model).installed === false);
    await everywhere(missing, async (b) => {
      try {
        for await (const _ of b.client.pull(model, opts));
        await b.health.refresh();
      } catch (err) {
        logger.warn('pulling the model on a backend failed', {
          backend: b.id,
          model,
          code: isAppError(err) ? err.code : undefined,
        });
      }
    });
  }

  /**
   * A backend that joined through discovery gets the active model as a switch would give it:
   * pulled when missing and OLLAMA_PULL_ON_START asks, preloaded when OLLAMA_PRELOAD does.
   */
  async function warm(b: Backend): Promise<void> {
    const model = options.activeModel();
    try {
      const snap = await b.health.refresh();
      if (snap.status !== 'up' || closed) return;
      if (snap.activeModelInstalled === false) {
        if (!config.OLLAMA_PULL_ON_START) return;
        for await (const _ of b.client.pull(model, { signal: lifetime.signal }));
      }
      if (config.OLLAMA_PRELOAD) {
        await b.client.preload(model, config.OLLAMA_KEEP_ALIVE, { signal: lifetime.signal });
      }
    } catch (err) {
      if (!closed) {
        logger.warn('warming a discovered backend failed', {
          backend: b.id,
          code: isAppError(err) ? err.code : undefined,
        });
      }
    }
  }

  /** Reachable backends, those known to have `model` installed first. */
  function havingFirst(model: string): Backend[] {
    const pool = reachable();
    const having = pool.filter((b) => candidate(b, model).installed === true);
    return [...having, ...pool.filter((b) => !having.includes(b))];
  }

  /** `order`, then the other serving backends: the order a read or an admin call tries them in. */
  function inOrder(order: readonly Backend[]): Backend[] {
    return [...order, ...serving().filter((b) => !order.includes(b))];
  }

  /** Configured for several backends: pull progress lines then say which backend they are about. */
  const several = config.OLLAMA_HOSTS.length > 0 || config.OLLAMA_DISCOVERY !== '';

  /** The circuit the probes read: over the backends that could serve the active model. */
  function aggregateCircuit(): CircuitState {
    const active = options.activeModel();
    const pool = serving();
    const able = pool.filter((b) => {
      const s = b.health.snapshot();
      return s.status === 'up' && s.installedModels?.some((n) => sameModel(n, active)) === true;
    });
    return bestCircuit((able.length > 0 ? able : pool).map((b) => b.client.circuitState()));
  }

  function circuitChanged(): void {
    const state = aggregateCircuit();
    if (state === lastCircuit) return;
    lastCircuit = state;
    for (const listener of circuitListeners) listener(state);
  }

  const merged = (): OllamaHealthSnapshot =>
    mergeSnapshots(serving().map((b) => b.health.snapshot()));

  /** Resolves OLLAMA_DISCOVERY once: adds new addresses, drains the ones gone. */
  async function discover(): Promise<void> {
    const template = new URL(config.OLLAMA_DISCOVERY);
    let addresses: string[];
    try {
      addresses = await (options.resolve ?? dnsResolver)(discoveryName(template));
    } catch (err) {
      // A DNS fault is not "every pod left": keep the set until an answer comes.
      logger.warn('backend discovery failed', { error: (err as Error).message });
      return;
    }
    if (closed) return;
    const joining = reconcile(list(), addresses, (b) =>
      logger.info('ollama backend left discovery; draining it', { backend: b.id }),
    );
    // A discovered backend's id is its address: every replica names a pod the same way
    // whatever order its resolver answers in or whenever it started, which the shared
    // admission keys, the `backend` label and the affinity hash all rely on.
    for (const address of joining) {
      const joined = add(address, urlFor(template, address), address);
      logger.info('ollama backend discovered', { backend: joined.id });
      void warm(joined);
    }
    await reap();
    circuitChanged();
  }

  /** Closes drained backends once their in-flight work finished. */
  async function reap(): Promise<void> {
    for (const b of list()) {
      if (!b.draining || loadOf(b) > 0) continue;
      backends.delete(b.id);
      telemetry.backendRemoved?.({ backend: b.id });
      b.health.stop();
      await b.client.close();
      logger.info('ollama backend removed', { backend: b.id });
    }
  }

  function discoveryLoop(): void {
    discovering ??= discover().finally(() => {
      discovering = null;
      if (healthRunning && !closed) {
        discoveryTimer = clock.after(config.OLLAMA_DISCOVERY_INTERVAL_MS, discoveryLoop);
      }
    });
  }

  const health: OllamaHealth = {
    start() {
      if (healthRunning) return;
      healthRunning = true;
      for (const b of list()) b.health.start();
      if (config.OLLAMA_DISCOVERY !== '') discoveryLoop();
    },
    stop() {
      healthRunning = false;
      discoveryTimer?.cancel();
      discoveryTimer = null;
      for (const b of list()) b.health.stop();
    },
    snapshot: merged,
    refresh() {
      refreshing ??= Promise.all(serving().map((b) => b.health.refresh()))
        .then(merged)
        .finally(() => {
          refreshing = null;
        });
      return refreshing;
    },
  };

  return {
    health,

    chatStream(req, opts) {
      return routed(req.model, opts, (b) => b.client.chatStream(req, opts), settling);
    },

    chat(req, opts) {
      return routed(req.model, opts, (b) => b.client.chat(req, opts), settled);
    },

    forward(req, opts) {
      const { model } = req;
      if (req.kind === 'generation') {
        // Only a generation with load-time options of its own makes Ollama load the model
        // itself; the loads of the gateway's table are counted where the client starts them.
        const ownLoad = req.load === undefined;
        return routed(model, opts, (b) => b.client.forward(req, opts), settling, ownLoad);
      }
      // Reads and admin calls go to one backend: one that has the model, else the first up.
      const order = model === undefined ? reachable() : havingFirst(model);
      return firstAnswer(inOrder(order), (b) => b.client.forward(req, opts), noBackend);
    },

    version: (opts) => firstAnswer(inOrder(reachable()), (b) => b.client.version(opts), noBackend),
    list: (opts) => union(serving(), (b) => b.client.list(opts), noBackend),
    ps: (opts) => union(serving(), (b) => b.client.ps(opts), noBackend),

    show(model, opts) {
      return firstFound(inOrder(havingFirst(model)), (b) => b.client.show(model, opts), noBackend);
    },

    async preload(model, keepAlive, opts) {
      if (config.OLLAMA_PULL_ON_START) await pullWhereMissing(model, opts);
      const targets = preloadTargets(model);
      if (targets.length === 0) throw noBackend();
      const results = await everywhere(targets, (b) => b.client.preload(model, keepAlive, opts));
      const loaded = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.loadMs] : []));
      if (loaded.length === 0) throw firstFailure(results, noBackend);
      results.forEach((r, i) => {
        if (r.status === 'rejected' && !notFound(r.reason)) {
          logger.warn('preload failed on a backend', { backend: targets[i]!.id, model });
        }
      });
      return { loadMs: Math.max(...loaded) };
    },

    async unload(model, opts) {
      const results = await everywhere(serving(), (b) => b.client.unload(model, opts));
      if (!results.some((r) => r.status === 'fulfilled')) throw firstFailure(results, noBackend);
    },

    async *pull(model, opts) {
      // Chosen when the caller starts reading, as a single backend's pull starts then too.
      const targets = reachable();
      if (targets.length === 0) throw noBackend();
      yield* pullEverywhere(targets, model, opts, { label: several, logger });
    },

    async delete(model, opts) {
      const results = await everywhere(reachable(), (b) => b.client.delete(model, opts));
      if (!results.some((r) => r.status === 'fulfilled')) throw firstFailure(results, noBackend);
      const failed = results.find((r) => r.status === 'rejected' && !notFound(r.reason));
      if (failed?.status === 'rejected') throw failed.reason;
    },

    circuitState: aggregateCircuit,
    failingModels: () => [...new Set(list().flatMap((b) => b.client.failingModels()))],
    loading: () => [...new Set(list().flatMap((b) => b.client.loading()))],
    queueStats() {
      const all = list().map((b) => b.client.queueStats());
      return {
        inFlight: all.reduce((n, q) => n + q.inFlight, 0),
        queued: all.reduce((n, q) => n + q.queued, 0),
        maxConcurrency: all.reduce((n, q) => n + q.maxConcurrency, 0),
        maxQueue: all.reduce((n, q) => n + q.maxQueue, 0),
        oldestWaitMs: Math.max(0, ...all.map((q) => q.oldestWaitMs ?? 0)),
        // Every backend's admission counts through the same Redis connection: one mode for all.
        ...(all.some((q) => q.mode !== undefined)
          ? {
              mode: all.some((q) => q.mode === 'global') ? ('global' as const) : ('local' as const),
            }
          : {}),
      };
    },

    backends() {
      return list().map((b) => {
        const s = b.health.snapshot();
        const q = b.client.queueStats();
        const loaded = new Map<string, string>();
        for (const m of s.loadedModels) loaded.set(modelKey(m.name), m.name);
        for (const key of placement.held(b)) if (!loaded.has(key)) loaded.set(key, key);
        return {
          id: b.id,
          state: b.draining ? 'draining' : s.status,
          version: s.version,
          circuit: b.client.circuitState(),
          inFlight: q.inFlight,
          queued: Math.max(q.queued, b.active - q.inFlight),
          installedModels: s.installedModels,
          loadedModels: [...loaded.values()],
          lastError: s.lastError,
        };
      });
    },

    placement(model) {
      const installed: string[] = [];
      const loaded: string[] = [];
      for (const b of serving()) {
        const c = candidate(b, model);
        if (c.installed === true) installed.push(b.id);
        if (c.loaded) loaded.push(b.id);
      }
      return { installed, loaded };
    },

    onCircuitChange(listener) {
      circuitListeners.add(listener);
      return () => circuitListeners.delete(listener);
    },

    async close() {
      closed = true;
      lifetime.abort();
      health.stop();
      await discovering?.catch(() => undefined);
      await Promise.all(list().map((b) => b.client.close()));
    },
  };
}
