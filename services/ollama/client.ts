/**
 * The one adapter between the gateway and Ollama: the official `ollama` client over a keep-alive
 * undici pool, with deadlines, typed errors, retries, a circuit breaker and admission control.
 * See ./types.ts for the contract every caller codes against.
 */
import { Ollama, type ChatRequest, type ChatResponse } from 'ollama';
import { createSystemClock, type Clock } from '../../src/clock';
import { numCtxFor, type Config } from '../../src/config';
import { isAppError } from '../../src/errors';
import { isCloudModel } from '../../src/model-name';
import type { Logger } from '../../src/logger';
import { createAdmission, type Admission, type Slot } from './admission';
import { createCircuit, type CircuitState } from './circuit';
import {
  countsAsOllamaFailure,
  failureOf,
  isModelFailure,
  midStreamError,
  outcomeOf,
  pullError,
  unavailableError,
} from './errors';
import { createForwarder, type Forward } from './forward';
import { CallDeadline, createOllamaTransport, type AttemptProbe } from './transport';
import { withRetries } from './retry';
import { createChatStream, joinChat, parseChatLines, type StreamEnd } from './stream';
import { createLoads, keepAliveMs } from './loads';
import { createModelCircuits } from './model-circuit';
import type {
  CallOptions,
  CallTimings,
  ChatStream,
  GatewayChatRequest,
  OllamaService,
} from './types';
import type { InferenceEvent, InferenceOperation, Telemetry } from '../metrics';

export type OllamaClientConfig = Pick<
  Config,
  | 'OLLAMA_HOST'
  | 'OLLAMA_KEEP_ALIVE'
  | 'OLLAMA_NUM_CTX'
  | 'OLLAMA_NUM_CTX_MODELS'
  | 'OLLAMA_TIMEOUT_MS'
  | 'OLLAMA_LOAD_TIMEOUT_MS'
  | 'OLLAMA_FIRST_BYTE_TIMEOUT_MS'
  | 'OLLAMA_STREAM_IDLE_TIMEOUT_MS'
  | 'OLLAMA_RETRY_MAX'
  | 'OLLAMA_RETRY_BASE_MS'
  | 'CIRCUIT_FAILURE_THRESHOLD'
  | 'CIRCUIT_RESET_MS'
  | 'MODEL_FAILURE_THRESHOLD'
  | 'MODEL_COOLDOWN_MS'
  | 'OLLAMA_MAX_CONCURRENCY'
  | 'QUEUE_MAX'
  | 'QUEUE_TIMEOUT_MS'
>;

export interface OllamaClientOptions {
  config: OllamaClientConfig;
  telemetry: Telemetry;
  logger: Logger;
  /** Time, call deadlines and the waits between retries (default: the system clock). */
  clock?: Pick<Clock, 'now' | 'after' | 'sleep'>;
  /** Jitter source for retry backoff (default Math.random). */
  random?: () => number;
  /** This Ollama's admission (default: an in-process one from OLLAMA_MAX_CONCURRENCY, QUEUE_*). */
  admission?: Admission;
  /** Called when the gateway starts loading a model here (for the loads-caused metric). */
  onLoad?: (model: string) => void;
}

/** The service plus what its owner (server.ts, tests) needs: events and shutdown. */
export interface OllamaClient extends OllamaService {
  /** Subscribes to circuit state changes; returns the unsubscribe function. */
  onCircuitChange(listener: (state: CircuitState) => void): () => void;
  /** Forwards one request as it is and streams the answer back (the drop-in endpoints). */
  forward: Forward;
  /** Closes pooled connections and the breaker's timers. */
  close(): Promise<void>;
}

type RetryKind = 'read' | 'generation' | 'none';

/** One attempt of a call: its probe, and an ollama-js client bound to it, made when first used. */
interface Attempt {
  probe: AttemptProbe;
  readonly client: Ollama;
}

interface CallSpec<T> {
  deadline: CallDeadline;
  modelScoped: boolean;
  retry: RetryKind;
  /** Through the Ollama-wide circuit (every call but health checks). */
  circuit?: boolean;
  run: (attempt: Attempt) => Promise<T>;
  probe?: Partial<AttemptProbe>;
}

function base64Image(image: string | Uint8Array): string {
  return typeof image === 'string' ? image : Buffer.from(image).toString('base64');
}

