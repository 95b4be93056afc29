import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { SchemaRegistry } from '../../src/validation';
import type { McpServerConfig } from '../tools';
import { resolveTools } from './plan';
import type { AgentDefinition } from './types';

/** Thrown at start for a bad AGENTS_FILE; its message names the file and every problem. */
export class AgentsFileError extends Error {
  constructor(
    file: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid AGENTS_FILE ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'AgentsFileError';
  }
}

/** The built-in agent, used when a request names no agent. `AGENTS_FILE` may redefine it. */
export const DEFAULT_AGENT: Readonly<AgentDefinition> = Object.freeze({
  name: 'default',
  description: 'A general assistant with the built-in time and calculator tools.',
  system:
    'You are a helpful, precise assistant. Use the tools when they help: calculator for any arithmetic, current_time for the date or time. Answer concisely.',
  tools: ['current_time', 'calculator'],
});

export interface AgentRegistry {
  /** Every agent, sorted by name (frozen). */
  list(): readonly AgentDefinition[];
  /** The agent (frozen), or undefined. */
  get(name: string): AgentDefinition | undefined;
}

/**
 * Problems with an agent that the schema cannot see: tools not in the tool registry and a
 * `response_format` schema Ajv cannot compile. Used for the file at start and for inline agents.
 */
export interface AgentChecks {
  toolNames: readonly string[];
  schemas: SchemaRegistry;
  /**
   * The context length the gateway sends for a model (undefined: none), and the model an
   * agent without its own runs on. An agent may not ask for another num_ctx: Ollama would
   * reload the model for it, and again for the next request of anyone else.
   */
  numCtx: { for: (model: string) => number | undefined; defaultModel: () => string };
  /** Names of the MCP servers AGENTS_FILE defines (agents may name only these). */
  mcpServers?: readonly string[];
}

/** What Ollama is sent as num_ctx, in words. */
const describeNumCtx = (n: number | undefined): string =>
  n === undefined ? "none (Ollama's automatic context)" : String(n);

/**
 * The problem with an `options.num_ctx` (an agent's, or a run's) for `model`, or undefined.
 */
export function numCtxProblem(
  options: AgentDefinition['options'],
  model: string,
  numCtx: AgentChecks['numCtx'],
): string | undefined {
  const asked = (options as { num_ctx?: unknown } | undefined)?.num_ctx;
  if (asked === undefined) return undefined;
  const sent = numCtx.for(model);
  if (asked === sent) return undefined;
  return `options.num_ctx is ${String(asked)}, but the gateway sends ${describeNumCtx(sent)} for ${model} on every request (set OLLAMA_NUM_CTX or OLLAMA_NUM_CTX_MODELS instead)`;
}

export function agentProblems(agent: AgentDefinition, deps: AgentChecks): string[] {
  const problems: string[] = [];
  const numCtx = numCtxProblem(
    agent.options,
    agent.model ?? deps.numCtx.defaultModel(),
    deps.numCtx,
  );
  if (numCtx) problems.push(numCtx);
  const tools = resolveTools(agent.tools ?? [], deps.toolNames);
  if ('problems' in tools) problems.push(...tools.problems);
  else {
    for (const tool of tools.clientTools) {
      try {
        deps.schemas.compile(tool.parameters);
      } catch (err) {
        problems.push(
          `client tool "${tool.name}" parameters do not compile: ${(err as Error).message}`,
        );
      }
    }
  }
  for (const server of agent.mcp_servers ?? []) {
    if (!(deps.mcpServers ?? []).includes(server)) {
      problems.push(`MCP server "${server}" is not defined in AGENTS_FILE's mcp_servers`);
    }
  }
  const format = agent.response_format;
  if (format?.type === 'json_schema') {
    try {
      deps.schemas.compile(format.schema);
    } catch (err) {
      problems.push(`response_format.schema does not compile: ${(err as Error).message}`);
    }
  }
  return problems;
}

/**
 * Reads and checks AGENTS_FILE once at start (YAML or JSON — YAML parses both): the document
 * must match `schemas/agents-file.schema.json`, names must be unique, tools must exist.
 * @throws AgentsFileError listing every problem.
 */
export function loadAgentsFile(file: string, deps: AgentChecks): AgentDefinition[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentsFileError(file, [(err as Error).message]);
  }
  const invalid = deps.schemas.check('agents-file', doc, 'AGENTS_FILE');
  if (invalid.length > 0) {
    throw new AgentsFileError(
      file,
      invalid.map((p) => `${p.path || '(document)'} ${p.message}`),
    );
  }
  const agents = (doc as { agents: AgentDefinition[] }).agents;
  const problems: string[] = [];
  const seen = new Set<string>();
  agents.forEach((agent, i) => {
    if (seen.has(agent.name)) problems.push(`/agents/${i}/name "${agent.name}" is defined twice`);
    seen.add(agent.name);
    for (const p of agentProblems(agent, deps)) problems.push(`/agents/${i} (${agent.name}): ${p}`);
  });
  if (problems.length > 0) throw new AgentsFileError(file, problems);
  return agents;
}

/**
 * The MCP servers AGENTS_FILE defines (none when it defines none, or when the file is invalid:
 * loadAgentsFile reports that).
 */
export function loadMcpServers(file: string, schemas: SchemaRegistry): McpServerConfig[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  if (schemas.check('agents-file', doc, 'AGENTS_FILE').length > 0) return [];
  return (doc as { mcp_servers?: McpServerConfig[] }).mcp_servers ?? [];
}

/** Freezes a plain JSON value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * The registered agents: the built-in `default` plus those given (which may replace it).
 * Definitions are copied once and deep-frozen, then handed out as they are: every run reads its
 * agent (and metrics read the names), so a copy per read would cost on every run, and a frozen
 * object cannot be changed by a reader by mistake (strict-mode code throws).
 */
export function createAgentRegistry(options: {
  agents: readonly AgentDefinition[];
}): AgentRegistry {
  const byName = new Map<string, AgentDefinition>([
    [DEFAULT_AGENT.name, deepFreeze(DEFAULT_AGENT)],
  ]);
  for (const agent of options.agents) byName.set(agent.name, deepFreeze(structuredClone(agent)));
  const sorted = Object.freeze([...byName.values()].sort((a, b) => a.name.localeCompare(b.name)));
  return {
    list: () => sorted,
    get: (name) => byName.get(name),
  };
}
