import { stamp } from './core';
import type { Handler, RouteContext, SimCore } from './core';
import { sendJson } from './http-io';
import { lease, metrics, nextPlan, validate } from './inference';
import type { InferenceRequest } from './inference';

type Final = (doneReason: 'load' | 'unload') => Record<string, unknown>;

/**
 * Empty prompt / messages: load (or, with keep_alive 0, unload) and answer one JSON object,
 * never streamed, with no metrics (§3.1).
 */
async function preload(ctx: RouteContext, core: SimCore, request: InferenceRequest, final: Final) {
  if (request.keepAliveMs === 0) {
    core.scheduler.unloadSoon(request.model);
    return sendJson(ctx.res, 200, final('unload'));
  }
  const held = await lease(ctx, core, request);
  if (!held) return;
  held.release();
  sendJson(ctx.res, 200, final('load'));
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
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
  try {
    const plan = nextPlan(core, request, [prompt, text(body.system)]);
    const context = body.raw === true ? {} : { context: CONTEXT };
    const final = (response: string) => ({
      model,
      created_at: stamp(core.now),
      response,
      done: true,
      done_reason: plan.doneReason,
      ...context,
      ...metrics(plan, held.loadNs, started),
    });
    // Non-streamed: generated chunk by chunk all the same, then answered as one object.
    const writer = ctx.stream(request.stream ? 'ndjson' : 'json');
    const chunk = (fields: Record<string, unknown>) => ({
      model,
      created_at: stamp(core.now),
      response: '',
      ...fields,
      done: false,
    });
    for (const thinking of plan.thinking) {
      if (!(await writer.send(chunk({ thinking })))) return;
    }
    for (const response of plan.content) {
      if (!(await writer.send(chunk({ response })))) return;
    }
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
  try {
    const texts = messages.map((m) => text((m as { content?: unknown } | null)?.content));
    const plan = nextPlan(core, request, texts);
    const final = (message: Record<string, unknown>) => ({
      model,
      created_at: stamp(core.now),
      message: { role: 'assistant', ...message },
      done: true,
      done_reason: plan.doneReason,
      ...metrics(plan, held.loadNs, started),
    });
    // Non-streamed: generated chunk by chunk all the same, then answered as one object.
    const writer = ctx.stream(request.stream ? 'ndjson' : 'json');
    const chunk = (message: Record<string, unknown>) => ({
      model,
      created_at: stamp(core.now),
      message: { role: 'assistant', content: '', ...message },
      done: false,
    });
    for (const thinking of plan.thinking) {
      if (!(await writer.send(chunk({ thinking })))) return;
    }
    for (const content of plan.content) {
      if (!(await writer.send(chunk({ content })))) return;
    }
    if (plan.toolCalls.length > 0 && !(await writer.send(chunk({ tool_calls: plan.toolCalls })))) {
      return;
    }
    if (request.stream) {
      await writer.send(final({ content: '' }), true);
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
