import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createMemoryRunRepository } from '../../services/agents/run-repository';
import type { AgentRun } from '../../services/agents/types';
import type { ToolDefinition } from '../../services/tools/types';
import {
  lookupOrder,
  parseSse,
  startAgentsHarness,
  type AgentsHarness,
} from '../support/agents-harness';
import { stillPending, until } from '../support/ollama-simulator/settle';

const MODEL = 'llama3.2:3b';
const HOOK_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

/**
 * A webhook receiver: records each delivery's event type and run status, and answers 200, or
 * with `hold`, holds its answers until the test calls `answer()` (a slow receiver, without a
 * clock).
 */
async function startReceiver(options: { hold?: boolean } = {}): Promise<{
  url: string;
  types: string[];
  /** For each delivery, how many earlier ones were still waiting for their answer. */
  heldAtArrival: number[];
  answer: () => void;
  server: Server;
}> {
  const types: string[] = [];
  const heldAtArrival: number[] = [];
  const held: ServerResponse[] = [];
  let answering = !options.hold;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const payload = JSON.parse(body) as { type: string; data: AgentRun };
      types.push(`${payload.type}:${payload.data.status}`);
      heldAtArrival.push(held.length);
      if (answering) res.end();
      else held.push(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    types,
    heldAtArrival,
    answer: () => {
      answering = true;
      for (const res of held.splice(0)) res.end();
    },
    server,
  };
}

const call = (name: string, args: Record<string, unknown>) => ({
  function: { name, arguments: args },
});

/** Reads an event-stream body as text (supertest buffers only what it knows). */
const sseText = (res: request.Response, cb: (err: Error | null, body: string) => void): void => {
  const stream = res as unknown as NodeJS.ReadableStream;
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (text += c));
  stream.on('end', () => cb(null, text));
};

/** The chat requests the simulator received, in order. */
function chats(h: AgentsHarness): Array<Record<string, unknown>> {
  return h.sim.requests
    .filter(
      (r) =>
        r.path === '/api/chat' && ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
    )
    .map((r) => r.body as Record<string, unknown>);
}

type Msg = { role: string; content: string; tool_call_id?: string };
const lastChat = (
  h: AgentsHarness,
): { messages: Msg[]; tools?: Array<{ function: { name: string } }> } =>
  chats(h).at(-1) as { messages: Msg[]; tools?: Array<{ function: { name: string } }> };

