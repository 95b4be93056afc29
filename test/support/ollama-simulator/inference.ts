import { qualifiedName } from './catalog';
import type { InstalledModel } from './catalog';
import { checkCloud, cloudModel } from './cloud';
import type { RouteContext, SimCore } from './core';
import { HttpError } from './http-io';
import { parseKeepAlive } from './keep-alive';
import { crashText } from './model-failures';
import { INVALID_NAME, parseModelName, parseModelRef } from './names';
import type { Lease } from './scheduler';
import { planReply, promptTokens } from './replies';
import type { ReplyPlan } from './replies';
import { runnerOptionsOf } from './runner-options';
import type { RunnerOptions } from './runner-options';
import type { SimScriptedReply } from './types';

export type InferenceKind = 'chat' | 'generate';

/** A validated chat/generate request, in the order Ollama's handlers check things. */
export interface InferenceRequest {
  sentName: string;
  model: InstalledModel;
  /** Served remotely (an explicit cloud name or an installed stub): never loaded here. */
  cloud: boolean;
  /** An installed cloud stub: answers carry remote_model / remote_host. */
  stub: boolean;
  keepAliveMs: number | undefined;
  stream: boolean;
  thinkingOn: boolean;
  format: unknown;
  runner: RunnerOptions;
  /** `truncate` (absent = true): drop the oldest messages to fit, or refuse (§4.6). */
  truncate: boolean;
  /** Whether tools were sent (non-streamed answers collect tool calls only then, §1.7). */
  tools: boolean;
}

const THINK_LEVELS = ['high', 'medium', 'low', 'max'];

/**
 * `think` as Ollama's ThinkValue decodes it (§4.5): true/false or "low"/"medium"/"high"/"max";
 * anything else is a 400 at decode time. The text after "string" in the second message is
 * unconfirmed.
 */
function thinkOf(value: unknown): boolean | string | undefined {
  if (value === undefined || value === null || typeof value === 'boolean') {
    return value ?? undefined;
  }
  if (typeof value === 'string') {
    if (THINK_LEVELS.includes(value)) return value;
    throw new HttpError(
      400,
      `invalid think value: "${value}" (must be "high", "medium", "low", "max", true, or false)`,
    );
  }
  throw new HttpError(
    400,
    'think must be a boolean or string ("high", "medium", "low", "max", true, or false)',
  );
}

/**
 * Messages as Go decodes `api.Message`: tool calls carry object arguments and an integer
 * `function.index`; `tool_call_id` and `tool_name` are accepted on tool results. The decode
 * error texts are Go's pattern (exact text unconfirmed).
 */
function checkMessages(messages: unknown): void {
  if (messages === undefined || messages === null) return;
  if (!Array.isArray(messages)) {
    throw new HttpError(400, 'json: cannot unmarshal value into Go struct field .messages');
  }
  for (const message of messages as Array<Record<string, unknown> | null>) {
    const calls = message?.tool_calls;
    if (calls === undefined || calls === null) continue;
    if (!Array.isArray(calls)) {
      throw new HttpError(400, 'json: cannot unmarshal value into Go struct field .tool_calls');
    }
    for (const call of calls as Array<{ function?: Record<string, unknown> } | null>) {
      const fn = call?.function;
      const args = fn?.arguments;
      if (
        args !== undefined &&
        (typeof args !== 'object' || args === null || Array.isArray(args))
      ) {
        throw new HttpError(
          400,
          `json: cannot unmarshal ${typeof args} into Go struct field ToolCallFunction.messages.tool_calls.function.arguments`,
        );
      }
      const index = fn?.index;
      if (index !== undefined && !Number.isInteger(index)) {
        throw new HttpError(
          400,
          'json: cannot unmarshal value into Go struct field ToolCallFunction.messages.tool_calls.function.index of type int',
        );
      }
    }
  }
}

