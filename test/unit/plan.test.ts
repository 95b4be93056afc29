import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../services/agents/limits';
import { planRun, type PlanContext } from '../../services/agents/plan';
import type { RunRequest } from '../../services/agents/service';
import type { AgentDefinition } from '../../services/agents/types';
import { createSchemaRegistry } from '../../src/validation';

const schemas = createSchemaRegistry();
const context: PlanContext = {
  defaultModel: 'llama3.2:3b',
  compileFormat: (schema) => schemas.compile(schema),
  configHash: () => 'hash',
  toolNames: ['calculator', 'current_time'],
  maxActionTtlMs: 3_600_000,
  maxSamples: 8,
  mcpTools: () => [],
};
const agent: AgentDefinition = {
  name: 'helper',
  system: 'Be brief.',
  tools: ['calculator'],
  options: { temperature: 0.2 },
  limits: { max_steps: 4 },
};

describe('planRun', () => {
  it('layers the request over the agent and starts from the system prompt and the input', () => {
    const body: RunRequest = { input: 'hi', options: { seed: 1 }, limits: { max_tool_calls: 0 } };
    const plan = planRun(body, { agent, inline: false }, context);
    assert.equal(plan.model, 'llama3.2:3b');
    assert.equal(plan.agentLabel, 'helper');
    assert.deepEqual(plan.options, { temperature: 0.2, seed: 1 });
    assert.equal(plan.limits.max_steps, 4);
    assert.equal(plan.limits.max_tool_calls, 0);
    assert.equal(plan.limits.timeout_ms, DEFAULT_LIMITS.timeout_ms);
    assert.deepEqual(plan.toolNames, ['calculator']);
    assert.deepEqual(plan.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(plan.streamTokens, false, 'an answered run');
    assert.equal(plan.webhook, null);
  });

  it('changes nothing it is given', () => {
    const body: RunRequest = { messages: [{ role: 'user', content: 'a' }], model: 'qwen3:0.6b' };
    const before = structuredClone(body);
    const plan = planRun(body, { agent, inline: true }, context);
    plan.messages.push({ role: 'user', content: 'b' });
    plan.messages[1]!.content = 'changed';
    assert.deepEqual(body, before);
    assert.equal(plan.agentLabel, 'inline');
    assert.equal(plan.model, 'qwen3:0.6b');
  });

  it('compiles the response format once into the plan, and defaults webhook events to the terminal ones and the pause', () => {
    const body: RunRequest = {
      input: 'x',
      background: true,
      webhook: { url: 'https://example.com/hook' },
      response_format: { type: 'json_schema', schema: { type: 'object' } },
    };
    const plan = planRun(body, { agent, inline: false }, context);
    assert.equal(plan.format?.validate({}), true);
    assert.equal(plan.streamTokens, true);
    assert.deepEqual(plan.webhook, {
      url: 'https://example.com/hook',
      events: [
        'run.completed',
        'run.incomplete',
        'run.failed',
        'run.cancelled',
        'run.requires_action',
      ],
    });
  });
});
