import assert from 'node:assert/strict';
import request from 'supertest';
import type { AgentRun, ModelStep, ToolStep } from '../../services/agents/types';
import type { ToolDefinition } from '../../services/tools/types';
import { startAgentsHarness, storedEvents, type AgentsHarness } from '../support/agents-harness';

const MODEL = 'llama3.2:3b';
const call = (name: string, args: Record<string, unknown>) => ({
  function: { name, arguments: args },
});

/** The chat requests the simulator received, in order. */
function chats(h: AgentsHarness): Array<Record<string, unknown>> {
  return h.sim.requests
    .filter(
      (r) =>
        r.path === '/api/chat' && ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
    )
    .map((r) => r.body as Record<string, unknown>);
}

describe('POST /agents/run (answered) against the Ollama simulator', () => {
  let h: AgentsHarness;
  let release: () => void = () => undefined;
  let toolStarted: Promise<void> = Promise.resolve();
  // A test-only tool that waits until the test lets it finish, so the test can act between steps.
  const pause: ToolDefinition = {
    name: 'pause',
    description: 'Waits for the test.',
    parameters: { type: 'object', properties: {}, additionalProperties: false },
    idempotent: false,
    timeoutMs: 60_000,
    run: () =>
      new Promise((resolve) => {
        release = () => resolve({ ok: true });
        startedSignal();
      }),
  };
  let startedSignal: () => void = () => undefined;

  beforeEach(async () => {
    h = await startAgentsHarness({ extraTools: [pause] });
  });
  afterEach(() => h.close());

  const run = async (body: Record<string, unknown>): Promise<AgentRun> => {
    const res = await request(h.url).post('/agents/run').send(body).expect(200);
    assert.deepEqual(h.schemas.check('agent-run.response', res.body, 'response'), []);
    return res.body as AgentRun;
  };

  /** Starts a background run (its model steps stream from Ollama) and returns its record. */
  const startInBackground = async (body: Record<string, unknown>) => {
    const res = await request(h.url)
      .post('/agents/run')
      .send({ ...body, background: true })
      .expect(202);
    return await h.agents.service.find((res.body as AgentRun).id, undefined);
  };

  it('answers in one step', async () => {
    h.sim.script(MODEL, { content: 'Hello there.', promptEvalCount: 12, evalCount: 3 });
    const out = await run({ input: 'Say hello', metadata: { ticket: 'T-1' } });
    assert.equal(out.status, 'completed');
    assert.equal(out.stop_reason, 'end_turn');
    assert.equal(out.output.text, 'Hello there.');
    assert.equal(out.model, MODEL);
    assert.deepEqual(out.metadata, { ticket: 'T-1' });
    assert.deepEqual(
      out.output.messages.map((m) => m.role),
      ['system', 'user', 'assistant'],
    );
    assert.equal(out.steps.length, 1);
    const step = out.steps[0] as ModelStep;
    assert.equal(step.kind, 'model');
    assert.deepEqual(step.usage, { input_tokens: 12, output_tokens: 3 });
    assert.equal(step.ollama?.done_reason, 'stop');
    assert.deepEqual(
      { ...out.usage, wall_ms: 0 },
      {
        input_tokens: 12,
        output_tokens: 3,
        total_tokens: 15,
        model_calls: 1,
        tool_calls: 0,
        wall_ms: 0,
      },
    );
    const [sent] = chats(h);
    assert.equal(sent?.model, MODEL);
    assert.deepEqual(
      (sent?.tools as Array<{ function: { name: string } }>).map((t) => t.function.name),
      ['current_time', 'calculator'],
    );
  });

  it('streams from Ollama (for the idle deadline) and sends the answer as one message.delta', async () => {
    h.sim.script(MODEL, { chunks: ['one ', 'two ', 'three'] });
    const out = await run({ input: 'count' });
    assert.equal(out.output.text, 'one two three');
    assert.equal(chats(h)[0]?.stream, true);
    const events = await storedEvents(await h.agents.service.find(out.id, undefined));
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'run.created',
        'run.in_progress',
        'step.started',
        'message.delta',
        'step.completed',
        'run.completed',
      ],
    );
    assert.equal(events[3]?.data.text, 'one two three');
  });

  it('streams from Ollama, a delta per chunk, when someone may watch: background runs', async () => {
    h.sim.script(MODEL, { chunks: ['one ', 'two ', 'three'] });
    const record = await startInBackground({ input: 'count' });
    const out = await record.wait();
    assert.equal(out.output.text, 'one two three');
    assert.equal(chats(h)[0]?.stream, true);
    const deltas = (await storedEvents(record)).filter((e) => e.type === 'message.delta');
    assert.deepEqual(
      deltas.map((e) => e.data.text),
      ['one ', 'two ', 'three'],
    );
  });

  it('runs calculator then current_time and keeps a correct transcript and steps', async () => {
    h.sim.script(
      MODEL,
      { tool_calls: [call('calculator', { expression: '6 * 7' })] },
      { tool_calls: [call('current_time', { timezone: 'UTC' })] },
      { content: 'It is 42.' },
    );
    const out = await run({ input: 'What is 6*7 and what time is it?' });
    assert.equal(out.status, 'completed');
    assert.deepEqual(
      out.steps.map((s) => s.kind),
      ['model', 'tool', 'model', 'tool', 'model'],
    );
    const calc = out.steps[1] as ToolStep;
    assert.equal(calc.tool.name, 'calculator');
    assert.deepEqual(calc.tool.arguments, { expression: '6 * 7' });
    assert.equal(calc.tool.status, 'ok');
    assert.match(calc.tool.output_preview, /"result":42/);
    const time = out.steps[3] as ToolStep;
    assert.equal(time.tool.name, 'current_time');
    assert.match(time.tool.output_preview, /"timezone":"UTC"/);
    assert.equal(out.usage.tool_calls, 2);
    assert.equal(out.usage.model_calls, 3);
    const msgs = out.output.messages;
    assert.deepEqual(
      msgs.map((m) => m.role),
      ['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'assistant'],
    );
    assert.equal(msgs[2]?.tool_calls?.[0]?.function.name, 'calculator');
    assert.equal(msgs[3]?.tool_name, 'calculator');
    assert.deepEqual(JSON.parse(msgs[3]?.content ?? ''), { expression: '6 * 7', result: 42 });
    assert.equal(msgs[5]?.tool_name, 'current_time');
    assert.equal(msgs[6]?.content, 'It is 42.');
    // The telemetry hooks reached the metrics.
    const scrape = await h.metrics.registry.metrics();
    assert.match(
      scrape,
      /agent_runs_total\{agent="default",status="completed",stop_reason="end_turn"\} 1/,
    );
    assert.match(scrape, /agent_tool_calls_total\{tool="calculator",outcome="ok"\} 1/);
    assert.match(scrape, /agent_steps_total\{agent="default",kind="model"\} 3/);
    // What Ollama saw on the second call: the assistant's call and the tool result.
    const second = chats(h)[1]?.messages as Array<{ role: string; tool_name?: string }>;
    assert.deepEqual(
      second.slice(-2).map((m) => [m.role, m.tool_name]),
      [
        ['assistant', undefined],
        ['tool', 'calculator'],
      ],
    );
  });

  it('sends bad tool arguments back to the model, which corrects them', async () => {
    h.sim.script(
      MODEL,
      { tool_calls: [call('calculator', { expr: '1+1' })] },
      { tool_calls: [call('calculator', { expression: '1+1' })] },
      { content: '2' },
    );
    const out = await run({ input: '1+1?' });
    assert.equal(out.status, 'completed');
    const bad = out.steps[1] as ToolStep;
    assert.equal(bad.tool.status, 'rejected');
    assert.match(bad.tool.error ?? '', /arguments.expression is required/);
    assert.match(bad.tool.error ?? '', /arguments.expr is not an allowed property/);
    const toModel = (chats(h)[1]?.messages as Array<{ role: string; content: string }>).at(-1);
    assert.equal(toModel?.role, 'tool');
    assert.match(toModel?.content ?? '', /expression is required/);
    assert.equal((out.steps[3] as ToolStep).tool.status, 'ok');
  });

  it('ends incomplete/max_steps when the model keeps calling tools', async () => {
    h.sim.script(
      MODEL,
      { tool_calls: [call('calculator', { expression: '1' })] },
      { tool_calls: [call('calculator', { expression: '2' })] },
      { content: 'never reached' },
    );
    const out = await run({ input: 'loop', limits: { max_steps: 2 } });
    assert.equal(out.status, 'incomplete');
    assert.equal(out.stop_reason, 'max_steps');
    assert.equal(out.error?.code, 'max_steps');
    assert.equal(out.usage.model_calls, 2);
  });

  it('ends incomplete/max_tool_calls when the budget is exceeded', async () => {
    h.sim.script(MODEL, {
      tool_calls: [
        call('calculator', { expression: '1' }),
        call('calculator', { expression: '2' }),
      ],
    });
    const out = await run({ input: 'two calls', limits: { max_tool_calls: 1 } });
    assert.equal(out.status, 'incomplete');
    assert.equal(out.stop_reason, 'max_tool_calls');
  });

  it('ends incomplete/tool_loop on the same call repeated', async () => {
    const same = { tool_calls: [call('calculator', { expression: '2+2' })] };
    h.sim.script(MODEL, same, same, same, { content: 'never reached' });
    const out = await run({ input: 'loop', limits: { max_repeat_tool_call: 2 } });
    assert.equal(out.status, 'incomplete');
    assert.equal(out.stop_reason, 'tool_loop');
    assert.equal(out.usage.tool_calls, 2, 'the third identical call is not run');
    assert.equal(out.usage.model_calls, 3);
  });

  it('ends incomplete/timeout and aborts the Ollama request when the run deadline passes', async () => {
    await h.ollama.preload(MODEL); // a load in flight is the gateway's and is not aborted
    h.sim.hang(true);
    const arrived = h.sim.waitFor('request', (e) => e.path === '/api/chat');
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'slow', background: true, limits: { timeout_ms: 5000 } })
      .expect(202);
    await arrived;
    const aborted = h.sim.waitFor('request-closed');
    h.clock.advance(5000);
    const out = await (await h.agents.service.find((res.body as AgentRun).id, undefined)).wait();
    await aborted;
    assert.equal(out.status, 'incomplete');
    assert.equal(out.stop_reason, 'timeout');
    assert.equal(out.error?.retryable, true);
    h.sim.hang(false);
  });

  it('accepts a structured answer that is valid at once', async () => {
    h.sim.script(MODEL, { content: '{"answer": 42}' });
    const out = await run({
      input: 'JSON please',
      response_format: {
        type: 'json_schema',
        schema: {
          type: 'object',
          required: ['answer'],
          properties: { answer: { type: 'number' } },
        },
      },
    });
    assert.equal(out.status, 'completed');
    assert.deepEqual(out.output.json, { answer: 42 });
    assert.equal(out.steps.length, 1);
  });

  it('repairs an invalid structured answer with one call using format and no tools', async () => {
    const schema = {
      type: 'object',
      required: ['answer'],
      properties: { answer: { type: 'number' } },
    };
    h.sim.script(MODEL, { content: 'The answer is 42.' }, { content: '{"answer": 42}' });
    const out = await run({
      input: 'JSON please',
      response_format: { type: 'json_schema', schema },
    });
    assert.equal(out.status, 'completed');
    assert.deepEqual(out.output.json, { answer: 42 });
    assert.deepEqual(
      out.steps.map((s) => (s as ModelStep).purpose),
      ['loop', 'repair'],
    );
    const repair = chats(h)[1];
    assert.deepEqual(repair?.format, schema);
    assert.equal(repair?.tools, undefined);
  });

  it('ends incomplete/output_invalid when the repaired answer is still invalid', async () => {
    const schema = {
      type: 'object',
      required: ['answer'],
      properties: { answer: { type: 'number' } },
    };
    h.sim.script(MODEL, { content: 'no json' }, { content: '{"answer": "forty-two"}' });
    const out = await run({
      input: 'JSON please',
      response_format: { type: 'json_schema', schema },
    });
    assert.equal(out.status, 'incomplete');
    assert.equal(out.stop_reason, 'output_invalid');
    assert.deepEqual(out.error?.details, [
      { in: 'output', path: '/answer', message: 'must be number' },
    ]);
    assert.equal(out.output.json, undefined);
  });

  it('fails as ollama_unavailable when Ollama stops in the middle of a run', async () => {
    toolStarted = new Promise((resolve) => (startedSignal = resolve));
    h.sim.script(MODEL, { tool_calls: [call('pause', {})] });
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'go', background: true, agent: { tools: ['pause'] } })
      .expect(202);
    await toolStarted;
    await h.sim.stop();
    release();
    const out = await (await h.agents.service.find((res.body as AgentRun).id, undefined)).wait();
    assert.equal(out.status, 'failed');
    assert.equal(out.stop_reason, 'ollama_unavailable');
    assert.equal(out.error?.retryable, true);
    assert.equal(out.error?.step_index, 2);
  });

  it('ends a cancelled run at once, closing the tool step in flight, with nothing after the terminal event', async () => {
    toolStarted = new Promise((resolve) => (startedSignal = resolve));
    h.sim.script(MODEL, { tool_calls: [call('pause', {})] }, { content: 'never asked' });
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'go', background: true, agent: { tools: ['pause'] } })
      .expect(202);
    await toolStarted;
    const record = await h.agents.service.find((res.body as AgentRun).id, undefined);
    void record.cancel(); // the pause tool ignores its signal: the run does not wait for it
    assert.equal(record.run.status, 'cancelled', 'ended synchronously');
    const out = await record.wait();
    release(); // the abandoned tool finishes late: nothing of it is recorded
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(out.stop_reason, 'cancelled');
    assert.equal(out.error?.step_index, 1);
    const tool = out.steps[1] as ToolStep;
    assert.equal(tool.status, 'error');
    assert.equal(tool.tool.error, 'The run was cancelled.');
    assert.notEqual(tool.ended_at, null);
    const events = (await storedEvents(record)).map((e) => e.type);
    assert.deepEqual(events.slice(-2), ['tool_call.completed', 'run.cancelled']);
    assert.equal(events.filter((t) => t === 'tool_call.completed').length, 1);
    assert.equal(chats(h).length, 1, 'no model call after the cancel');
    assert.equal(out.output.messages.at(-1)?.role, 'assistant', 'no late tool result');
  });

  it('fails as model_error when the model runner fails in the middle of the answer', async () => {
    h.sim.script(MODEL, { content: 'one two three four' });
    // Non-streamed, Ollama answers the runner's failure as a 500 instead of the answer.
    h.sim.errorMidStream(1, 'model runner crashed');
    const out = await run({ input: 'talk' });
    assert.equal(out.status, 'failed');
    assert.equal(out.stop_reason, 'model_error');
    assert.equal(out.error?.step_index, 0);
    assert.doesNotMatch(JSON.stringify(out.error), /runner crashed/, 'upstream internals stay out');
    assert.equal(chats(h).length, 1, 'a generation Ollama answered is not run again');
  });

  it('fails as model_error on an error line in the middle of a streamed answer', async () => {
    h.sim.script(MODEL, { content: 'one two three four' });
    h.sim.errorMidStream(1, 'model runner crashed');
    const record = await startInBackground({ input: 'talk' });
    const out = await record.wait();
    assert.equal(out.status, 'failed');
    assert.equal(out.stop_reason, 'model_error');
    assert.equal(out.error?.step_index, 0);
    assert.doesNotMatch(JSON.stringify(out.error), /runner crashed/, 'upstream internals stay out');
    const deltas = (await storedEvents(record)).filter((e) => e.type === 'message.delta');
    assert.deepEqual(
      deltas.map((e) => e.data.text),
      ['one'],
      'the chunk before the error line was passed on',
    );
  });

  it('refuses bad requests with 400 and the field', async () => {
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'x', limits: { max_steps: 1000 }, extra: 1 })
      .expect(400);
    const paths = (res.body as { error: { details: Array<{ path: string }> } }).error.details.map(
      (d) => d.path,
    );
    assert.ok(paths.includes('/limits/max_steps'));
    assert.ok(paths.includes('/extra'));
    await request(h.url).post('/agents/run').send({ input: 'x', agent: 'nobody' }).expect(404);
    const inline = await request(h.url)
      .post('/agents/run')
      .send({ input: 'x', agent: { tools: ['shell'] } })
      .expect(400);
    assert.match(JSON.stringify(inline.body), /tool \\"shell\\" is not available/);
    await request(h.url).post('/agents/run').send({ input: 'x', model: '../etc' }).expect(400);
  });
});
