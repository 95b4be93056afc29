import { randomInt } from 'node:crypto';
import type { Handler } from './core';
import { HttpError, sendJson } from './http-io';
import { lease, nextPlan, validate } from './inference';
import type { WireToolCall } from './replies';

/** OpenAI's error envelope, typed by status as Ollama's middleware does. */
export function openaiError(status: number, message: string) {
  const type =
    status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error';
  return { error: { message, type, param: null, code: null } };
}

function formatOf(responseFormat: unknown): unknown {
  const rf = responseFormat as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === 'json_object') return 'json';
  if (rf?.type === 'json_schema') return rf.json_schema?.schema ?? 'json';
  return undefined;
}

/** `reasoning_effort` / `reasoning.effort` → think (§6.1): none → false, minimal → low, xhigh/ultra → max. */
const EFFORT: Record<string, boolean | string> = {
  none: false,
  minimal: 'low',
  low: 'low',
  medium: 'medium',
  high: 'high',
  max: 'max',
  xhigh: 'max',
  ultra: 'max',
};

function thinkOf(body: Record<string, unknown>): unknown {
  const reasoning = body.reasoning as { effort?: unknown } | undefined;
  const effort = body.reasoning_effort ?? reasoning?.effort;
  if (effort === undefined) return undefined;
  return typeof effort === 'string' && effort in EFFORT ? EFFORT[effort] : true;
}

function openaiToolCalls(calls: WireToolCall[]) {
  return calls.map((call) => ({
    id: call.id,
    index: call.function.index,
    type: 'function',
    function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments) },
  }));
}

/** POST /v1/chat/completions: non-streamed unless `stream:true`; SSE ending in [DONE]. */
export const chatCompletions: Handler = async (ctx, core) => {
  const body = ctx.body();
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  if (messages.length === 0) throw new HttpError(400, "[] is too short - 'messages'");
  const request = validate(
    core,
    'chat',
    {
      model: body.model,
      tools: body.tools,
      think: thinkOf(body),
      format: formatOf(body.response_format),
    },
    '/v1/chat/completions',
  );
  request.stream = body.stream === true;
  const held = await lease(ctx, core, request);
  if (!held) return;
  try {
    const texts = messages.map((m) => {
      const content = (m as { content?: unknown } | null)?.content;
      return typeof content === 'string' ? content : '';
    });
    const plan = nextPlan(core, request, texts);
    const base = {
      id: `chatcmpl-${randomInt(999)}`,
      created: Math.floor(core.now() / 1000),
      model: request.sentName,
      system_fingerprint: 'fp_ollama',
    };
    const toolCalls = openaiToolCalls(plan.toolCalls);
    const finish =
      toolCalls.length > 0 && plan.doneReason === 'stop' ? 'tool_calls' : plan.doneReason;
    const usage = {
      prompt_tokens: plan.promptEvalCount,
      completion_tokens: plan.evalCount,
      total_tokens: plan.promptEvalCount + plan.evalCount,
    };
    if (!request.stream) {
      const reasoning = plan.thinking.join('');
      const message = {
        role: 'assistant',
        content: plan.content.join(''),
        ...(reasoning ? { reasoning } : {}),
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
      };
      return sendJson(ctx.res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message, finish_reason: finish }],
        usage,
      });
    }
    const writer = ctx.stream('sse');
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    const deltas = [
      ...plan.thinking.map((reasoning) => ({ role: 'assistant', content: '', reasoning })),
      ...plan.content.map((content) => ({ role: 'assistant', content })),
      ...(toolCalls.length > 0 ? [{ role: 'assistant', content: '', tool_calls: toolCalls }] : []),
    ];
    for (const delta of deltas) {
      // Nothing is sent while the model generates its tool calls (§4.2).
      if ('tool_calls' in delta && plan.silenceMs > 0 && !(await writer.silence(plan.silenceMs))) {
        return;
      }
      if (!(await writer.send(chunk(delta)))) return;
    }
    const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)
      ?.include_usage;
    if (!includeUsage) return void (await writer.send(chunk({}, finish), true));
    if (!(await writer.send(chunk({}, finish)))) return;
    await writer.send({ ...base, object: 'chat.completion.chunk', choices: [], usage }, true);
  } finally {
    held.release();
  }
};
