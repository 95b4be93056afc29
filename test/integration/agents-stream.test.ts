import assert from 'node:assert/strict';
import http from 'node:http';
import type { AgentRun } from '../../services/agents/types';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const MODEL = 'llama3.2:3b';

describe('POST /agents/run with stream: true', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness();
  });
  afterEach(() => h.close());

  it('sends every event in order with increasing ids and exactly one terminal event', async () => {
    h.sim.script(
      MODEL,
      { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '2+3' } } }] },
      { content: 'The sum is 5.' },
    );
    const sse = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: '2+3?', stream: true },
    });
    assert.equal(sse.status, 200);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    assert.match(String(sse.headers['content-location']), /^\/agents\/runs\/run_/);
    await sse.ended;
    const events = sse.events();
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => i + 1),
    );
    const types = events.map((e) => e.event);
    const compact = types.filter(
      (t, i) => t !== 'message.delta' || types[i - 1] !== 'message.delta',
    );
    assert.deepEqual(compact, [
      'run.created',
      'run.in_progress',
      'step.started',
      'step.completed',
      'tool_call.created',
      'tool_call.completed',
      'step.started',
      'message.delta',
      'step.completed',
      'run.completed',
    ]);
    assert.equal(
      types.filter((t) => t.startsWith('run.') && t !== 'run.created' && t !== 'run.in_progress')
        .length,
      1,
    );
    const text = events
      .filter((e) => e.event === 'message.delta')
      .map((e) => e.data.text)
      .join('');
    assert.equal(text, 'The sum is 5.');
    const created = events.find((e) => e.event === 'tool_call.created');
    assert.equal(created?.data.name, 'calculator');
    assert.deepEqual(created?.data.arguments, { expression: '2+3' });
    const terminal = events.at(-1);
    const run = terminal?.data.run as AgentRun;
    assert.equal(run.status, 'completed');
    assert.equal(run.output.text, 'The sum is 5.');
    assert.equal(terminal?.data.seq, terminal?.id);
    assert.equal(sse.headers['x-run-id'], run.id);
  });

  it('forwards tokens as Ollama produces them (first delta before the last chunk is sent)', async () => {
    h.sim.script(MODEL, { chunks: ['Alpha ', 'beta ', 'gamma ', 'delta'] });
    const gate = h.sim.hold();
    let lastChunkSent = false;
    h.sim.on('chunk', (e: { data?: { done?: boolean } }) => {
      if (e.data?.done) lastChunkSent = true;
    });
    const sse = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: 'go', stream: true },
    });
    await sse.until((raw) => raw.includes('event: message.delta'));
    assert.equal(
      lastChunkSent,
      false,
      'the first token reached the client while Ollama was still generating',
    );
    assert.equal(sse.events().filter((e) => e.event === 'message.delta')[0]?.data.text, 'Alpha ');
    gate.release();
    await sse.ended;
    assert.equal(lastChunkSent, true);
    assert.equal((sse.events().at(-1)?.data.run as AgentRun).output.text, 'Alpha beta gamma delta');
  });

  it('cancels the run and its Ollama request when the client disconnects', async () => {
    h.sim.script(MODEL, { chunks: ['one ', 'two ', 'three'] });
    h.sim.hold();
    const sse = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: 'go', stream: true },
    });
    await sse.until((raw) => raw.includes('event: message.delta'));
    const runId = String(sse.headers['x-run-id']);
    const aborted = h.sim.waitFor('aborted');
    sse.destroy();
    await aborted;
    const run = await (await h.agents.service.find(runId, undefined)).wait();
    assert.equal(run.status, 'cancelled');
    assert.equal(run.stop_reason, 'cancelled');
    assert.equal(h.sim.inFlight(), 0);
  });

  it('sends a heartbeat comment every STREAM_HEARTBEAT_MS', async () => {
    h.sim.script(MODEL, { chunks: ['a', 'b'] });
    const gate = h.sim.hold();
    const sse = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: 'go', stream: true },
    });
    await sse.until((raw) => raw.includes('event: message.delta'));
    assert.doesNotMatch(sse.raw, /: ping/);
    h.clock.advance(15_000);
    await sse.until((raw) => raw.includes(': ping\n\n'));
    gate.release();
    await sse.ended;
  });

  it('replays from Last-Event-ID (and ?after=) on GET /agents/runs/:id/events', async () => {
    h.sim.script(MODEL, { content: 'Replay me please.' });
    const first = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: 'go', stream: true },
    });
    await first.ended;
    const all = first.events();
    const runId = String(first.headers['x-run-id']);
    const replay = await openSse(`${h.url}/agents/runs/${runId}/events`, {
      headers: { 'last-event-id': '3' },
    });
    await replay.ended;
    assert.deepEqual(
      replay.events().map((e) => e.id),
      all.filter((e) => e.id > 3).map((e) => e.id),
    );
    assert.deepEqual(replay.events().at(-1)?.data, all.at(-1)?.data);
    const after = await openSse(`${h.url}/agents/runs/${runId}/events?after=${all.length - 1}`);
    await after.ended;
    assert.deepEqual(
      after.events().map((e) => e.event),
      ['run.completed'],
    );
    // Past the terminal event (an EventSource reconnecting after the end): 204 at once, which
    // tells an EventSource to stop reconnecting; not an open stream of pings.
    for (const headers of [{ 'last-event-id': String(all.length) }, {}]) {
      const query = 'last-event-id' in headers ? '' : `?after=${all.length + 5}`;
      const done = await fetch(`${h.url}/agents/runs/${runId}/events${query}`, { headers });
      assert.equal(done.status, 204);
      assert.equal(await done.text(), '');
    }
  });

  it('lets a second client attach to a running run and receive the live events', async () => {
    h.sim.script(MODEL, { chunks: ['x', 'y', 'z'] });
    const gate = h.sim.hold();
    const first = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { input: 'go', stream: true },
    });
    await first.until((raw) => raw.includes('event: message.delta'));
    const runId = String(first.headers['x-run-id']);
    const second = await openSse(`${h.url}/agents/runs/${runId}/events`);
    await second.until((raw) => raw.includes('event: message.delta'));
    gate.release();
    await Promise.all([first.ended, second.ended]);
    assert.deepEqual(second.events(), first.events());
  });

  it('passes the agent think option to Ollama and streams thinking.delta only when it is true', async () => {
    const THINKER = 'qwen3:8b';
    const reply = { thinking: 'Let me see. Easy.', chunks: ['Four.'] };
    h.sim.script(THINKER, reply, reply);
    const agent = (think?: boolean) => ({
      model: THINKER,
      system: 'Answer briefly.',
      ...(think !== undefined ? { think } : {}),
    });
    const thinking = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { agent: agent(true), input: '2+2?', stream: true },
    });
    await thinking.ended;
    const types = thinking.events().map((e) => e.event);
    assert.ok(types.includes('thinking.delta'));
    assert.ok(types.indexOf('thinking.delta') < types.indexOf('message.delta'));
    const thought = thinking
      .events()
      .filter((e) => e.event === 'thinking.delta')
      .map((e) => e.data.text)
      .join('');
    assert.equal(thought, reply.thinking);
    const run = thinking.events().at(-1)?.data.run as AgentRun;
    assert.equal(run.output.text, 'Four.');
    assert.equal(run.output.messages.at(-1)?.thinking, reply.thinking);

    // Without think the model still thinks (its default) but the stream carries only the answer.
    const quiet = await openSse(`${h.url}/agents/run`, {
      method: 'POST',
      body: { agent: agent(), input: '2+2?', stream: true },
    });
    await quiet.ended;
    assert.ok(!quiet.events().some((e) => e.event === 'thinking.delta'));
    assert.equal((quiet.events().at(-1)?.data.run as AgentRun).status, 'completed');

    const sent = h.sim.requests
      .filter(
        (r) =>
          r.path === '/api/chat' &&
          ((r.body as { messages?: unknown[] }).messages ?? []).length > 0,
      )
      .map((r) => (r.body as { think?: unknown }).think);
    assert.deepEqual(sent, [true, undefined]);
  });

  it('cancels an answered run when its client disconnects before the answer', async () => {
    h.sim.script(MODEL, { chunks: ['one ', 'two'] });
    h.sim.hold();
    const req = http.request(`${h.url}/agents/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    const created = h.sim.waitFor('chunk');
    req.end(JSON.stringify({ input: 'go' }));
    await created;
    const aborted = h.sim.waitFor('aborted');
    req.destroy();
    await aborted;
    assert.equal(h.sim.inFlight(), 0);
  });
});
