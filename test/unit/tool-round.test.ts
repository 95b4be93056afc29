import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../services/agents/limits';
import type { StepContext } from '../../services/agents/run-context';
import { RunStop } from '../../services/agents/run-object';
import { createToolRound } from '../../services/agents/tool-round';
import type { AgentLimits } from '../../services/agents/types';
import { createNoopTelemetry } from '../../services/metrics/telemetry';
import { createCalculatorTool } from '../../services/tools/calculator';
import { createToolRegistry } from '../../services/tools/registry';
import { createSchemaRegistry } from '../../src/validation';
import { createCaptureLogger } from '../support/capture-logger';
import { createManualClock } from '../support/manual-clock';
import { queuedRun } from '../support/run-handles';

const schemas = createSchemaRegistry();

function round(limits: Partial<AgentLimits> = {}) {
  const clock = createManualClock();
  const run = queuedRun('run_tools');
  const emitted: string[] = [];
  const ctx = {
    spec: {
      run,
      limits: { ...DEFAULT_LIMITS, ...limits },
      toolNames: ['calculator'],
      approvalTools: [],
      clientTools: [],
      agentLabel: 'default',
    },
    signal: new AbortController().signal,
    ollamaTools: [],
    emit: (type: string) => void emitted.push(type),
    ended: () => false,
    iso: () => new Date(clock.now()).toISOString(),
  } as unknown as StepContext;
  const { round: toolRound } = createToolRound(
    {
      tools: createToolRegistry({ tools: [createCalculatorTool()], schemas }),
      telemetry: createNoopTelemetry(),
      logger: createCaptureLogger().logger,
      clock,
    },
    ctx,
  );
  return { toolRound, run, emitted };
}

const call = (id: string, expression: string) => ({
  id,
  name: 'calculator',
  arguments: { expression },
});

describe('a tool round (services/agents/tool-round)', () => {
  it('runs each call, records a tool step each and appends the results in call order', async () => {
    const { toolRound, run, emitted } = round();
    await toolRound([call('c1', '2 + 2'), call('c2', '3 * 3')]);
    assert.equal(run.usage.tool_calls, 2);
    assert.deepEqual(
      run.steps.map((s) => s.kind),
      ['tool', 'tool'],
    );
    const results = run.output.messages.filter((m) => m.role === 'tool');
    assert.deepEqual(
      results.map((m) => JSON.parse(String(m.content)) as unknown),
      [
        { expression: '2 + 2', result: 4 },
        { expression: '3 * 3', result: 9 },
      ],
    );
    assert.ok(emitted.includes('tool_call.completed'));
  });

  it('stops the run with max_tool_calls before running calls past the limit', async () => {
    const { toolRound, run } = round({ max_tool_calls: 1 });
    await assert.rejects(
      toolRound([call('c1', '1'), call('c2', '2')]),
      (err) => err instanceof RunStop && err.reason === 'max_tool_calls',
    );
    assert.equal(run.steps.length, 0);
  });

  it('stops the run with tool_loop when the model repeats the same call too often', async () => {
    const { toolRound } = round({ max_repeat_tool_call: 1 });
    await toolRound([call('c1', '1 + 1')]);
    await assert.rejects(
      toolRound([call('c2', '1 + 1')]),
      (err) => err instanceof RunStop && err.reason === 'tool_loop',
    );
  });

  it('answers an unknown tool with an error result instead of running anything', async () => {
    const { toolRound, run } = round();
    await toolRound([{ id: 'c1', name: 'rm_rf', arguments: {} }]);
    const result = run.output.messages.find((m) => m.role === 'tool');
    assert.match(String(result?.content), /Unknown tool/);
  });
});
