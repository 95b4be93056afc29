/**
 * The drop-in endpoints' one service: forwards an OpenAI-compatible (`/v1`) or Ollama-native
 * (`/api`) request to a backend as it is and hands the answer back as it arrives. It decides
 * which model may be used, and reports each generation to telemetry with its API, queue wait,
 * time to first chunk and the token counts read from the end of the answer (the only part of
 * a body it ever looks at).
 */
import { AppError, isAppError } from '../../src/errors';
import { modelKey } from '../../src/model-name';
import type { AdmissionTicket } from '../../src/principal';
import type { Forward, ForwardKind, CallTimings } from '../ollama';
import { loadOfRequest, outcomeOf } from '../ollama';
import type { InferenceApi, InferenceOperation, Telemetry } from '../metrics';
import { tokenCounts, TokenTail, withoutUsageEvent } from './usage';

export type CompatApi = Exclude<InferenceApi, 'agents'>;

/** One Ollama server (or anything that answers like one) the gateway can forward to. */
export interface InferenceBackend {
  forward: Forward;
}

/**
 * Where a request is forwarded. The Ollama service's backend set routes each request among its
 * backends by model and load, so composition hands that one set out for every model.
 */
export interface BackendRouter {
  pick(model: string | undefined): InferenceBackend;
}

/** A route of the drop-in APIs: where it goes upstream and what kind of call it is. */
export interface PassthroughRoute {
  api: CompatApi;
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  /** Ollama's path (the same as the gateway's). */
  path: string;
  kind: ForwardKind;
  /** Set for generations: the operation label of the inference metrics. */
  operation?: InferenceOperation;
  /** The body names a model, and a 404 means it is not installed. */
  modelScoped: boolean;
  /** Whether the answer streams when the body has no `stream` field (Ollama's default). */
  streamsByDefault: boolean;
}

/** What the router writes back: Ollama's status and content type, then its bytes. */
export interface PassthroughAnswer {
  status: number;
  contentType: string | null;
  streamed: boolean;
  chunks: AsyncIterable<Uint8Array>;
  timings: CallTimings;
}

export interface PassthroughOptions {
  backends: BackendRouter;
  telemetry: Telemetry;
  /** The active model (services/models). */
  activeModel: () => string;
  /** ALLOW_ANY_INSTALLED_MODEL: false serves the active model only. */
  allowAnyInstalledModel: boolean;
  now: () => number;
  /** Counts each generation's tokens for the caller's key id (services/usage). */
  usage?: {
    record(
      keyId: string,
      model: string,
      tokens: { promptTokens?: number; completionTokens?: number },
    ): void;
  };
}

export interface PassthroughService {
  /**
   * Forwards `body` along `route`. Rejects before any byte with the typed errors of the Ollama
   * service (MODEL_NOT_FOUND, QUEUE_FULL, QUEUE_TIMEOUT, OLLAMA_UNAVAILABLE, OLLAMA_BUSY,
   * OLLAMA_TIMEOUT, OLLAMA_UPSTREAM_ERROR), OLLAMA_BAD_REQUEST for a request Ollama refused
   * (400, with Ollama's reason), or the signal's reason; the chunks throw the same errors when
   * the answer breaks off. A generation's tokens are counted for `keyId` (the caller's key id).
   */
  forward(
    route: PassthroughRoute,
    body: Record<string, unknown> | undefined,
    signal: AbortSignal,
    ticket?: AdmissionTicket,
    keyId?: string,
  ): Promise<PassthroughAnswer>;
}

/** A 400 from Ollama is about the forwarded request: its reason is the caller's message. */
function clientFault(err: unknown): unknown {
  if (!isAppError(err) || err.code !== 'OLLAMA_BAD_REQUEST') return err;
  const details = err.details as { upstream_message?: string } | null;
  return new AppError('OLLAMA_BAD_REQUEST', details?.upstream_message || undefined, {
    cause: err,
    details: err.details,
  });
}