/** Builds the Ollama service. Nothing connects until the first call. */
export function createOllamaService(options: OllamaClientOptions): OllamaClient {
  const { config, telemetry, logger } = options;
  const clock = options.clock ?? createSystemClock();
  const { now } = clock;
  const transport = createOllamaTransport({});
  const chatUrl = `${config.OLLAMA_HOST.replace(/\/+$/, '')}/api/chat`;
  const circuit = createCircuit({
    failureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
    resetMs: config.CIRCUIT_RESET_MS,
    isFailure: countsAsOllamaFailure,
    now,
  });
  circuit.onChange((state) => logger.warn('ollama circuit changed', { circuit: state }));
  const modelCircuits = createModelCircuits({
    threshold: config.MODEL_FAILURE_THRESHOLD,
    cooldownMs: config.MODEL_COOLDOWN_MS,
    now,
  });
  const loads = createLoads({
    keepAliveMs: keepAliveMs(config.OLLAMA_KEEP_ALIVE),
    now,
    // One telemetry event per load, whoever waits on it; a preload answer carries no durations,
    // so the load is timed here.
    start: async (model, keepAlive, signal) => {
      const started = now();
      options.onLoad?.(model);
      try {
        await emptyRequest(model, keepAlive, { signal }, 'load');
        report('preload', model, started, {
          outcome: 'success',
          loadDurationNs: (now() - started) * 1e6,
        });
      } catch (err) {
        report('preload', model, started, { outcome: outcomeOf(err, signal.aborted) });
        throw err;
      }
    },
  });
  const admission =
    options.admission ??
    createAdmission({
      maxConcurrency: config.OLLAMA_MAX_CONCURRENCY,
      maxQueue: config.QUEUE_MAX,
      timeoutMs: config.QUEUE_TIMEOUT_MS,
      clock,
    });

  const shouldRetry = (kind: RetryKind) => (err: unknown) => {
    if (kind === 'none' || !isAppError(err)) return false;
    if ((err.details as { circuit?: string } | undefined)?.circuit === 'open') return false;
    if (err.code === 'OLLAMA_BUSY') return true;
    // A generation that reached Ollama's handler may have started: never run it twice.
    if (err.code === 'OLLAMA_UNAVAILABLE') return kind === 'read' || !failureOf(err).responded;
    return (
      kind === 'read' && err.code === 'OLLAMA_UPSTREAM_ERROR' && (failureOf(err).status ?? 0) >= 500
    );
  };

  /** One call: breaker → retries → attempt (a fresh ollama-js client bound to this attempt). */
  function execute<T>(spec: CallSpec<T>): Promise<T> {
    const { deadline } = spec;
    const attempts = (): Promise<T> =>
      withRetries(
        async () => {
          const probe: AttemptProbe = { responded: false, ...spec.probe };
          let client: Ollama | undefined;
          const attempt: Attempt = {
            probe,
            get client() {
              return (client ??= new Ollama({
                host: config.OLLAMA_HOST,
                fetch: transport.fetchFor(deadline, probe, spec.modelScoped) as typeof fetch,
              }));
            },
          };
          try {
            return await spec.run(attempt);
          } catch (err) {
            throw (
              deadline.explain(err) ??
              (probe.responded ? midStreamError(err) : unavailableError(err, false))
            );
          }
        },
        {
          retries: spec.retry === 'none' ? 0 : config.OLLAMA_RETRY_MAX,
          baseMs: config.OLLAMA_RETRY_BASE_MS,
          shouldRetry: shouldRetry(spec.retry),
          signal: deadline.signal,
          clock,
          random: options.random,
        },
      );
    return spec.circuit === false ? attempts() : circuit.run(attempts);
  }

  /** A non-streamed call with the whole-call deadline; retried only when `retry` allows. */
  async function simple<T>(
    opts: CallOptions | undefined,
    modelScoped: boolean,
    retry: RetryKind,
    run: (client: Ollama) => Promise<T>,
    phase: 'total' | 'load' = 'total',
  ): Promise<T> {
    const deadline = new CallDeadline(opts?.signal, clock);
    const health = opts?.health === true;
    deadline.arm(phase, opts?.timeoutMs ?? config.OLLAMA_TIMEOUT_MS);
    try {
      return await execute({
        deadline,
        modelScoped,
        retry: health ? 'none' : retry,
        circuit: !health,
        run: (attempt) => run(attempt.client),
      });
    } finally {
      deadline.dispose();
    }
  }

  function report(
    operation: InferenceOperation,
    model: string,
    started: number,
    fields: Partial<InferenceEvent> & Pick<InferenceEvent, 'outcome'>,
  ): void {
    telemetry.inference({ model, operation, durationS: (now() - started) / 1000, ...fields });
  }

  function metricsOf(r: ChatResponse | undefined): Partial<InferenceEvent> {
    if (!r) return {};
    return {
      promptTokens: r.prompt_eval_count,
      completionTokens: r.eval_count,
      evalDurationNs: r.eval_duration,
      loadDurationNs: r.load_duration,
      promptEvalDurationNs: r.prompt_eval_duration,
    };
  }

  /**
   * The load-time options the gateway owns: the model's context length (OLLAMA_NUM_CTX,
   * OLLAMA_NUM_CTX_MODELS), the same on the preload, every generation and the unload, so
   * Ollama never reloads a model because two requests differ (ollama-api.md §3.5b).
   */
  function loadOptions(
    model: string,
    options?: GatewayChatRequest['options'],
  ): { options?: GatewayChatRequest['options'] } {
    const numCtx = numCtxFor(config, model);
    if (numCtx === undefined) return options ? { options } : {};
    return { options: { ...options, num_ctx: numCtx } };
  }

  /**
   * Copies the caller's request and adds ours. Messages that carry images are copied with their
   * images as base64, as Ollama takes them (the caller's stay as they were sent).
   */
  function outgoing(req: GatewayChatRequest): ChatRequest {
    const withImages = req.messages?.some((m) => m.images !== undefined) ?? false;
    return {
      ...req,
      ...loadOptions(req.model, req.options),
      messages: withImages
        ? req.messages?.map((m) =>
            m.images === undefined ? m : { ...m, images: m.images.map(base64Image) },
          )
        : req.messages,
      keep_alive: config.OLLAMA_KEEP_ALIVE,
      // ollama-js sends `think` as given; its types lack the `max` level Ollama accepts.
    } as ChatRequest;
  }

  /**
   * Fails fast on an open circuit or a failing model, waits until the model is loaded (by a
   * load the gateway owns, see ./loads.ts), then waits for an admission slot. `call.trial` is
   * set as soon as the model's breaker lets this call through as its trial, so a failure after
   * that point still reports the trial (see `settle`).
   */
  async function admit(
    model: string,
    opts: CallOptions | undefined,
    call: { trial: boolean },
    load = true,
  ): Promise<Slot> {
    circuit.assertAvailable();
    call.trial = modelCircuits.assertAvailable(model);
    // Cloud models run on ollama.com: there is nothing to load here.
    if (load && !isCloudModel(model) && !loads.warm(model)) {
      await loads.ensure(model, config.OLLAMA_KEEP_ALIVE, opts?.signal);
    }
    return admission.acquire(opts?.signal, opts?.ticket);
  }

  async function emptyRequest(
    model: string,
    keepAlive: string | number,
    opts: CallOptions | undefined,
    purpose: 'load' | 'unload',
  ): Promise<ChatResponse | undefined> {
    const callOpts =
      purpose === 'load' ? { ...opts, timeoutMs: config.OLLAMA_LOAD_TIMEOUT_MS } : opts;
    const phase = purpose === 'load' ? 'load' : 'total';
    return simple(
      callOpts,
      true,
      'generation',
      async (client) => {
        try {
          return await client.chat({
            model,
            messages: [],
            keep_alive: keepAlive,
            stream: false,
            ...loadOptions(model),
          });
        } catch (err) {
          // Embedding models refuse chat (400); /api/embed with no input loads or unloads them.
          if (!isAppError(err) || err.code !== 'OLLAMA_BAD_REQUEST') throw err;
          await client.embed({ model, input: [], keep_alive: keepAlive, ...loadOptions(model) });
          return undefined;
        }
      },
      phase,
    );
  }

  /**
   * Records how a generation on `model` ended (`err` undefined: answered), for its breaker and
   * the load table. A call its caller cancelled says nothing about the model; when it was the
   * breaker's trial, the next call becomes the trial.
   */
  function settle(
    model: string,
    trial: boolean,
    err?: unknown,
    cancelled = false,
    forwarded?: { tableLoad: boolean },
  ): void {
    if (cancelled) {
      if (trial) modelCircuits.releaseTrial(model);
      return;
    }
    if (err === undefined) {
      // A forwarded request with load-time options of its own left the model loaded its way:
      // the next call with the gateway's options loads it again, through the table.
      if (forwarded?.tableLoad === false) loads.forget(model);
      else loads.used(model);
    } else if (isModelFailure(err)) {
      loads.forget(model);
      // A forwarded body is the client's own (a `template`, wrong-typed `options`): Ollama's 500
      // for it cannot be told from the model failing, so it does not count toward a pause.
      if (forwarded) {
        if (trial) modelCircuits.releaseTrial(model);
        return;
      }
    }
    modelCircuits.record(model, err, trial);
  }

  /** A generation admitted and answered by Ollama (its headers came), still to be read. */
  interface Generation<T> {
    answer: T;
    slot: Slot;
    /** This call is the model breaker's trial. */
    trial: boolean;
    deadline: CallDeadline;
    timings: CallTimings;
    started: number;
    sentAt: number;
  }

  /**
   * Admits a chat and sends it with the first-byte deadline, then the idle deadline re-armed by
   * every chunk. A failure up to Ollama's answer is settled and reported here.
   */
  async function generate<T>(
    req: GatewayChatRequest,
    opts: CallOptions | undefined,
    run: (attempt: Attempt, deadline: CallDeadline) => Promise<T>,
  ): Promise<Generation<T>> {
    const started = now();
    const timings: CallTimings = { queueMs: 0 };
    let slot: Slot | undefined;
    const call = { trial: false };
    const deadline = new CallDeadline(opts?.signal, clock);
    try {
      slot = await admit(req.model, opts, call);
      timings.queueMs = slot.waitedMs;
      const sentAt = now();
      deadline.arm('first_byte', config.OLLAMA_FIRST_BYTE_TIMEOUT_MS);
      const answer = await execute({
        deadline,
        modelScoped: true,
        retry: 'generation',
        probe: { onProgress: () => deadline.arm('idle', config.OLLAMA_STREAM_IDLE_TIMEOUT_MS) },
        run: (attempt) => run(attempt, deadline),
      });
      return { answer, slot, trial: call.trial, deadline, timings, started, sentAt };
    } catch (err) {
      generationFailed(req.model, err, { slot, trial: call.trial, deadline, timings, started });
      throw err;
    }
  }

  function generationFailed(
    model: string,
    err: unknown,
    g: Pick<Generation<unknown>, 'trial' | 'deadline' | 'timings' | 'started'> & { slot?: Slot },
  ): void {
    g.deadline.dispose();
    g.slot?.release();
    settle(model, g.trial, err, g.deadline.cancelled);
    report('chat', model, g.started, {
      outcome: outcomeOf(err, g.deadline.cancelled && !isAppError(err)),
      queueWaitS: g.timings.queueMs / 1000,
    });
  }

  async function chatStream(
    req: GatewayChatRequest,
    opts: CallOptions | undefined,
  ): Promise<ChatStream> {
    const body = JSON.stringify({ ...outgoing(req), stream: true });
    const g = await generate(req, opts, ({ probe }, deadline) =>
      transport.streamLines(chatUrl, body, { deadline, probe, modelScoped: true }),
    );
    const { slot, trial, deadline, timings, started, sentAt } = g;
    timings.firstByteMs = now() - sentAt;
    return createChatStream({
      source: g.answer,
      deadline,
      timings,
      sentAt,
      now,
      onEnd: (end: StreamEnd) => {
        slot.release();
        settle(req.model, trial, end.error, end.cancelled);
        report('chat', req.model, started, {
          outcome:
            end.error === undefined && !end.cancelled
              ? 'success'
              : outcomeOf(end.error, end.cancelled),
          queueWaitS: timings.queueMs / 1000,
          ...(end.ttftMs !== undefined ? { ttftS: end.ttftMs / 1000 } : {}),
          ...metricsOf(end.final),
        });
      },
    });
  }

  /**
   * An answered chat, streamed from Ollama too and read whole, parsed once at the end: it gets
   * the same first-byte and idle deadlines as a stream (a hung Ollama frees the slot after
   * OLLAMA_STREAM_IDLE_TIMEOUT_MS instead of OLLAMA_TIMEOUT_MS) without the cost of handing out
   * every chunk.
   */
  async function chat(
    req: GatewayChatRequest,
    opts: CallOptions | undefined,
  ): Promise<{ response: ChatResponse; timings: CallTimings }> {
    const body = JSON.stringify({ ...outgoing(req), stream: true });
    const g = await generate(req, opts, ({ probe }, deadline) =>
      transport.readAll(chatUrl, body, { deadline, probe, modelScoped: true, now }),
    );
    const { answer: chunks, slot, deadline, timings, started, sentAt } = g;
    try {
      timings.firstByteMs = (chunks[0]?.at ?? now()) - sentAt;
      timings.ollamaMs = now() - sentAt;
      const { parts, contentAt } = parseChatLines(chunks);
      const response = joinChat(parts);
      deadline.dispose();
      slot.release();
      settle(req.model, g.trial);
      report('chat', req.model, started, {
        outcome: 'success',
        queueWaitS: timings.queueMs / 1000,
        ...(contentAt !== undefined ? { ttftS: (contentAt - sentAt) / 1000 } : {}),
        ...metricsOf(response),
      });
      return { response, timings };
    } catch (err) {
      generationFailed(req.model, err, g);
      throw err;
    }
  }

  const forward = createForwarder({
    config,
    transport,
    circuit,
    admit(req, opts, call) {
      if (req.model === undefined) {
        circuit.assertAvailable();
        return admission.acquire(opts?.signal, opts?.ticket);
      }
      return admit(req.model, opts, call, req.load === 'gateway');
    },
    settle(req, call, { error, cancelled, sent }) {
      if (req.model === undefined) return;
      // An unload that went through leaves the model unloaded, whatever the table thought.
      if (req.load === 'unload' && error === undefined && !cancelled) loads.forget(req.model);
      // Before the client's request was sent, a failure is the gateway's own (its load of the
      // model), and counts as an agent run's does.
      else if (!sent) settle(req.model, call.trial, error, cancelled);
      else settle(req.model, call.trial, error, cancelled, { tableLoad: req.load === 'gateway' });
    },
    shouldRetry,
    now,
    clock,
    random: options.random,
  });

  return {
    forward,
    chat,
    chatStream,

    version: (opts) => simple(opts, false, 'read', async (c) => (await c.version()).version),
    list: (opts) => simple(opts, false, 'read', (c) => c.list()),
    show: (model, opts) => simple(opts, true, 'read', (c) => c.show({ model })),
    ps: (opts) => simple(opts, false, 'read', (c) => c.ps()),

    async preload(model, keepAlive, opts) {
      try {
        const waited = await loads.ensure(
          model,
          keepAlive ?? config.OLLAMA_KEEP_ALIVE,
          opts?.signal,
        );
        modelCircuits.record(model);
        return waited;
      } catch (err) {
        if (!opts?.signal?.aborted) modelCircuits.record(model, err);
        throw err;
      }
    },

    async unload(model, opts) {
      const started = now();
      try {
        loads.forget(model);
        await emptyRequest(model, 0, opts, 'unload');
        report('unload', model, started, { outcome: 'success' });
      } catch (err) {
        report('unload', model, started, { outcome: outcomeOf(err, opts?.signal?.aborted) });
        throw err;
      }
    },

    pull(model, opts) {
      return pullStream(model, opts);
    },

    async delete(model, opts) {
      await simple(opts, true, 'none', (c) => c.delete({ model }));
    },

    circuitState: () => circuit.state(),
    failingModels: () => modelCircuits.failing(),
    loading: () => loads.loading(),
    queueStats: () => admission.stats(),
    onCircuitChange: (listener) => circuit.onChange(listener),
    async close() {
      loads.close();
      circuit.close();
      await transport.close();
    },
  };

  /**
   * Pull progress as Ollama streams it. Between progress lines Ollama may go quiet for long
   * (verifying a multi-GB digest), so the idle limit here is the whole-call OLLAMA_TIMEOUT_MS.
   */
  async function* pullStream(model: string, opts: CallOptions | undefined) {
    const started = now();
    const deadline = new CallDeadline(opts?.signal, clock);
    const idle = (): void => deadline.arm('idle', config.OLLAMA_TIMEOUT_MS);
    deadline.arm('first_byte', config.OLLAMA_FIRST_BYTE_TIMEOUT_MS);
    let outcomeErr: unknown;
    let ok = false;
    try {
      const source = await execute({
        deadline,
        modelScoped: true,
        retry: 'none',
        probe: { onProgress: idle },
        run: ({ client }) => client.pull({ model, stream: true }),
      });
      try {
        for await (const progress of source) yield progress;
      } catch (err) {
        throw deadline.explain(err) ?? pullError(err);
      } finally {
        source.abort();
      }
      ok = true;
    } catch (err) {
      outcomeErr = err;
      throw err;
    } finally {
      deadline.dispose();
      report('pull', model, started, {
        outcome: ok
          ? 'success'
          : outcomeOf(outcomeErr, deadline.cancelled || outcomeErr === undefined),
      });
    }
  }
}
