import type { ValidateFunction } from 'ajv';
import { AppError } from '../../src/errors';
import type { Message } from '../ollama';
import { TERMINAL_EVENT_TYPES } from './events';
import type { GroupStrategy } from './groupthink';
import { resolveLimits } from './limits';
import type { RunRequest } from './service';
import type {
  AgentDefinition,
  AgentLimits,
  AgentOptions,
  AgentRun,
  ClientToolSpec,
  ThinkSetting,
  ToolChoice,
  ToolSpec,
} from './types';

/** The tools of a run, sorted by kind. */
export interface RunTools {
  /** Server tools the model may call (registered names). */
  toolNames: string[];
  /** Those of them whose calls wait for an approval. */
  approvalTools: string[];
  clientTools: ClientToolSpec[];
}

/**
 * Sorts tool specs (the agent's, then the request's) by kind. Returns the problems instead
 * when a name appears twice or a server tool is not registered.
 */
export function resolveTools(
  specs: readonly ToolSpec[],
  registered: readonly string[],
): RunTools | { problems: string[] } {
  const out: RunTools = { toolNames: [], approvalTools: [], clientTools: [] };
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    const name = typeof spec === 'string' ? spec : spec.name;
    if (seen.has(name)) {
      problems.push(`tool "${name}" is given twice`);
      continue;
    }
    seen.add(name);
    if (typeof spec === 'object' && spec.type === 'client') {
      if (registered.includes(name)) {
        problems.push(`client tool "${name}" has the name of a server tool`);
      } else out.clientTools.push(spec);
      continue;
    }
    if (!registered.includes(name)) {
      problems.push(`tool "${name}" is not available (available: ${registered.join(', ')})`);
      continue;
    }
    out.toolNames.push(name);
    if (typeof spec === 'object' && spec.require_approval) out.approvalTools.push(name);
  }
  return problems.length > 0 ? { problems } : out;
}

/** The problem with a tool_choice for these tools, or undefined. */
function toolChoiceProblem(choice: ToolChoice, tools: RunTools): string | undefined {
  const names = [...tools.toolNames, ...tools.clientTools.map((t) => t.name)];
  if (typeof choice === 'object' && !names.includes(choice.name)) {
    return `names "${choice.name}", which is not one of the run's tools (${names.join(', ') || 'none'})`;
  }
  if (choice === 'required' && names.length === 0) return 'is "required" but the run has no tools';
  return undefined;
}

/** Everything a run needs, decided before it exists. */
export interface RunPlan {
  agent: AgentRun['agent'];
  /** For telemetry: a registered agent name or `inline`. */
  agentLabel: string;
  model: string;
  limits: AgentLimits;
  options: AgentOptions;
  toolNames: readonly string[];
  approvalTools: readonly string[];
  clientTools: readonly ClientToolSpec[];
  toolChoice: ToolChoice;
  /** How long a pause for the caller may last before the run ends as `action_expired`. */
  actionTtlMs: number;
  /** Groupthink; absent for `single`. */
  strategy?: GroupStrategy;
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
  /** Names of the registered (server) tools, the MCP servers' available ones included. */
  toolNames: readonly string[];
  /** The tools an MCP server offers now (none while it is down or unknown). */
  mcpTools: (server: string) => readonly string[];
  /** The longest pause allowed (RUN_ACTION_TTL_MAX_MS); a longer action_ttl_ms is a 400. */
  maxActionTtlMs: number;
  /** GROUPTHINK_MAX_SAMPLES: more samples are a 400, never clamped. */
  maxSamples: number;
}

/** Pauses last 10 minutes unless the request says otherwise. */
export const DEFAULT_ACTION_TTL_MS = 600_000;

/** The request's 400: each message about the body's `path`. */
export function invalidBody(path: string, messages: string | readonly string[]): AppError {
  return new AppError('VALIDATION_FAILED', undefined, {
    details: (typeof messages === 'string' ? [messages] : messages).map((message) => ({
      in: 'body',
      path,
      message,
    })),
  });
}

/**
 * Decides a run from its request and its (resolved) agent: the model, the limits layered over
 * the agent's, the options, the tools, the response format's validator and the first messages.
 * Does no I/O and changes nothing it is given.
 * @throws AppError VALIDATION_FAILED when the response format's schema does not compile, for
 *   tools given twice or unknown, a tool_choice the tools cannot meet, a too long action_ttl_ms.
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
  // An MCP server's tools as listed now: a server that is down adds none, and the run goes on.
  const mcpTools = (agent.mcp_servers ?? []).flatMap((server) => context.mcpTools(server));
  const tools = resolveTools(
    [...(agent.tools ?? []), ...mcpTools, ...(body.tools ?? [])],
    context.toolNames,
  );
  if ('problems' in tools) throw invalidBody('/tools', tools.problems);
  const toolChoice = body.tool_choice ?? 'auto';
  const choiceProblem = toolChoiceProblem(toolChoice, tools);
  if (choiceProblem) throw invalidBody('/tool_choice', [choiceProblem]);
  const actionTtlMs = body.action_ttl_ms ?? Math.min(DEFAULT_ACTION_TTL_MS, context.maxActionTtlMs);
  if (actionTtlMs > context.maxActionTtlMs) {
    throw invalidBody('/action_ttl_ms', [
      `must be at most ${context.maxActionTtlMs} (RUN_ACTION_TTL_MAX_MS)`,
    ]);
  }
  const strategy = body.strategy?.type === 'single' ? undefined : body.strategy;
  if (strategy && strategy.samples > context.maxSamples) {
    throw invalidBody('/strategy/samples', [
      `must be at most ${context.maxSamples} (GROUPTHINK_MAX_SAMPLES)`,
    ]);
  }
  if (strategy && (tools.clientTools.length > 0 || tools.approvalTools.length > 0)) {
    throw invalidBody('/strategy', [
      'cannot be used with client tools or tools that need an approval (a candidate cannot pause)',
    ]);
  }
  const effective = {
    system: agent.system,
    model,
    tools: [...(agent.tools ?? []), ...(body.tools ?? [])],
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
        !inline &&
          !body.model &&
          !body.options &&
          !body.limits &&
          !body.response_format &&
          !body.tools
          ? `${agent.name}\u0000${model}`
          : undefined,
      ),
    },
    agentLabel: inline ? 'inline' : agent.name,
    model,
    limits,
    options,
    ...tools,
    toolChoice,
    actionTtlMs,
    ...(strategy ? { strategy } : {}),
    messages,
    ...((body.think ?? agent.think) !== undefined ? { think: body.think ?? agent.think } : {}),
    ...(validate && format?.type === 'json_schema'
      ? { format: { schema: format.schema, validate } }
      : {}),
    // An answered run's caller gets only the finished run: no one watches its tokens.
    streamTokens: Boolean(body.stream || body.background || body.webhook),
    metadata: { ...body.metadata },
    webhook: body.webhook
      ? {
          url: body.webhook.url,
          events: body.webhook.events ?? [...TERMINAL_EVENT_TYPES, 'run.requires_action'],
        }
      : null,
  };
}
