import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const post = (h: AgentsHarness, body: Record<string, unknown>) =>
  fetch(`${h.url}/agents/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

type ErrorBody = { error: { code: string; request_id: string } };

/** A refusal as a client must see it: 429 or 503, Retry-After, the error shape. */
async function assertRefusal(res: Response, codes: string[]): Promise<void> {
  const body = (await res.json()) as ErrorBody;
  assert.ok([429, 503].includes(res.status), `${res.status} ${JSON.stringify(body)}`);
  assert.match(String(res.headers.get('retry-after')), /^[1-9]\d*$/);
  assert.ok(codes.includes(body.error.code), body.error.code);
  assert.ok(body.error.request_id);
}

describe('runs refused before Ollama did any work', () => {
  let h: AgentsHarness;
  afterEach(() => h.close());

  describe('answered runs', () => {
    it('1,000 at once against a small queue: each completes, or gets 429/503 with Retry-After; never a 200 with a failed run', async function () {
      this.timeout(60_000);
      h = await startAgentsHarness({
        env: {
          OLLAMA_MAX_CONCURRENCY: '2',
          QUEUE_MAX: '8',
          RUNS_MAX: '5000',
          RATE_LIMIT_PER_MINUTE: '100000',
          RATE_LIMIT_RUNS_PER_MINUTE: '100000',
        },
      });
      h.sim.setChunkLatency(2);
      const answers = await Promise.all(
        Array.from({ length: 1000 }, () => post(h, { input: 'hi' })),
      );
      const tally = new Map<string, number>();
      for (const res of answers) {
        if (res.status === 200) {
          const run = (await res.json()) as AgentRun;
          assert.equal(run.status, 'completed', JSON.stringify(run.error));
          tally.set('200 completed', (tally.get('200 completed') ?? 0) + 1);
        } else {
          await assertRefusal(res, ['QUEUE_FULL', 'QUEUE_TIMEOUT']);
          tally.set(String(res.status), (tally.get(String(res.status)) ?? 0) + 1);
        }
      }
      assert.ok((tally.get('200 completed') ?? 0) >= 10, JSON.stringify([...tally]));
      assert.ok((tally.get('429') ?? 0) > 0, JSON.stringify([...tally]));
    });

    it('answers 503 with Retry-After while Ollama is down and while the circuit is open', async () => {
      h = await startAgentsHarness({
        env: { CIRCUIT_FAILURE_THRESHOLD: '1', OLLAMA_RETRY_MAX: '0' },
      });
      await h.sim.stop();
      await assertRefusal(await post(h, { input: 'hi' }), ['OLLAMA_UNAVAILABLE']);
      const open = await post(h, { input: 'hi' });
      await assertRefusal(open, ['OLLAMA_UNAVAILABLE']);
      assert.equal(h.sim.requests.length, 0, 'the open circuit sent nothing to Ollama');
    });

    it('stays a run object once Ollama answered (a model error is a failed run, 200)', async () => {
      h = await startAgentsHarness();
      h.sim.failNext(1, 500);
      const res = await post(h, { input: 'hi' });
      assert.equal(res.status, 200);
      const run = (await res.json()) as AgentRun;
      assert.equal(run.status, 'failed');
      assert.equal(run.stop_reason, 'model_error');
    });
  });

  describe('streamed and background runs', () => {
    it('end with run.failed whose error says refused, with the code and retry_after_ms', async () => {
      h = await startAgentsHarness({ env: { OLLAMA_RETRY_MAX: '0' } });
      await h.sim.stop();
      const sse = await openSse(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: 'hi', stream: true },
      });
      await sse.ended;
      const last = sse.events().at(-1);
      assert.equal(last?.event, 'run.failed');
      const streamed = last?.data.run as AgentRun;
      assert.deepEqual(streamed.error?.details, {
        error_code: 'OLLAMA_UNAVAILABLE',
        refused: true,
        retry_after_ms: 1000,
      });

      const created = await post(h, { input: 'hi', background: true });
      assert.equal(created.status, 202);
      const { id } = (await created.json()) as AgentRun;
      let run: AgentRun;
      do {
        run = (await (await fetch(`${h.url}/agents/runs/${id}`)).json()) as AgentRun;
      } while (run.status === 'queued' || run.status === 'in_progress');
      assert.equal(run.status, 'failed');
      assert.equal((run.error?.details as { refused?: boolean }).refused, true);
      assert.equal((run.error?.details as { retry_after_ms?: number }).retry_after_ms, 1000);
    });
  });
});
