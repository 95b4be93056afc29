import { qualifiedName } from './catalog';
import type { InstalledModel } from './catalog';
import type { RouteContext, SimCore } from './core';
import { HttpError } from './http-io';
import { parseKeepAlive } from './keep-alive';
import type { Lease } from './scheduler';
import { planReply, promptTokens } from './replies';
import type { ReplyPlan } from './replies';
import type { SimScriptedReply } from './types';

export type InferenceKind = 'chat' | 'generate';

/** A validated chat/generate request, in the order Ollama's handlers check things. */
export interface InferenceRequest {
  sentName: string;
  model: InstalledModel;
  keepAliveMs: number | undefined;
  stream: boolean;
  thinkingOn: boolean;
  format: unknown;
  numCtx: number | undefined;
}

function numCtxOf(options: unknown): number | undefined {
  const value = (options as { num_ctx?: unknown } | undefined)?.num_ctx;
  return typeof value === 'number' && value > 0 ? value : undefined;
}

/**
 * Decode-time errors first (keep_alive), then the model lookup, then capabilities: completion,
 * tools (when tools are sent), thinking (when think is truthy).
 */
export function validate(
  core: SimCore,
  kind: InferenceKind,
  body: Record<string, unknown>,
): InferenceRequest {
  const keepAliveMs = parseKeepAlive(body.keep_alive);
  const sentName = typeof body.model === 'string' ? body.model : '';
  if (sentName === '') {
    if (kind === 'chat') throw new HttpError(400, 'model is required');
    throw new HttpError(404, "model '' not found");
  }
  const model = core.catalog.find(sentName);
  if (!model) throw new HttpError(404, `model '${sentName}' not found`);
  const caps = model.capabilities;
  if (!caps.includes('completion')) {
    throw new HttpError(400, `"${sentName}" does not support ${kind}`);
  }
  if (Array.isArray(body.tools) && body.tools.length > 0 && !caps.includes('tools')) {
    throw new HttpError(400, `${qualifiedName(model.name)} does not support tools`);
  }
  const think = body.think;
  const thinkRequested = think === true || (typeof think === 'string' && think !== '');
  if (thinkRequested && !caps.includes('thinking')) {
    throw new HttpError(400, `"${sentName}" does not support thinking`);
  }
  return {
    sentName,
    model,
    keepAliveMs,
    stream: body.stream !== false,
    thinkingOn: caps.includes('thinking') && think !== false,
    format: body.format,
    numCtx: numCtxOf(body.options),
  };
}

/** Take the next script for the model; a scripted error is answered as an HTTP error. */
export function nextPlan(core: SimCore, request: InferenceRequest, texts: string[]): ReplyPlan {
  const script = core.knobs.nextScript(request.model.name);
  if (script && 'error' in script) throw new HttpError(script.status ?? 500, script.error);
  return planReply({
    scripted: script as SimScriptedReply | undefined,
    chunksPerReply: core.chunksPerReply,
    format: request.format,
    thinkingOn: request.thinkingOn,
    promptTokens: promptTokens(texts),
  });
}

/** Wait for a slot (loading the model first if needed); undefined when the client went away. */
export async function lease(
  ctx: RouteContext,
  core: SimCore,
  request: InferenceRequest,
): Promise<Lease | undefined> {
  const held = await core.scheduler.acquire(
    request.model,
    request.keepAliveMs,
    ctx.signal,
    request.numCtx,
  );
  if (ctx.signal.aborted) {
    held.release();
    return undefined;
  }
  return held;
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
