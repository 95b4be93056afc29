import { stamp } from './core';
import type { Handler, RouteContext, SimCore } from './core';
import { sendJson } from './http-io';
import { fitContext, lease, metrics, nextPlan, runnerCrash, validate } from './inference';
import type { InferenceRequest } from './inference';
import type { ReplyPlan } from './replies';
import type { ChunkWriter } from './streams';

type Final = (doneReason: 'load' | 'unload') => Record<string, unknown>;

/**
 * Empty prompt / messages: load (or, with keep_alive 0, unload) and answer one JSON object,
 * never streamed, with no metrics. A preload takes no parallel slot (§3.1), and it owns the
 * load it triggers: closing it aborts the load (§3.5a).
 */
async function preload(ctx: RouteContext, core: SimCore, request: InferenceRequest, final: Final) {
  if (request.keepAliveMs === 0) {
    if (!request.cloud) core.scheduler.unloadSoon(request.model);
    return sendJson(ctx.res, 200, final('unload'));
  }
  const held = await lease(ctx, core, request, false);
  if (!held) return;
  held.release();
  sendJson(ctx.res, 200, final('load'));
}

/** An installed cloud stub's answers carry remote_model and remote_host (§1.13). */
function remoteFields(request: InferenceRequest) {
  const { model } = request;
  if (!request.stub || !model.remoteHost) return {};
  return { remote_model: model.remoteModel ?? model.name, remote_host: model.remoteHost };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Send the answer's chunks: thinking, content, then — after `silenceMs` on the clock, during
 * which nothing is written (§4.2) — the tool calls: each call in a done:false chunk on the
 * rendered path; on the native path nothing more, the calls ride on the final chunk.
 */
async function sendParts(
  writer: ChunkWriter,
  plan: ReplyPlan,
  chunk: (fields: Record<string, unknown>) => Record<string, unknown>,
  field: 'response' | 'content',
): Promise<boolean> {
  for (const thinking of plan.thinking) {
    if (!(await writer.send(chunk({ thinking })))) return false;
  }
  for (const part of plan.content) {
    if (!(await writer.send(chunk({ [field]: part })))) return false;
  }
  if (plan.silenceMs > 0 && !(await writer.silence(plan.silenceMs))) return false;
  if (plan.toolCalls.length === 0 || plan.toolCallMode === 'native') return true;
  return writer.send(chunk({ [field]: '', tool_calls: plan.toolCalls }));
}

// Stand-in for the token context Ollama returns on generate's final object (raw:false).
const CONTEXT = [128006, 882, 128007];

export const generate: Handler = async (ctx, core) => {
  const started = process.hrtime.bigint();
  const body = ctx.body();
  const request = validate(core, 'generate', body);
  const model = request.sentName;
  const prompt = text(body.prompt);
  if (prompt === '') {
    return preload(ctx, core, request, (done_reason) => ({
      model,
      created_at: stamp(core.now),
      response: '',
      done: true,
      done_reason,
    }));
  }
  const held = await lease(ctx, core, request);
  if (!held) return;
  const remote = remoteFields(request);
  try {
    const crash = runnerCrash(core, request);
    const system = text(body.system);
    const parts = [
      ...(system ? [{ role: 'system', text: system }] : []),
      { role: 'user', text: prompt },
    ];
    const evaluated = fitContext(request, held.numCtx, parts);
    const plan = nextPlan(core, request, [prompt, system], evaluated);
    const context = body.raw === true ? {} : { context: CONTEXT };
    const final = (response: string) => ({
      model,
      ...remote,
      created_at: stamp(core.now),
      response,
      done: true,
      done_reason: plan.doneReason,
      ...context,
      ...metrics(plan, held.loadNs, started),
    });
    // Non-streamed: generated chunk by chunk all the same, then answered as one object.
    const writer = ctx.stream(request.stream ? 'ndjson' : 'json', crash);
    const chunk = (fields: Record<string, unknown>) => ({
      model,
      ...remote,
      created_at: stamp(core.now),
      response: '',
      ...fields,
      done: false,
    });
    if (!(await sendParts(writer, { ...plan, toolCalls: [] }, chunk, 'response'))) return;
    if (request.stream) {
      await writer.send(final(''), true);
      return;
    }
    const thinking = plan.thinking.join('');
    const reply = final(plan.content.join(''));
    await writer.send(thinking ? { ...reply, thinking } : reply, true);
  } finally {
    held.release();
  }
};

interface ChatMessage {
  role?: unknown;
  content?: unknown;
}

export const chat: Handler = async (ctx, core) => {
  const started = process.hrtime.bigint();
  const body = ctx.body();
  const request = validate(core, 'chat', body);
  const model = request.sentName;
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  if (messages.length === 0) {
    return preload(ctx, core, request, (done_reason) => ({
      model,
      created_at: stamp(core.now),
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason,
    }));
  }
  const held = await lease(ctx, core, request);
  if (!held) return;
  const remote = remoteFields(request);
  try {
    const crash = runnerCrash(core, request);
    const parts = messages.map((m) => ({
      role: text((m as ChatMessage | null)?.role),
      text: text((m as ChatMessage | null)?.content),
    }));
    const evaluated = fitContext(request, held.numCtx, parts);
    const plan = nextPlan(
      core,
      request,
      parts.map((p) => p.text),
      evaluated,
    );
    const native = plan.toolCallMode === 'native' && plan.toolCalls.length > 0;
    const final = (message: Record<string, unknown>) => ({
      model,
      ...remote,
      created_at: stamp(core.now),
      message: { role: 'assistant', ...message },
      done: true,
      done_reason: plan.doneReason,
      ...metrics(plan, held.loadNs, started),
    });
    // Non-streamed: generated chunk by chunk all the same, then answered as one object.
    const writer = ctx.stream(request.stream ? 'ndjson' : 'json', crash);
    const chunk = (message: Record<string, unknown>) => ({
      model,
      ...remote,
      created_at: stamp(core.now),
      message: { role: 'assistant', content: '', ...message },
      done: false,
    });
    if (!(await sendParts(writer, plan, chunk, 'content'))) return;
    if (request.stream) {
      // Native mode (§4.2): the tool calls arrive only on this final done:true chunk.
      await writer.send(
        final({ content: '', ...(native ? { tool_calls: plan.toolCalls } : {}) }),
        true,
      );
      return;
    }
    const thinking = plan.thinking.join('');
    await writer.send(
      final({
        content: plan.content.join(''),
        ...(thinking ? { thinking } : {}),
        ...(plan.toolCalls.length > 0 ? { tool_calls: plan.toolCalls } : {}),
      }),
      true,
    );
  } finally {
    held.release();
  }
};