/**
 * Resolve a model name as Ollama does (§0.1, §1.13): source suffix (`:cloud`, `-cloud`,
 * `:local`; both → 400), then name validity (400 `invalid model name`), then the installed
 * model (case-insensitive, defaults applied). Explicit cloud names go to the cloud knob.
 */
export function resolveModel(
  core: SimCore,
  path: string,
  sentName: string,
  notFound: (name: string) => HttpError,
): { model: InstalledModel; cloud: boolean; stub: boolean } {
  const ref = parseModelRef(sentName);
  if (!parseModelName(ref.base)) throw new HttpError(400, INVALID_NAME);
  if (ref.source === 'cloud') {
    const model = cloudModel(ref.base);
    checkCloud(core, path, model, false);
    return { model, cloud: true, stub: false };
  }
  const model = core.catalog.find(ref.base);
  if (!model) throw notFound(sentName);
  if (model.remoteHost) {
    // An installed cloud stub: `:local` cannot run it; otherwise it runs remotely.
    if (ref.source === 'local') throw notFound(sentName);
    checkCloud(core, path, model, true);
    return { model, cloud: true, stub: true };
  }
  return { model, cloud: false, stub: false };
}

/**
 * Decode-time errors first (keep_alive, think, messages), then the name and the model
 * lookup, then capabilities: completion, tools (when tools are sent), thinking (when think
 * asks for it), then load-time option types (500, §1.6.1).
 */
export function validate(
  core: SimCore,
  kind: InferenceKind,
  body: Record<string, unknown>,
  path = kind === 'chat' ? '/api/chat' : '/api/generate',
): InferenceRequest {
  const keepAliveMs = parseKeepAlive(body.keep_alive);
  const think = thinkOf(body.think);
  if (kind === 'chat') checkMessages(body.messages);
  const sentName = typeof body.model === 'string' ? body.model : '';
  if (sentName === '') {
    if (kind === 'chat') throw new HttpError(400, 'model is required');
    throw new HttpError(404, "model '' not found");
  }
  const { model, cloud, stub } = resolveModel(
    core,
    path,
    sentName,
    (name) => new HttpError(404, `model '${name}' not found`),
  );
  const caps = model.capabilities;
  if (!caps.includes('completion')) {
    throw new HttpError(400, `"${sentName}" does not support ${kind}`);
  }
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  if (tools && !caps.includes('tools')) {
    throw new HttpError(400, `${qualifiedName(model.name)} does not support tools`);
  }
  const thinkRequested = think === true || typeof think === 'string';
  if (thinkRequested && !caps.includes('thinking')) {
    throw new HttpError(400, `"${sentName}" does not support thinking`);
  }
  return {
    sentName,
    model,
    cloud,
    stub,
    keepAliveMs,
    stream: body.stream !== false,
    thinkingOn: caps.includes('thinking') && think !== false,
    format: body.format,
    runner: runnerOptionsOf(body, model, core),
    truncate: body.truncate !== false,
    tools,
  };
}

/** Take the next script for the model; a scripted error is answered as an HTTP error. */
export function nextPlan(
  core: SimCore,
  request: InferenceRequest,
  texts: string[],
  evaluated?: number,
): ReplyPlan {
  // ollama-api.md §2.4: a `format` that is neither "json" nor a JSON object fails the
  // generation with a 500, once the model is loaded.
  const { format } = request;
  const formatOk =
    format === undefined ||
    format === null ||
    format === '' ||
    format === 'json' ||
    (typeof format === 'object' && !Array.isArray(format));
  if (!formatOk) {
    throw new HttpError(
      500,
      `invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object`,
    );
  }
  const script = core.knobs.nextScript(request.model.name);
  if (script && 'error' in script) throw new HttpError(script.status ?? 500, script.error);
  return planReply({
    scripted: script as SimScriptedReply | undefined,
    chunksPerReply: core.chunksPerReply,
    format: request.format,
    thinkingOn: request.thinkingOn,
    promptTokens: evaluated ?? promptTokens(texts),
    toolCallMode: request.model.toolCallMode,
  });
}

