import assert from 'node:assert/strict';
import type { ChatResponse } from 'ollama';
import type { RunEventType } from '../../services/agents/events';
import { DEFAULT_LIMITS } from '../../services/agents/limits';
import { createAgentRunner } from '../../services/agents/runner';
import type { AgentRun } from '../../services/agents/types';
import { createNoopTelemetry } from '../../services/metrics/telemetry';
import type { GatewayChatRequest, Message, OllamaService } from '../../services/ollama/types';
import { createCalculatorTool } from '../../services/tools/calculator';
import { createToolRegistry } from '../../services/tools/registry';
import { createSchemaRegistry } from '../../src/validation';
import { createCaptureLogger } from '../support/capture-logger';
import { createManualClock } from '../support/manual-clock';
import { queuedRun } from '../support/run-handles';

type Reply = Partial<Message> | 'hang';

/** An Ollama whose non-streamed answers are scripted, one per call; `hang` never answers. */
function scriptedOllama(replies: Reply[]) {
  const requests: GatewayChatRequest[] = [];
  const ollama = {
    async chat(req: GatewayChatRequest, opts?: { signal?: AbortSignal }) {
      requests.push(structuredClone(req));
      const reply = replies.shift() ?? { content: 'done' };
      if (reply === 'hang') {
        return new Promise<never>((_resolve, reject) =>
          opts?.signal?.addEventListener('abort', () => reject(opts.signal?.reason)),
        );
      }
      const response = {
        model: req.model,
        message: { role: 'assistant', content: '', ...reply },
        done: true,
        done_reason: 'stop',
        prompt_eval_count: 3,
        eval_count: 2,
      } as unknown as ChatResponse;
      return { response, timings: { queueMs: 1, ollamaMs: 5 } };
    },
  } as unknown as OllamaService;
  return { ollama, requests };
}

function start(replies: Reply[], limits: Partial<typeof DEFAULT_LIMITS> = {}) {
  const { ollama, requests } = scriptedOllama(replies);
  const clock = createManualClock();
  const schemas = createSchemaRegistry();
  const runner = createAgentRunner({
    ollama,
    tools: createToolRegistry({ tools: [createCalculatorTool()], schemas }),
    telemetry: createNoopTelemetry(),
    logger: createCaptureLogger().logger,
    clock,
  });
  const run = queuedRun('run_unit');
  const events: RunEventType[] = [];
  const controller = new AbortController();
  const ended = new Promise<AgentRun>((onEnd) =>
    runner.execute({
      run,
      emit: (type) => void events.push(type),
      controller,
      onEnd,
      onPause: () => assert.fail('the run paused'),
      agentLabel: 'default',
      model: 'llama3.2:3b',
      messages: [{ role: 'user', content: 'What is 6 * 7?' }],
      toolNames: ['calculator'],
      approvalTools: [],
      clientTools: [],
      checkClientArgs: () => null,
      toolChoice: 'auto',
      options: {},
      limits: { ...DEFAULT_LIMITS, ...limits },
      streamTokens: false,
    }),
  );
  return { run, events, controller, clock, requests, ended };
}

describe('the runner (services/agents/runner)', () => {
  it('ends a run whose first answer has no tool calls: completed, end_turn, one model step', async () => {
    const { ended, events } = start([{ content: 'Hello.' }]);
    const run = await ended;
    assert.equal(run.status, 'completed');
    assert.equal(run.stop_reason, 'end_turn');
    assert.equal(run.output.text, 'Hello.');
    assert.equal(run.steps.length, 1);
    assert.deepEqual(run.usage.model_calls, 1);
    assert.equal(events[0], 'run.in_progress');
    assert.equal(events.at(-1), 'run.completed');
  });

  it('runs the tool the model asks for and sends the result back before the answer', async () => {
    const { ended, requests } = start([
      { tool_calls: [{ function: { name: 'calculator', arguments: { expression: '6 * 7' } } }] },
      { content: '42' },
    ]);
    const run = await ended;
    assert.equal(run.status, 'completed');
    assert.deepEqual(
      run.steps.map((s) => s.kind),
      ['model', 'tool', 'model'],
    );
    const toolMessage = requests[1]?.messages?.find((m) => m.role === 'tool');
    assert.match(String(toolMessage?.content), /42/);
  });

  it('stops at max_steps with incomplete', async () => {
    const ask = {
      tool_calls: [{ function: { name: 'calculator', arguments: { expression: '1+1' } } }],
    };
    const { ended } = start([ask, { ...ask }, { ...ask }], { max_steps: 2 });
    const run = await ended;
    assert.equal(run.status, 'incomplete');
    assert.equal(run.stop_reason, 'max_steps');
  });

  it('ends a run past its deadline on the clock, and aborts the Ollama call', async () => {
    const { ended, clock, controller } = start(['hang'], { timeout_ms: 1000 });
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(1000);
    const run = await ended;
    assert.equal(run.status, 'incomplete');
    assert.equal(run.stop_reason, 'timeout');
    assert.equal(controller.signal.aborted, true);
  });

  it('ends a cancelled run at once, with one terminal event', async () => {
    const { ended, controller, run, events } = start(['hang']);
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    assert.equal(run.status, 'cancelled', 'ended synchronously');
    await ended;
    assert.equal(events.filter((t) => t.startsWith('run.') && t !== 'run.in_progress').length, 1);
  });
});