export function createPassthroughService(options: PassthroughOptions): PassthroughService {
  const { backends, telemetry, now } = options;

  const checkModel = (route: PassthroughRoute, model: string | undefined): void => {
    if (options.allowAnyInstalledModel || route.kind !== 'generation' || model === undefined) {
      return;
    }
    const active = options.activeModel();
    if (modelKey(model) === modelKey(active)) return;
    throw new AppError('MODEL_NOT_FOUND', 'This gateway serves only its active model.', {
      details: { model, active_model: active },
    });
  };

  return {
    async forward(route, body, signal, ticket, keyId) {
      const model = typeof body?.model === 'string' ? body.model : undefined;
      checkModel(route, model);
      const streamed = typeof body?.stream === 'boolean' ? body.stream : route.streamsByDefault;
      const usage = usageRequest(route, body, streamed);
      const started = now();
      const report = route.operation
        ? (fields: Parameters<Telemetry['inference']>[0]) => telemetry.inference(fields)
        : undefined;
      const event = (timings: CallTimings) => ({
        api: route.api,
        model: model ?? '',
        operation: route.operation ?? 'chat',
        durationS: (now() - started) / 1000,
        queueWaitS: timings.queueMs / 1000,
      });
      let upstream;
      try {
        upstream = await backends.pick(model).forward(
          {
            method: route.method,
            path: route.path,
            body: body === undefined ? undefined : JSON.stringify(usage?.body ?? body),
            kind: route.kind,
            streamed,
            modelScoped: route.modelScoped,
            ...(model !== undefined ? { model } : {}),
            ...(route.kind === 'generation' ? { load: loadOfRequest(body) } : {}),
          },
          { signal, route: { affinity: affinityOf(body, model) }, ...(ticket ? { ticket } : {}) },
        );
      } catch (err) {
        const cancelled = signal.aborted && !isAppError(err);
        report?.({ ...event({ queueMs: 0 }), outcome: outcomeOf(err, cancelled) });
        throw clientFault(err);
      }
      const answer = upstream;
      if (!report) {
        return { ...pick(answer), streamed, chunks: answer };
      }
      /**
       * The answer's chunks, metered: the time to the first one, the tokens from the tail, and
       * one report and one usage record however the answer ends (read to the end, failed, or
       * broken off by its reader). A plain iterator rather than an async generator: with a
       * generator here, each request's objects outlived a young collection (README,
       * Performance), and a generator costs several promises per chunk.
       */
      const measured = (): AsyncIterator<Uint8Array, undefined> => {
        // Asked of the answer at the first read, as a generator's `for await` would.
        let inner: AsyncIterator<Uint8Array> | undefined;
        const tail = new TokenTail();
        let ttftS: number | undefined;
        let over = false;
        const end = (ok: boolean, failure?: unknown): void => {
          over = true;
          const outcome = ok
            ? 'success'
            : outcomeOf(failure, failure === undefined || signal.aborted);
          const tokens = ok ? tokenCounts(tail.text()) : {};
          if (keyId !== undefined && model !== undefined) {
            options.usage?.record(keyId, model, tokens);
          }
          report({
            ...event(answer.timings),
            outcome,
            ...tokens,
            ...(ttftS !== undefined ? { ttftS } : {}),
          });
        };
        /** Closes the answer, as `for await` does when its loop ends early, then reports. */
        const close = async (failure?: unknown): Promise<void> => {
          over = true;
          try {
            await inner?.return?.();
          } catch (err) {
            end(false, failure ?? err);
            throw err;
          }
          end(false, failure);
        };
        return {
          async next() {
            if (over) return DONE;
            let result: IteratorResult<Uint8Array>;
            try {
              inner ??= answer[Symbol.asyncIterator]();
              result = await inner.next();
            } catch (err) {
              end(false, err);
              throw err;
            }
            if (result.done) {
              end(true);
              return DONE;
            }
            try {
              if (streamed && ttftS === undefined) {
                ttftS = (now() - started - answer.timings.queueMs) / 1000;
              }
              tail.push(result.value);
              return { done: false, value: usage ? withoutUsageEvent(result.value) : result.value };
            } catch (err) {
              // As `for await` does: this failure, not one of closing, is what the reader gets.
              await close(err).catch(() => undefined);
              throw err;
            }
          },
          async return() {
            // Never read: nothing was asked of the answer, nothing to report.
            if (!over && inner) await close();
            over = true;
            return DONE;
          },
          async throw(err?: unknown) {
            if (!over && inner) await close(err).catch(() => undefined);
            over = true;
            throw err;
          },
        };
      };
      const chunks = measured();
      return { ...pick(answer), streamed, chunks: { [Symbol.asyncIterator]: () => chunks } };
    },
  };
}

/**
 * A streamed OpenAI chat whose client did not ask for usage: Ollama is asked for it all the
 * same (so the tokens can be counted) and its usage event is taken out of the answer. Other
 * requests go as they are (undefined).
 */
function usageRequest(
  route: PassthroughRoute,
  body: Record<string, unknown> | undefined,
  streamed: boolean,
): { body: Record<string, unknown> } | undefined {
  if (!body || !streamed || route.path !== '/v1/chat/completions') return undefined;
  const options = body.stream_options as { include_usage?: unknown } | null | undefined;
  if (options?.include_usage === true) return undefined;
  return { body: { ...body, stream_options: { ...options, include_usage: true } } };
}

/**
 * The key that keeps a conversation on one backend (its prompt cache): the model and the
 * conversation's opening (the first two messages, or the start of the prompt), which every
 * later turn of the same conversation repeats.
 */
function affinityOf(body: Record<string, unknown> | undefined, model: string | undefined): string {
  const opening = Array.isArray(body?.messages)
    ? body.messages.slice(0, 2)
    : Array.isArray(body?.input)
      ? body.input.slice(0, 2)
      : typeof body?.prompt === 'string'
        ? body.prompt.slice(0, 512)
        : typeof body?.input === 'string'
          ? body.input.slice(0, 512)
          : '';
  return `${model ?? ''}\u0000${JSON.stringify(opening)}`;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

function pick(answer: Awaited<ReturnType<Forward>>) {
  return { status: answer.status, contentType: answer.contentType, timings: answer.timings };
}
