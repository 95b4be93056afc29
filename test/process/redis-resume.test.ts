import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { AgentRun } from '../../services/agents/types';
import { lookupOrder, parseSse } from '../support/agents-harness';
import { freePort } from '../support/listen';
import { startOllamaSimulator, type OllamaSimulator } from '../support/ollama-simulator';
import { startRedis, stopRedis } from '../support/redis-server';
import { startServerProcess, type ServerProcess } from '../support/server-process';

const MODEL = 'llama3.2:3b';
const askFor = (orderId: string) => ({
  tool_calls: [{ function: { name: 'lookup_order', arguments: { order_id: orderId } } }],
});

const post = (server: ServerProcess, path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** The tool messages of the simulator's last chat request (what the model was sent back). */
function lastToolMessages(sim: OllamaSimulator): Array<{ role: string; content: string }> {
  const chats = sim.requests.filter((r) => r.path === '/api/chat');
  const body = chats.at(-1)?.body as { messages?: Array<{ role: string; content: string }> };
  return (body.messages ?? []).filter((m) => m.role === 'tool');
}

/** Polls until `check` holds; every try is a request, and the test's timeout bounds it. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
}

/** The sum of a counter's series whose labels include `label`. */
async function counter(server: ServerProcess, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(label))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

describe('client tools resumed through another gateway process (real redis-server)', function () {
  this.timeout(60_000);
  let redis: ChildProcess | undefined;
  let sim: OllamaSimulator | undefined;
  const servers: ServerProcess[] = [];

  after(async () => {
    for (const server of servers.splice(0)) server.kill();
    await sim?.close();
    if (redis) await stopRedis(redis);
  });

  it('pauses on A for a client tool and goes on through B: answered, then streamed; a wrong call id is a 409; a pause of a killed replica expires', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    sim = await startOllamaSimulator();
    const env = {
      OLLAMA_HOST: sim.url,
      OLLAMA_MODEL: MODEL,
      OLLAMA_PRELOAD: 'false',
      REDIS_URL: `redis://127.0.0.1:${port}`,
      RUN_LEASE_MS: '1000',
    };
    const started = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    servers.push(...started);
    const [a, b] = started;
    assert.ok(a && b);
    for (const server of started) {
      await server.waitForLine((l) => l.message === 'startup complete');
      await server.waitForLine((l) => l.message === 'redis connected');
    }

    // Answered: A answers the paused run; B takes the tool output and answers the finished run.
    sim.script(MODEL, askFor('1234'));
    const first = await post(a, '/agents/run', { input: 'Where is 1234?', tools: [lookupOrder] });
    assert.equal(first.status, 200);
    const paused = (await first.json()) as AgentRun;
    assert.equal(paused.status, 'requires_action');
    const callId = paused.required_action?.tool_calls[0]?.id;
    assert.ok(callId);
    const shown = (await (await fetch(`${b.url}/agents/runs/${paused.id}`)).json()) as AgentRun;
    assert.equal(shown.status, 'requires_action');

    sim.script(MODEL, { content: 'Order 1234 has shipped.' });
    const resumed = await post(b, `/agents/runs/${paused.id}/resume`, {
      tool_outputs: [{ tool_call_id: callId, output: 'shipped on Monday' }],
    });
    assert.equal(resumed.status, 200);
    const done = (await resumed.json()) as AgentRun;
    assert.equal(done.status, 'completed');
    assert.equal(done.output.text, 'Order 1234 has shipped.');
    assert.equal(lastToolMessages(sim).at(-1)?.content, 'shipped on Monday');
    // A reads the run B finished; answering the same call again is refused.
    const onA = (await (await fetch(`${a.url}/agents/runs/${paused.id}`)).json()) as AgentRun;
    assert.equal(onA.status, 'completed');
    assert.equal(onA.output.text, 'Order 1234 has shipped.');
    const again = await post(a, `/agents/runs/${paused.id}/resume`, {
      tool_outputs: [{ tool_call_id: callId, output: 'twice' }],
    });
    assert.equal(again.status, 409);

    // Streamed: A's stream ends at the pause; B streams the rest, numbered on.
    sim.script(MODEL, askFor('9'));
    const streamed = await post(a, '/agents/run', {
      input: 'Where is 9?',
      tools: [lookupOrder],
      stream: true,
    });
    const part1 = parseSse(await streamed.text());
    const pause = part1.at(-1);
    assert.equal(pause?.event, 'run.requires_action');
    const runId = String(pause?.data.run_id);
    const action = pause?.data.required_action as { tool_calls: Array<{ id: string }> };
    const streamCallId = action.tool_calls[0]?.id;

    const wrong = await post(b, `/agents/runs/${runId}/resume`, {
      tool_outputs: [{ tool_call_id: 'call_wrong', output: 'x' }],
    });
    assert.equal(wrong.status, 409);
    assert.equal(
      ((await wrong.json()) as { error: { code: string } }).error.code,
      'TOOL_CALL_CONFLICT',
    );

    sim.script(MODEL, { content: 'Order 9 is on its way.' });
    const streamedResume = await post(b, `/agents/runs/${runId}/resume`, {
      stream: true,
      tool_outputs: [{ tool_call_id: streamCallId, output: 'in transit' }],
    });
    assert.equal(streamedResume.status, 200);
    const part2 = parseSse(await streamedResume.text());
    assert.equal(part2[0]?.event, 'run.in_progress');
    assert.equal(part2[0]?.id, (pause?.id ?? 0) + 1, 'the resumed events continue the numbering');
    assert.ok(part2.some((e) => e.event === 'message.delta'));
    const end = part2.at(-1);
    assert.equal(end?.event, 'run.completed');
    assert.equal((end?.data.run as AgentRun).output.text, 'Order 9 is on its way.');
    assert.equal(lastToolMessages(sim).at(-1)?.content, 'in transit');

    // The whole log replays through A, in order, with no gap.
    const replay = parseSse(await (await fetch(`${a.url}/agents/runs/${runId}/events`)).text());
    assert.deepEqual(
      replay.map((e) => e.id),
      replay.map((_, i) => i + 1),
    );
    const types = replay.map((e) => e.event);
    assert.ok(types.indexOf('run.requires_action') < types.indexOf('run.completed'));

    // A pause whose replica died (its expiry timer with it) expires through B's takeover round,
    // without anyone reading the run: B's metrics (read without touching the run) show it.
    sim.script(MODEL, askFor('77'));
    const orphan = await post(a, '/agents/run', {
      input: 'Where is 77?',
      tools: [lookupOrder],
      action_ttl_ms: 1000,
    });
    const orphanId = ((await orphan.json()) as AgentRun).id;
    a.kill();
    const expired = () => counter(b, 'agent_runs_total', 'stop_reason="action_expired"');
    await until(async () => (await expired()) === 1);
    const ended = (await (await fetch(`${b.url}/agents/runs/${orphanId}`)).json()) as AgentRun;
    assert.equal(ended.status, 'incomplete');
    assert.equal(ended.stop_reason, 'action_expired');
  });
});
