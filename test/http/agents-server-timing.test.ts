import assert from 'node:assert/strict';
import request from 'supertest';
import type { AgentRun, ModelStep } from '../../services/agents/types';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const MODEL = 'llama3.2:3b';

interface TimingEntry {
  dur: number;
  desc?: string;
}

/** `Server-Timing` as name → {dur, desc}. */
function serverTiming(header: unknown): Record<string, TimingEntry> {
  assert.equal(typeof header, 'string', 'a Server-Timing header');
  const out: Record<string, TimingEntry> = {};
  for (const entry of (header as string).split(/,\s*/)) {
    const [name, ...params] = entry.split(';');
    const dur = params.find((p) => p.startsWith('dur='));
    const desc = params.find((p) => p.startsWith('desc='));
    if (name && dur) {
      out[name] = {
        dur: Number(dur.slice(4)),
        ...(desc ? { desc: desc.slice(6, -1) } : {}),
      };
    }
  }
  return out;
}

/** The header's rounding: one decimal. */
const round = (n: number): number => Math.round(n * 10) / 10;

function modelSteps(
  run: AgentRun,
): Array<ModelStep & { ollama: NonNullable<ModelStep['ollama']> }> {
  return run.steps.filter(
    (s): s is ModelStep & { ollama: NonNullable<ModelStep['ollama']> } =>
      s.kind === 'model' && s.ollama !== null,
  );
}

describe('Server-Timing on /agents answers', () => {
  let h: AgentsHarness;
  beforeEach(async () => {
    h = await startAgentsHarness();
    h.sim.setChunkLatency(20); // Ollama time that is clearly above zero
  });
  afterEach(() => h.close());

  describe('an answered run with two model calls', () => {
    it('sums the queue wait and Ollama time of both calls; ttfb is the first call', async () => {
      h.sim.script(
        MODEL,
        { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '6*7' } } }] },
        { chunks: ['It ', 'is ', '42.'] },
      );
      const res = await request(h.url).post('/agents/run').send({ input: '6*7?' }).expect(200);
      const run = res.body as AgentRun;
      assert.equal(run.status, 'completed');
      const steps = modelSteps(run);
      assert.equal(steps.length, 2);

      const t = serverTiming(res.headers['server-timing']);
      assert.equal(t.ollama?.desc, 'Ollama (2 calls)');
      const ollamaMs = steps.reduce((sum, s) => sum + (s.ollama.last_byte_ms ?? 0), 0);
      const queueMs = steps.reduce((sum, s) => sum + s.ollama.queue_ms, 0);
      assert.ok(ollamaMs >= 2 * 20, `Ollama time ${ollamaMs} ms covers the chunk latency`);
      assert.equal(t.ollama?.dur, round(ollamaMs));
      assert.equal(t.queue?.dur, round(queueMs));
      assert.equal(t.ollama_ttfb?.dur, round(steps[0]?.ollama.first_byte_ms ?? -1));
      assert.ok((t.total?.dur ?? 0) >= round(ollamaMs + queueMs) - 0.2, 'total covers both');
      assert.ok(t.gateway && t.gateway.dur >= 0);
      assert.match(String(res.headers['x-response-time']), /^\d+\.\dms$/);
    });
  });

  describe('a run that made no Ollama call that finished', () => {
    it('sends no Server-Timing (background 202, or a run that failed before Ollama answered)', async () => {
      const gate = h.sim.hold();
      const bg = await request(h.url)
        .post('/agents/run')
        .send({ input: 'later', background: true })
        .expect(202);
      assert.equal(bg.headers['server-timing'], undefined);
      gate.release();
      await (await h.agents.service.find((bg.body as AgentRun).id, undefined)).wait();

      await h.sim.stop();
      // Refused before Ollama answered: 503 in the error shape, and no timings to report.
      const failed = await request(h.url).post('/agents/run').send({ input: 'hi' }).expect(503);
      assert.equal((failed.body as { error: { code: string } }).error.code, 'OLLAMA_UNAVAILABLE');
      assert.equal(failed.headers['server-timing'], undefined);
    });
  });

  describe('streams', () => {
    it('a new run stream has none (nothing is known when its headers leave); a re-attach has the first call', async () => {
      h.sim.script(MODEL, { chunks: ['Hello ', 'there.'] });
      const sse = await openSse(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'hi', stream: true },
      });
      assert.equal(sse.headers['server-timing'], undefined);
      await sse.ended;
      const run = sse.events().at(-1)?.data.run as AgentRun;
      assert.equal(run.status, 'completed');

      const again = await openSse(`${h.url}/agents/runs/${run.id}/events`);
      await again.ended;
      const first = modelSteps(run)[0];
      const t = serverTiming(again.headers['server-timing']);
      assert.equal(t.ollama?.desc, 'Ollama (1 call)');
      assert.equal(t.queue?.dur, round(first?.ollama.queue_ms ?? -1));
      assert.equal(t.ollama?.dur, round(first?.ollama.last_byte_ms ?? -1));
      assert.equal(again.events().at(-1)?.event, 'run.completed');
    });
  });
});
