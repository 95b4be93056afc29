import { runnerOptionsOf } from './runner-options';
import { randomInt } from 'node:crypto';
import type { Handler, RouteContext, SimCore } from './core';
import { HttpError, sendJson } from './http-io';
import { lease, nextPlan, validate } from './inference';
import { embedding } from './routes-embed-pull';
import { promptTokens } from './replies';

/**
 * Ollama's other `/v1` routes (§6.2, 6.4–6.6 of the note) and the legacy `/api/embeddings`:
 * each validated by the native handler it wraps, so the native errors (404 unknown model,
 * 400 capabilities) come back as they would from Ollama.
 */

/** POST /v1/completions: `prompt` a string; SSE chunks with `finish_reason` on the last one. */
export const completions: Handler = async (ctx, core) => {
  const body = ctx.body();
  if (body.prompt !== undefined && typeof body.prompt !== 'string') {
    throw new HttpError(400, 'invalid type for prompt');
  }
  const request = validate(core, 'generate', { model: body.model });
  request.stream = body.stream === true;
  const held = await lease(ctx, core, request);
  if (!held) return;
  try {
    const plan = nextPlan(core, request, [String(body.prompt ?? '')]);
    const base = {
      id: `cmpl-${randomInt(999)}`,
      model: request.sentName,
      system_fingerprint: 'fp_ollama',
    };
    const created = () => Math.floor(core.now() / 1000);
    const usage = {
      prompt_tokens: plan.promptEvalCount,
      completion_tokens: plan.evalCount,
      total_tokens: plan.promptEvalCount + plan.evalCount,
    };
    if (!request.stream) {
      const choice = { text: plan.content.join(''), index: 0, finish_reason: plan.doneReason };
      return sendJson(ctx.res, 200, {
        ...base,
        object: 'text_completion',
        created: created(),
        choices: [choice],
        usage,
      });
    }
    const writer = ctx.stream('sse');
    const includeUsage =
      (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const zero = includeUsage
      ? { usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } }
      : {};
    const texts = plan.content.length > 0 ? plan.content : [''];
    for (const [i, text] of texts.entries()) {
      const last = i === texts.length - 1;
      const choice = { text, index: 0, finish_reason: last ? plan.doneReason : null };
      const chunk = {
        ...base,
        object: 'text_completion',
        created: created(),
        choices: [choice],
        ...zero,
      };
      if (!(await writer.send(chunk, last && !includeUsage))) return;
    }
    if (includeUsage) {
      await writer.send(
        { ...base, object: 'text_completion', created: created(), choices: [], usage },
        true,
      );
    }
  } finally {
    held.release();
  }
};

/**
 * The embedding handlers' model lookup and load (Ollama's scheduler loads the model before it
 * embeds); undefined when the client went away meanwhile.
 */
async function loadForEmbedding(ctx: RouteContext, core: SimCore, body: Record<string, unknown>) {
  const name = typeof body.model === 'string' ? body.model : '';
  const model = core.catalog.find(name);
  if (!model) throw new HttpError(404, `model "${name}" not found, try pulling it first`);
  const held = await core.scheduler.acquire(
    model,
    { keepAliveMs: undefined, runner: runnerOptionsOf(body, model, core), slot: false },
    ctx.signal,
  );
  held.release();
  return ctx.signal.aborted ? undefined : { name, model };
}

/** POST /v1/embeddings: `input` string or string[]; `[]` or missing is 400 `invalid input`. */
export const embeddings: Handler = async (ctx, core) => {
  const body = ctx.body();
  const input = body.input;
  const inputs = typeof input === 'string' ? [input] : Array.isArray(input) ? input : [];
  if (inputs.length === 0) throw new HttpError(400, 'invalid input');
  if (!inputs.every((s) => typeof s === 'string')) throw new HttpError(400, 'invalid input type');
  const loaded = await loadForEmbedding(ctx, core, body);
  if (!loaded) return;
  const { name, model } = loaded;
  const tokens = promptTokens(inputs as string[]);
  sendJson(ctx.res, 200, {
    object: 'list',
    data: (inputs as string[]).map((text, index) => ({
      object: 'embedding',
      embedding: embedding(text, model.embeddingLength),
      index,
    })),
    model: name,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
};

/** GET /v1/models/{model}: one model, `id` as given; unknown → 404. */
export const openaiModel: Handler = (ctx, core) => {
  const id = decodeURIComponent(ctx.path.slice('/v1/models/'.length));
  const model = core.catalog.find(id);
  if (!model) throw new HttpError(404, `model '${id}' not found`);
  const owner = id.includes('/') ? (id.split('/').at(-2) ?? 'library') : 'library';
  const created = Math.floor(model.modifiedAt.getTime() / 1000);
  sendJson(ctx.res, 200, { id, object: 'model', created, owned_by: owner }, 'application/json');
};

/** POST /v1/responses (stateless): a `response` object, or named SSE events without [DONE]. */
export const responses: Handler = async (ctx, core) => {
  const body = ctx.body();
  const input = body.input;
  const texts = typeof input === 'string' ? [input] : [JSON.stringify(input ?? '')];
  const request = validate(core, 'chat', { model: body.model, tools: body.tools });
  request.stream = body.stream === true;
  const held = await lease(ctx, core, request);
  if (!held) return;
  try {
    const plan = nextPlan(core, request, texts);
    const id = `resp_${randomInt(999_999)}`;
    const text = plan.content.join('');
    const usage = {
      input_tokens: plan.promptEvalCount,
      output_tokens: plan.evalCount,
      total_tokens: plan.promptEvalCount + plan.evalCount,
    };
    const item = {
      id: `msg_${randomInt(999_999)}`,
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [] }],
    };
    const response = (status: string, done: boolean) => ({
      id,
      object: 'response',
      created_at: Math.floor(core.now() / 1000),
      status,
      model: request.sentName,
      output: done ? [item] : [],
      previous_response_id: null,
      store: false,
      ...(done ? { usage } : {}),
    });
    if (!request.stream) return sendJson(ctx.res, 200, response('completed', true));
    ctx.res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    let seq = 0;
    const event = (type: string, data: Record<string, unknown>) =>
      ctx.res.write(
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`,
      );
    event('response.created', { response: response('in_progress', false) });
    for (const delta of plan.content) {
      if (ctx.signal.aborted) return;
      event('response.output_text.delta', {
        item_id: item.id,
        output_index: 0,
        content_index: 0,
        delta,
      });
    }
    event('response.completed', { response: response('completed', true) });
    ctx.res.end();
  } finally {
    held.release();
  }
};

/** POST /api/embeddings (legacy): `prompt` → one vector, `{"embedding":[…]}`. */
export const legacyEmbeddings: Handler = async (ctx, core) => {
  const body = ctx.body();
  const loaded = await loadForEmbedding(ctx, core, body);
  if (!loaded) return;
  const prompt = typeof body.prompt === 'string' ? body.prompt : '';
  sendJson(ctx.res, 200, {
    embedding: prompt === '' ? [] : embedding(prompt, loaded.model.embeddingLength),
  });
};
