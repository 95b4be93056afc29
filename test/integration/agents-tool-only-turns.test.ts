import assert from 'node:assert/strict';
import type { AgentRun } from '../../services/agents/types';
import { loadConfig } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';
import { startAgentsHarness, type AgentsHarness } from '../support/agents-harness';
import { openSse } from '../support/sse-client';

const MODEL = 'llama3.2:3b';
const CALL = { function: { name: 'calculator', arguments: { expression: '2+3' } } };

/**
 * A turn in which the model writes a tool call: Ollama sends nothing meanwhile, and in native
 * tool mode (Ollama ≥ 0.30) the calls arrive only on the final chunk (ollama-api.md §4.2).
 */
describe('tool-only turns (silence while the model writes a tool call)', () => {
  it('default deadlines outlast a 2,000-token tool call at 20 tokens/s (100 s)', () => {
    const c = loadConfig({}, createSchemaRegistry());
    assert.ok(c.OLLAMA_FIRST_BYTE_TIMEOUT_MS >= 100_000, String(c.OLLAMA_FIRST_BYTE_TIMEOUT_MS));
    assert.ok(c.OLLAMA_STREAM_IDLE_TIMEOUT_MS >= 100_000, String(c.OLLAMA_STREAM_IDLE_TIMEOUT_MS));
  });

  describe("with the deadlines scaled down to 2 s on the gateway's clock", () => {
    let h: AgentsHarness;
    beforeEach(async () => {
      h = await startAgentsHarness({
        env: { OLLAMA_FIRST_BYTE_TIMEOUT_MS: '2000', OLLAMA_STREAM_IDLE_TIMEOUT_MS: '2000' },
      });
      // Loaded first, so the first /api/chat each test sees is the turn, not the load.
      await h.ollama.preload(MODEL);
    });
    afterEach(() => h.close());

    /**
     * Streams a run whose first model turn goes silent; while the simulator is silent, the
     * gateway's clock moves `silentForMs` (its deadlines run on that clock).
     */
    const stream = async (silentForMs: number, afterText: boolean): Promise<AgentRun> => {
      const sent = h.sim.waitFor('request', (e) => e.path === '/api/chat');
      const sse = await openSse(`${h.url}/agents/run`, {
        method: 'POST',
        body: { input: '2+3?', stream: true },
      });
      await sent;
      if (afterText) await sse.until((raw) => raw.includes('event: message.delta'));
      h.clock.advance(silentForMs);
      await sse.ended;
      return sse.events().at(-1)?.data.run as AgentRun;
    };

    it('keeps a turn that is silent before its first byte and sends its call on the final chunk', async () => {
      h.sim.script(
        MODEL,
        { tool_calls: [CALL], toolCallMode: 'native', silenceMs: 300 },
        { content: 'The sum is 5.' },
      );
      const run = await stream(1900, false);
      assert.equal(run.status, 'completed', JSON.stringify(run.error));
      assert.equal(run.output.text, 'The sum is 5.');
      assert.equal(run.steps.filter((s) => s.kind === 'tool').length, 1);
    });

    it('keeps a turn that falls silent after some text while it writes the call', async () => {
      h.sim.script(
        MODEL,
        {
          content: 'Let me compute that.',
          tool_calls: [CALL],
          toolCallMode: 'native',
          silenceMs: 300,
        },
        { content: 'The sum is 5.' },
      );
      const run = await stream(1900, true);
      assert.equal(run.status, 'completed', JSON.stringify(run.error));
      assert.equal(run.steps.filter((s) => s.kind === 'tool').length, 1);
    });

    it('ends the run as a timeout when the silence outlasts the deadline', async () => {
      h.sim.script(MODEL, { tool_calls: [CALL], toolCallMode: 'native', silenceMs: 300 });
      const run = await stream(2100, false);
      assert.equal(run.status, 'failed');
      assert.equal((run.error?.details as { error_code?: string }).error_code, 'OLLAMA_TIMEOUT');
    });
  });
});
