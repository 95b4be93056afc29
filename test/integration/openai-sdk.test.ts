import assert from 'node:assert/strict';
import OpenAI, { AuthenticationError, NotFoundError, RateLimitError } from 'openai';
import { buildTestApp, type RunningApp } from '../support/build-app';
import { useListeningApp } from '../support/compat-app';
import { parseExposition, seriesKey as k } from '../support/exposition';
import { AGENT_KEY, TEST_API_KEYS } from '../support/security';

const MODEL = 'llama3.2:3b';

/** The official SDK pointed at the gateway, as a user would configure it. */
function client(running: RunningApp, apiKey = AGENT_KEY): OpenAI {
  return new OpenAI({ baseURL: `${running.url}/v1`, apiKey, maxRetries: 0 });
}

describe('the openai SDK against /v1', () => {
  const app = useListeningApp();

  it('chat.completions.create answers with the scripted text and usage', async () => {
    app.t.sim!.script(MODEL, { content: 'Hello from Ollama', promptEvalCount: 7, evalCount: 3 });
    const answer = await client(app.running).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(answer.object, 'chat.completion');
    assert.equal(answer.choices[0]?.message.content, 'Hello from Ollama');
    assert.deepEqual(answer.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    const forwarded = app.t.sim!.requests.at(-1)!;
    assert.equal(forwarded.path, '/v1/chat/completions');
    assert.equal(forwarded.headers.authorization, undefined, 'the key is not passed to Ollama');
  });

  it('streams with for await, and counts tokens and TTFT under api="openai"', async () => {
    app.t.sim!.script(MODEL, {
      chunks: ['one ', 'two ', 'three'],
      promptEvalCount: 5,
      evalCount: 3,
    });
    const stream = await client(app.running).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'count' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'one two three');
    assert.equal(usage?.completion_tokens, 3);
    const s = parseExposition(await (await fetch(`${app.running.url}/metrics`)).text());
    const labels = { api: 'openai', model: MODEL };
    assert.equal(s.get(k('inference_tokens_total', { ...labels, kind: 'completion' })), 3);
    assert.equal(s.get(k('inference_tokens_total', { ...labels, kind: 'prompt' })), 5);
    assert.equal(s.get(k('inference_time_to_first_token_seconds_count', labels)), 1);
    assert.equal(s.get(k('inference_queue_wait_seconds_count', { api: 'openai' })), 1);
    const outcome = { ...labels, operation: 'chat', outcome: 'success' };
    assert.equal(s.get(k('inference_requests_total', outcome)), 1);
  });

  it('counts the tokens of a stream whose client did not ask for usage, and sends it none', async () => {
    app.t.sim!.script(MODEL, { chunks: ['x ', 'y'], promptEvalCount: 4, evalCount: 2 });
    const stream = await client(app.running).chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'go' }],
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'x y');
    assert.ok(chunks.every((c) => c.usage === undefined && c.choices.length === 1));
    const sent = app.t.sim!.requests.at(-1)!.body as { stream_options?: unknown };
    assert.deepEqual(sent.stream_options, { include_usage: true });
    const s = parseExposition(await (await fetch(`${app.running.url}/metrics`)).text());
    const labels = { api: 'openai', model: MODEL };
    assert.equal(s.get(k('inference_tokens_total', { ...labels, kind: 'completion' })), 2);
    assert.equal(s.get(k('inference_tokens_total', { ...labels, kind: 'prompt' })), 4);
  });

  it('makes a tool call round trip (tools and tool_choice passed through)', async () => {
    app.t.sim!.script(
      MODEL,
      { tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Oslo' } } }] },
      { content: 'It is sunny in Oslo.' },
    );
    const openai = client(app.running);
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Weather in Oslo?' },
    ];
    const first = await openai.chat.completions.create({
      model: MODEL,
      messages,
      tools,
      tool_choice: 'auto',
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    assert.equal(first.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });
    messages.push(first.choices[0]!.message, {
      role: 'tool',
      tool_call_id: call.id,
      content: 'sunny',
    });
    const second = await openai.chat.completions.create({ model: MODEL, messages, tools });
    assert.equal(second.choices[0]?.message.content, 'It is sunny in Oslo.');
    assert.equal(
      (app.t.sim!.requests.at(-1)!.body as { tool_choice?: unknown }).tool_choice,
      undefined,
    );
    assert.equal(
      (app.t.sim!.requests.at(-2)!.body as { tool_choice?: unknown }).tool_choice,
      'auto',
    );
  });

  it('embeddings.create returns one vector per input', async () => {
    const res = await client(app.running).embeddings.create({
      model: 'nomic-embed-text',
      input: ['a', 'b'],
      encoding_format: 'float',
    });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]?.embedding.length, 768);
  });

  it('models.list() and models.retrieve() list the installed models', async () => {
    const ids: string[] = [];
    for await (const m of client(app.running).models.list()) ids.push(m.id);
    assert.ok(ids.includes(MODEL));
    const one = await client(app.running).models.retrieve(MODEL);
    assert.equal(one.id, MODEL);
  });

  it('completions and responses pass through', async () => {
    app.t.sim!.script(MODEL, { content: 'done' }, { content: 'resp' });
    const c = await client(app.running).completions.create({ model: MODEL, prompt: 'x' });
    assert.equal(c.choices[0]?.text, 'done');
    const r = await client(app.running).responses.create({ model: MODEL, input: 'y' });
    assert.equal(r.output_text, 'resp');
  });

  it('passes response_format on (JSON mode) and streams the Responses API as named events', async () => {
    const openai = client(app.running);
    const json = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'a JSON object please' }],
      response_format: { type: 'json_object' },
    });
    assert.equal(typeof JSON.parse(json.choices[0]?.message.content ?? ''), 'object');
    assert.deepEqual(
      (app.t.sim!.requests.at(-1)!.body as { response_format?: unknown }).response_format,
      { type: 'json_object' },
    );
    app.t.sim!.script(MODEL, { chunks: ['re', 'sp'] });
    const stream = await openai.responses.create({ model: MODEL, input: 'hi', stream: true });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(text, 'resp');
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
  });

  it('a model that is not installed raises NotFoundError with code MODEL_NOT_FOUND', async () => {
    await assert.rejects(
      client(app.running).chat.completions.create({
        model: 'nope:1b',
        messages: [{ role: 'user', content: 'x' }],
      }),
      (err: unknown) => err instanceof NotFoundError && err.code === 'MODEL_NOT_FOUND',
    );
  });

  it('a wrong key raises AuthenticationError (401, OpenAI shape)', async () => {
    const before = app.t.sim!.requests.length;
    await assert.rejects(
      client(app.running, 'not-a-key').models.list(),
      (err: unknown) =>
        err instanceof AuthenticationError &&
        err.code === 'UNAUTHENTICATED' &&
        err.type === 'authentication_error',
    );
    assert.equal(app.t.sim!.requests.length, before, 'nothing reached Ollama');
  });

  describe('when the drop-in budget is spent', () => {
    it('raises RateLimitError with code RATE_LIMITED', async () => {
      const limited = await buildTestApp({
        env: {
          API_KEYS: TEST_API_KEYS,
          RATE_LIMIT_COMPAT_PER_MINUTE: '2',
          RATE_LIMIT_PER_MINUTE: '1000',
        },
      });
      try {
        const r = await limited.listen();
        await client(r).models.list();
        await client(r).models.list();
        await assert.rejects(
          client(r).models.list(),
          (err: unknown) => err instanceof RateLimitError && err.code === 'RATE_LIMITED',
        );
        // The gateway's own API keeps its own budget.
        const own = await fetch(`${r.url}/ollama/models`, {
          headers: { authorization: `Bearer ${AGENT_KEY}` },
        });
        assert.equal(own.status, 200);
      } finally {
        await limited.close();
      }
    });
  });
});
