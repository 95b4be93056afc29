import type { ValidateFunction } from 'ajv';
import type { Message } from '../ollama';
import { TERMINAL_EVENT_TYPES } from './events';
import { resolveLimits } from './limits';
import type { RunRequest } from './service';
import type { AgentDefinition, AgentLimits, AgentOptions, AgentRun, ThinkSetting } from './types';

/** Everything a run needs, decided before it exists. */
export interface RunPlan {
  agent: AgentRun['agent'];
  /** For telemetry: a registered agent name or `inline`. */
  agentLabel: string;
  model: string;
  limits: AgentLimits;
  options: AgentOptions;
  toolNames: readonly string[];
  /** The conversation the run starts from: system prompt, then the caller's input or messages. */
  messages: Message[];
  think?: ThinkSetting;
  format?: { schema: Record<string, unknown>; validate: ValidateFunction };
  /** Someone watches the tokens (streamed, background and webhook runs). */
  streamTokens: boolean;
  metadata: Record<string, string>;
  webhook: { url: string; events: string[] } | null;
}

/** What planning reads besides the request and the agent. */
export interface PlanContext {
  /** The active model, for a request and agent that name none. */
  defaultModel: string;
  /** The response format's validator (compiled once per schema). @throws VALIDATION_FAILED */
  compileFormat: (schema: Record<string, unknown>) => ValidateFunction;
  /** A short hash of an effective configuration; `key` names one that may be remembered. */
  configHash: (effective: Record<string, unknown>, key: string | undefined) => string;
}

/**
 * Decides a run from its request and its (resolved) agent: the model, the limits layered over
 * the agent's, the options, the tools, the response format's validator and the first messages.
 * Does no I/O and changes nothing it is given.
 * @throws AppError VALIDATION_FAILED when the response format's schema does not compile.
 */
export function planRun(
  body: RunRequest,
  resolved: { agent: AgentDefinition; inline: boolean },
  context: PlanContext,
): RunPlan {
  const { agent, inline } = resolved;
  const format = body.response_format ?? agent.response_format;
  const validate =
    format?.type === 'json_schema' ? context.compileFormat(format.schema) : undefined;
  const model = body.model ?? agent.model ?? context.defaultModel;
  const limits = resolveLimits(agent.limits, body.limits);
  const options = { ...agent.options, ...body.options };
  const toolNames = agent.tools ?? [];
  const effective = {
    system: agent.system,
    model,
    tools: toolNames,
    options,
    think: body.think ?? agent.think,
    limits,
    response_format: format,
  };
  const messages: Message[] = [];
  if (agent.system) messages.push({ role: 'system', content: agent.system });
  if (body.input !== undefined) messages.push({ role: 'user', content: body.input });
  else messages.push(...(body.messages ?? []).map((m) => ({ ...m })));
  return {
    agent: {
      name: agent.name,
      inline,
      // A request that only names a registered agent runs its stored configuration on the
      // model it resolves to: that hash is computed once per agent and model.
      config_hash: context.configHash(
        effective,
        !inline && !body.model && !body.options && !body.limits && !body.response_format
          ? `${agent.name}\u0000${model}`
          : undefined,
      ),
    },
    agentLabel: inline ? 'inline' : agent.name,
    model,
    limits,
    options,
    toolNames,
    messages,
    ...((body.think ?? agent.think) !== undefined ? { think: body.think ?? agent.think } : {}),
    ...(validate && format?.type === 'json_schema'
      ? { format: { schema: format.schema, validate } }
      : {}),
    // An answered run's caller gets only the finished run: no one watches its tokens.
    streamTokens: Boolean(body.stream || body.background || body.webhook),
    metadata: { ...body.metadata },
    webhook: body.webhook
      ? { url: body.webhook.url, events: body.webhook.events ?? [...TERMINAL_EVENT_TYPES] }
      : null,
  };
}