describe('client tools, approvals and resume (two replicas sharing one run repository)', () => {
  let a: AgentsHarness;
  let b: AgentsHarness;
  let release: () => void = () => undefined;
  let toolStarted = false;
  // A server tool that waits until the test lets it finish.
  const pause: ToolDefinition = {
    name: 'pause',
    description: 'Waits for the test.',
    parameters: { type: 'object', properties: {}, additionalProperties: false },
    idempotent: false,
    timeoutMs: 600_000,
    run: () =>
      new Promise((resolve) => {
        toolStarted = true;
        release = () => resolve({ ok: true });
      }),
  };

  beforeEach(async () => {
    // The in-memory repository shared by two gateways: what the Redis repository is across
    // processes (the Redis variant of these tests comes with that repository).
    const runs = createMemoryRunRepository({ max: 100, ttlMs: 3_600_000, now: Date.now });
    toolStarted = false;
    const env = { WEBHOOK_SECRET: HOOK_SECRET, WEBHOOK_ALLOWLIST: '127.0.0.1' };
    a = await startAgentsHarness({ runs, env, extraTools: [pause] });
    b = await startAgentsHarness({ runs, env, simulator: a.sim, extraTools: [pause] });
  });
  afterEach(async () => {
    release();
    await b.close();
    await a.close();
  });

  const valid = (h: AgentsHarness, body: unknown): void =>
    assert.deepEqual(h.schemas.check('agent-run.response', body, 'response'), []);

  /** An answered run through `h` that pauses for lookup_order; returns the paused run. */
  const pausedRun = async (h: AgentsHarness, extra: Record<string, unknown> = {}) => {
    h.sim.script(MODEL, { tool_calls: [call('lookup_order', { order_id: '1234' })] });
    const res = await request(h.url)
      .post('/agents/run')
      .send({ input: 'Where is order 1234?', tools: [lookupOrder], ...extra })
      .expect(200);
    const run = res.body as AgentRun;
    valid(h, run);
    return run;
  };

  it('pauses an answered run for a client tool and finishes it through the other replica', async () => {
    const paused = await pausedRun(a);
    assert.equal(paused.status, 'requires_action');
    assert.equal(paused.stop_reason, null);
    assert.equal(paused.required_action?.type, 'submit_tool_outputs');
    const [pending] = paused.required_action?.tool_calls ?? [];
    assert.deepEqual(
      { name: pending?.name, arguments: pending?.arguments, type: pending?.type },
      { name: 'lookup_order', arguments: { order_id: '1234' }, type: 'client' },
    );
    // The client tool was offered to the model with its schema.
    assert.deepEqual(
      lastChat(a).tools?.map((t) => t.function.name),
      ['current_time', 'calculator', 'lookup_order'],
    );
    // Any replica shows the paused run.
    const shown = await request(b.url).get(`/agents/runs/${paused.id}`).expect(200);
    assert.equal((shown.body as AgentRun).status, 'requires_action');

    a.sim.script(MODEL, { content: 'Order 1234 has shipped.' });
    const res = await request(b.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [{ tool_call_id: pending?.id, output: '{"status":"shipped"}' }] })
      .expect(200);
    const done = res.body as AgentRun;
    valid(b, done);
    assert.equal(done.status, 'completed');
    assert.equal(done.output.text, 'Order 1234 has shipped.');
    assert.equal(done.required_action, null);
    assert.equal(done.usage.model_calls, 2);
    assert.equal(done.usage.tool_calls, 1);
    // The model saw the output as the call's result.
    const tool = lastChat(a).messages.find((m) => m.role === 'tool');
    assert.deepEqual(tool && { content: tool.content, id: tool.tool_call_id }, {
      content: '{"status":"shipped"}',
      id: pending?.id,
    });
    // The pause was taken: answering it again is a conflict, through either replica.
    const again = await request(a.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [{ tool_call_id: pending?.id, output: 'x' }] })
      .expect(409);
    assert.equal((again.body as { error: { code: string } }).error.code, 'RUN_NOT_PAUSED');
  });

  it('answers outputs for a wrong call id with 409 and a missing output with 400, and stays paused', async () => {
    const paused = await pausedRun(a);
    const id = paused.required_action?.tool_calls[0]?.id ?? '';
    const wrong = await request(b.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({
        tool_outputs: [
          { tool_call_id: id, output: 'ok' },
          { tool_call_id: 'call_unknown', output: 'x' },
        ],
      })
      .expect(409);
    const conflict = (
      wrong.body as { error: { code: string; details: { tool_call_ids: string[] } } }
    ).error;
    assert.equal(conflict.code, 'TOOL_CALL_CONFLICT');
    assert.deepEqual(conflict.details.tool_call_ids, ['call_unknown']);
    const missing = await request(b.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [] })
      .expect(400);
    assert.match(
      JSON.stringify(missing.body),
      new RegExp(`output of tool call ${id} \\(lookup_order\\)`),
    );
    // An unknown run, and someone else's, are 404.
    await request(b.url)
      .post('/agents/runs/run_00000000000000000000/resume')
      .send({ tool_outputs: [] })
      .expect(404);
    // Still paused: the right answer resumes it.
    a.sim.script(MODEL, { content: 'Done.' });
    const res = await request(a.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [{ tool_call_id: id, output: 'ok' }] })
      .expect(200);
    assert.equal((res.body as AgentRun).status, 'completed');
  });

  it('lets exactly one of two concurrent resumes of one pause win', async () => {
    const paused = await pausedRun(a);
    const id = paused.required_action?.tool_calls[0]?.id ?? '';
    a.sim.script(MODEL, { content: 'Once.' });
    const body = { tool_outputs: [{ tool_call_id: id, output: 'ok' }] };
    const [x, y] = await Promise.all([
      request(a.url).post(`/agents/runs/${paused.id}/resume`).send(body),
      request(b.url).post(`/agents/runs/${paused.id}/resume`).send(body),
    ]);
    assert.deepEqual([x.status, y.status].sort(), [200, 409]);
    assert.equal(chats(a).length, 2, 'the model was called once after the pause');
  });

  it('streams a run to its pause, and the resume streams the rest through the other replica', async () => {
    a.sim.script(MODEL, { tool_calls: [call('lookup_order', { order_id: '9' })] });
    const first = await request(a.url)
      .post('/agents/run')
      .send({ input: 'Where is order 9?', tools: [lookupOrder], stream: true })
      .buffer(true)
      .parse(sseText)
      .expect(200);
    const events = parseSse(first.body as string);
    const last = events.at(-1);
    assert.equal(last?.event, 'run.requires_action');
    const action = last?.data.required_action as { tool_calls: Array<{ id: string }> };
    const runId = String(last?.data.run_id);

    a.sim.script(MODEL, { content: 'Order 9 is on its way.' });
    const second = await request(b.url)
      .post(`/agents/runs/${runId}/resume`)
      .send({
        stream: true,
        tool_outputs: [{ tool_call_id: action.tool_calls[0]?.id, output: 'in transit' }],
      })
      .buffer(true)
      .parse(sseText)
      .expect(200);
    const rest = parseSse(second.body as string);
    assert.equal(rest[0]?.event, 'run.in_progress');
    assert.equal(rest[0]?.id, (last?.id ?? 0) + 1, 'the resumed events continue the numbering');
    assert.ok(rest.some((e) => e.event === 'tool_call.completed'));
    assert.ok(rest.some((e) => e.event === 'message.delta'));
    const end = rest.at(-1);
    assert.equal(end?.event, 'run.completed');
    assert.equal((end?.data.run as AgentRun).output.text, 'Order 9 is on its way.');
    // The whole log replays through either replica.
    const replay = await request(a.url)
      .get(`/agents/runs/${runId}/events`)
      .buffer(true)
      .parse(sseText);
    const all = parseSse(replay.body as string).map((e) => e.event);
    assert.ok(all.indexOf('run.requires_action') < all.indexOf('run.completed'));
  });

  it('ends an unanswered pause as action_expired on the clock; action_ttl_ms is capped', async () => {
    const paused = await pausedRun(a, { action_ttl_ms: 5_000 });
    a.clock.advance(4_999);
    const handle = await a.agents.service.find(paused.id, undefined);
    assert.equal(handle.run.status, 'requires_action');
    const ended = new Promise<string>((resolve) => {
      void handle.follow(0, (e) => {
        if (e.type === 'run.incomplete') resolve(e.type);
      });
    });
    a.clock.advance(1);
    assert.equal(await ended, 'run.incomplete');
    const res = await request(b.url).get(`/agents/runs/${paused.id}`).expect(200);
    const run = res.body as AgentRun;
    valid(b, run);
    assert.equal(run.status, 'incomplete');
    assert.equal(run.stop_reason, 'action_expired');
    assert.equal(run.required_action, null);
    await request(b.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [] })
      .expect(409);
    const capped = await request(a.url)
      .post('/agents/run')
      .send({ input: 'x', action_ttl_ms: 7_200_000 })
      .expect(400);
    assert.match(JSON.stringify(capped.body), /RUN_ACTION_TTL_MAX_MS/);
  });

  it('sends invalid client tool arguments back to the model instead of pausing', async () => {
    a.sim.script(
      MODEL,
      { tool_calls: [call('lookup_order', { order: 12 })] },
      { content: 'I could not look it up.' },
    );
    const res = await request(a.url)
      .post('/agents/run')
      .send({ input: 'Where?', tools: [lookupOrder] })
      .expect(200);
    const run = res.body as AgentRun;
    assert.equal(run.status, 'completed');
    const tool = run.output.messages.find((m) => m.role === 'tool');
    assert.match(String(tool?.content), /order_id/);
  });

  it('pauses before a server tool that needs approval: denied (the model sees the reason) and approved', async () => {
    const agent = {
      system: 'Use the calculator.',
      tools: [{ type: 'server', name: 'calculator', require_approval: true }],
    };
    a.sim.script(MODEL, { tool_calls: [call('calculator', { expression: '6 * 7' })] });
    const denied = (
      await request(a.url).post('/agents/run').send({ agent, input: '6*7?' }).expect(200)
    ).body as AgentRun;
    valid(a, denied);
    assert.equal(denied.required_action?.type, 'approve_tool_calls');
    const deniedId = denied.required_action?.tool_calls[0]?.id;
    a.sim.script(MODEL, { content: 'I was not allowed to calculate.' });
    const afterDenial = (
      await request(b.url)
        .post(`/agents/runs/${denied.id}/resume`)
        .send({ approvals: [{ tool_call_id: deniedId, approve: false, reason: 'not today' }] })
        .expect(200)
    ).body as AgentRun;
    assert.equal(afterDenial.status, 'completed');
    const seen = lastChat(a).messages.find((m) => m.role === 'tool');
    assert.match(String(seen?.content), /not approved: not today/);
    const step = afterDenial.steps.find((s) => s.kind === 'tool');
    assert.equal(step?.status, 'rejected');

    a.sim.script(MODEL, { tool_calls: [call('calculator', { expression: '6 * 7' })] });
    const second = (
      await request(a.url).post('/agents/run').send({ agent, input: '6*7?' }).expect(200)
    ).body as AgentRun;
    // An output is not an approval: the wrong kind of answer is a conflict.
    await request(b.url)
      .post(`/agents/runs/${second.id}/resume`)
      .send({
        tool_outputs: [{ tool_call_id: second.required_action?.tool_calls[0]?.id, output: '42' }],
      })
      .expect(409);
    a.sim.script(MODEL, { content: '42.' });
    const approved = (
      await request(b.url)
        .post(`/agents/runs/${second.id}/resume`)
        .send({
          approvals: [{ tool_call_id: second.required_action?.tool_calls[0]?.id, approve: true }],
        })
        .expect(200)
    ).body as AgentRun;
    assert.equal(approved.status, 'completed');
    const result = lastChat(a).messages.find((m) => m.role === 'tool');
    assert.deepEqual(JSON.parse(String(result?.content)), { expression: '6 * 7', result: 42 });
  });

  /** A webhook run through `a` that pauses for lookup_order (202); returns its id. */
  const pausingWebhookRun = async (url: string): Promise<string> => {
    a.sim.script(MODEL, { tool_calls: [call('lookup_order', { order_id: '5' })] });
    const created = await request(a.url)
      .post('/agents/run')
      .send({ input: 'Order 5?', tools: [lookupOrder], webhook: { url } })
      .expect(202);
    return (created.body as AgentRun).id;
  };

  it('sends run.requires_action to the webhook, and the end of the run from the replica that resumed it', async () => {
    const receiver = await startReceiver();
    try {
      const id = await pausingWebhookRun(receiver.url);
      await (await a.agents.service.find(id, undefined)).settled();
      await until(() => receiver.types.length === 1);
      assert.deepEqual(receiver.types, ['run.requires_action:requires_action']);
      const paused = (await b.agents.service.find(id, undefined)).run;
      a.sim.script(MODEL, { content: 'Order 5 shipped.' });
      const resumed = await request(b.url)
        .post(`/agents/runs/${id}/resume`)
        .send({
          background: true,
          tool_outputs: [{ tool_call_id: paused.required_action?.tool_calls[0]?.id, output: 'ok' }],
        })
        .expect(202);
      assert.equal(resumed.headers.location, `/agents/runs/${id}`);
      await (await b.agents.service.find(id, undefined)).settled();
      assert.deepEqual(receiver.types, [
        'run.requires_action:requires_action',
        'run.completed:completed',
      ]);
    } finally {
      receiver.server.close();
    }
  });

  /** A run paused on replica a whose run.requires_action reached a receiver that answers nothing yet. */
  const pausedBeforeHeldReceiver = async () => {
    const receiver = await startReceiver({ hold: true });
    const id = await pausingWebhookRun(receiver.url);
    await until(() => receiver.types.length === 1, 20_000);
    return { receiver, id };
  };

  it("answers a resume that pauses again, and a cancel, while their webhooks wait for the first pause's, and delivers them in order", async () => {
    const { receiver, id } = await pausedBeforeHeldReceiver();
    try {
      const first = (await b.agents.service.find(id, undefined)).run;

      // An answered resume that pauses again (on replica b) answers once the pause is stored.
      a.sim.script(MODEL, { tool_calls: [call('lookup_order', { order_id: '7' })] });
      const resumed = await request(b.url)
        .post(`/agents/runs/${id}/resume`)
        .send({
          tool_outputs: [{ tool_call_id: first.required_action?.tool_calls[0]?.id, output: 'x' }],
        })
        .expect(200);
      assert.equal((resumed.body as AgentRun).status, 'requires_action');

      // A cancel of the pause answers once the run's end is stored.
      const cancelled = await request(a.url).post(`/agents/runs/${id}/cancel`).send({}).expect(200);
      assert.equal((cancelled.body as AgentRun).status, 'cancelled');
      // b delivers its pause on its own; a delivers the run's end only after its own pause's
      // delivery, which the receiver still holds.
      await until(() => receiver.types.length === 2, 20_000);
      assert.deepEqual(receiver.types, [
        'run.requires_action:requires_action',
        'run.requires_action:requires_action',
      ]);

      // The deliveries still wait for the receiver: the run's handle and a shutdown of the
      // replica that delivers them wait for them.
      const delivered = (await a.agents.service.find(id, undefined)).settled();
      const stopped = a.agents.stop();
      assert.equal(await stillPending(delivered), true);
      assert.equal(await stillPending(stopped), true);
      receiver.answer();
      await Promise.all([delivered, stopped]);
      // In the order the run went through them.
      assert.deepEqual(receiver.types, [
        'run.requires_action:requires_action',
        'run.requires_action:requires_action',
        'run.cancelled:cancelled',
      ]);
      const run = (await request(b.url).get(`/agents/runs/${id}`).expect(200)).body as AgentRun;
      assert.equal(run.status, 'cancelled');
      assert.equal(run.webhook?.last_delivery_status, 'delivered');
      assert.equal(run.webhook?.attempts, 1);
    } finally {
      receiver.server.closeAllConnections();
      receiver.server.close();
    }
  });

  it("delivers the end of a resumed segment after its pause's webhook, to a slow receiver", async () => {
    const { receiver, id } = await pausedBeforeHeldReceiver();
    try {
      const paused = (await a.agents.service.find(id, undefined)).run;
      a.sim.script(MODEL, { content: 'Order 5 shipped.' });
      const resumed = await request(a.url)
        .post(`/agents/runs/${id}/resume`)
        .send({
          tool_outputs: [{ tool_call_id: paused.required_action?.tool_calls[0]?.id, output: 'ok' }],
        })
        .expect(200);
      assert.equal((resumed.body as AgentRun).status, 'completed');
      receiver.answer();
      await until(() => receiver.types.length === 2, 20_000);
      assert.deepEqual(receiver.types, [
        'run.requires_action:requires_action',
        'run.completed:completed',
      ]);
      assert.deepEqual(
        receiver.heldAtArrival,
        [0, 0],
        'the end went out once the pause was answered',
      );
    } finally {
      receiver.server.closeAllConnections();
      receiver.server.close();
    }
  });

  it('cancels a paused run through the other replica', async () => {
    const paused = await pausedRun(a);
    const res = await request(b.url).post(`/agents/runs/${paused.id}/cancel`).send({}).expect(200);
    assert.equal((res.body as AgentRun).status, 'cancelled');
    await request(a.url)
      .post(`/agents/runs/${paused.id}/resume`)
      .send({ tool_outputs: [] })
      .expect(409);
  });

  it('tool_choice: none sends no tools; {name} offers only that tool; a disobeying model ends tool_choice_unmet', async () => {
    a.sim.script(MODEL, { content: 'No tools.' });
    await request(a.url).post('/agents/run').send({ input: 'hi', tool_choice: 'none' }).expect(200);
    assert.equal(lastChat(a).tools, undefined);

    a.sim.script(
      MODEL,
      { tool_calls: [call('calculator', { expression: '1 + 1' })] },
      { content: 'Two.' },
    );
    await request(a.url)
      .post('/agents/run')
      .send({ input: 'hi', tool_choice: { name: 'calculator' } })
      .expect(200);
    const [forced, free] = chats(a).slice(-2) as Array<{
      tools?: Array<{ function: { name: string } }>;
    }>;
    assert.deepEqual(
      forced?.tools?.map((t) => t.function.name),
      ['calculator'],
    );
    assert.deepEqual(
      free?.tools?.map((t) => t.function.name),
      ['current_time', 'calculator'],
    );

    a.sim.script(MODEL, { content: 'I refuse.' }, { content: 'Still no.' });
    const unmet = (
      await request(a.url)
        .post('/agents/run')
        .send({ input: 'hi', tool_choice: 'required' })
        .expect(200)
    ).body as AgentRun;
    assert.equal(unmet.status, 'incomplete');
    assert.equal(unmet.stop_reason, 'tool_choice_unmet');
    assert.equal(unmet.usage.model_calls, 2);

    const bad = await request(a.url)
      .post('/agents/run')
      .send({ input: 'hi', tool_choice: { name: 'nope' } })
      .expect(400);
    assert.match(JSON.stringify(bad.body), /tool_choice/);
    await request(a.url)
      .post('/agents/run')
      .send({ input: 'hi', agent: { system: 'x', tools: [] }, tool_choice: 'required' })
      .expect(400);
  });

  it('POST /agents/run-agent is the same endpoint', async () => {
    a.sim.script(MODEL, { content: 'Alias.' });
    const res = await request(a.url).post('/agents/run-agent').send({ input: 'hi' }).expect(200);
    assert.equal((res.body as AgentRun).output.text, 'Alias.');
    await request(a.url).get('/agents/run-agent').expect(405);
  });

  it('wait_timeout_ms answers 202 with the Location on the clock, and the run goes on', async () => {
    a.sim.script(MODEL, { tool_calls: [call('pause', {})] }, { content: 'Finished later.' });
    const pending = request(a.url)
      .post('/agents/run')
      .send({ input: 'slow', agent: { system: 'x', tools: ['pause'] }, wait_timeout_ms: 1_000 })
      .then((r) => r);
    await until(() => toolStarted);
    a.clock.advance(1_000);
    const res = await pending;
    assert.equal(res.status, 202);
    const run = res.body as AgentRun;
    assert.equal(res.headers.location, `/agents/runs/${run.id}`);
    assert.equal(run.status, 'in_progress');
    release();
    const handle = await a.agents.service.find(run.id, undefined);
    const finished = await handle.wait();
    assert.equal(finished.status, 'completed');
    assert.equal(finished.output.text, 'Finished later.');
  });
});