/**
 * Wait for the model (loading it first if needed) and, unless `slot` is false (a preload,
 * §3.1), a parallel slot; undefined when the client went away. A generation is recorded in
 * the generation log from its slot to its release. A cloud model is never loaded here.
 */
export async function lease(
  ctx: RouteContext,
  core: SimCore,
  request: InferenceRequest,
  slot = true,
): Promise<Lease | undefined> {
  const queuedAt = core.clock.now();
  const held: Lease = request.cloud
    ? { loadNs: 0, numCtx: request.runner.numCtx, release: () => undefined }
    : await core.scheduler.acquire(
        request.model,
        { keepAliveMs: request.keepAliveMs, runner: request.runner, slot },
        ctx.signal,
      );
  if (ctx.signal.aborted) {
    held.release();
    return undefined;
  }
  if (!slot) return held;
  const end = core.generations.start(ctx.id, ctx.path, request.model.name, queuedAt);
  return {
    ...held,
    release: () => {
      end();
      held.release();
    },
  };
}

/**
 * A runner crash configured with failModel (§2.4): before the first byte the request fails
 * 500 and the runner leaves the loaded table; with `afterChunks` the stream is cut by an
 * error line instead (the returned fault).
 */
export function runnerCrash(core: SimCore, request: InferenceRequest) {
  const failure = core.knobs.modelFailure(request.model.name);
  if (request.cloud || failure?.kind !== 'crash') return undefined;
  core.emit({ type: 'crash', model: request.model.name });
  if (failure.afterChunks === undefined) {
    core.scheduler.crash(request.model);
    throw new HttpError(500, crashText(failure, false));
  }
  return {
    kind: 'error' as const,
    afterChunks: failure.afterChunks,
    message: crashText(failure, true),
    onFire: () => core.scheduler.crash(request.model),
  };
}

/** The prompt-too-long refusal (§2.3, llm/llama_server.go:295-300). */
export const PROMPT_TOO_LONG =
  'the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length';

/**
 * The context check, with one word as one token. truncate on (default): the oldest messages
 * are dropped silently until the prompt fits, keeping system messages and the last one; if
 * that still does not fit and `shift` is off, 400 (§2.3, §4.6). truncate:false with a prompt
 * longer than num_ctx: 400 with the same text — what llama-server answers there is
 * unconfirmed in the note (§4.6); the simulator refuses rather than lose messages silently.
 * Returns the prompt tokens evaluated.
 */
export function fitContext(
  request: InferenceRequest,
  numCtx: number,
  messages: Array<{ role: string; text: string }>,
): number {
  const total = promptTokens(messages.map((m) => m.text));
  if (total <= numCtx) return total;
  if (!request.truncate) throw new HttpError(400, PROMPT_TOO_LONG);
  const kept = [...messages];
  const droppable = () => kept.findIndex((m, i) => m.role !== 'system' && i !== kept.length - 1);
  let remaining = total;
  for (let i = droppable(); remaining > numCtx && i !== -1; i = droppable()) {
    kept.splice(i, 1);
    remaining = promptTokens(kept.map((m) => m.text));
  }
  if (remaining > numCtx && !request.runner.shift) throw new HttpError(400, PROMPT_TOO_LONG);
  return Math.min(remaining, numCtx);
}

/** The final object's metrics, in nanoseconds; load_duration omitted when zero (omitempty). */
export function metrics(plan: ReplyPlan, loadNs: number, startedNs: bigint) {
  const promptNs = plan.promptEvalCount * 1_000_000;
  const evalNs = plan.evalCount * 10_000_000;
  const elapsed = Number(process.hrtime.bigint() - startedNs);
  const total = Math.max(elapsed, loadNs + promptNs + evalNs);
  return {
    total_duration: total,
    ...(loadNs > 0 ? { load_duration: loadNs } : {}),
    prompt_eval_count: plan.promptEvalCount,
    prompt_eval_duration: promptNs,
    eval_count: plan.evalCount,
    eval_duration: evalNs,
  };
}
