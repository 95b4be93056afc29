import type { ValidateFunction } from 'ajv';
import type { Tool } from '../ollama';
import type { SchemaRegistry } from '../../src/validation';
import { toFieldErrors } from '../../src/validation';
import { createSsrfGuard, type ResolveHost } from '../net';
import { createCalculatorTool } from './calculator';
import { createCurrentTimeTool } from './current-time';
import { createHttpGetTool } from './http-get';
import type { McpSource } from './mcp';
import type { ToolDefinition } from './types';

export interface ToolRegistry {
  /** Names of every registered tool, sorted. */
  names(): string[];
  get(name: string): ToolDefinition | undefined;
  /** The tools as Ollama's `tools` array, in the order given. Unknown names are skipped. */
  forOllama(names: readonly string[]): Tool[];
  /**
   * Checks a call's arguments against the tool's schema. Returns null when valid, otherwise
   * the precise problems in one line, written for the model to correct its call.
   */
  checkArguments(name: string, args: unknown): string | null;
  /** The tools an MCP server offers now (empty while it is down); undefined: no such server. */
  mcpTools(server: string): string[] | undefined;
}

/** Compiles each tool's argument schema once with the process's one Ajv. */
export function createToolRegistry(options: {
  tools: readonly ToolDefinition[];
  schemas: SchemaRegistry;
  /** MCP servers: their tools come and go with each listing. */
  sources?: readonly McpSource[];
}): ToolRegistry {
  const tools = new Map<string, { def: ToolDefinition; validate: ValidateFunction }>();
  for (const def of options.tools) {
    if (tools.has(def.name)) throw new Error(`tool "${def.name}" is registered twice`);
    tools.set(def.name, { def, validate: options.schemas.compile({ ...def.parameters }) });
  }
  const sources = options.sources ?? [];
  const lookup = (
    name: string,
  ): { def: ToolDefinition; validate: ValidateFunction } | undefined => {
    const own = tools.get(name);
    if (own) return own;
    for (const source of sources) {
      const found = source.tools().get(name);
      if (found) return found;
    }
    return undefined;
  };
  return {
    names: () => [...tools.keys(), ...sources.flatMap((s) => [...s.tools().keys()])].sort(),
    get: (name) => lookup(name)?.def,
    mcpTools: (server) => {
      const source = sources.find((s) => s.name === server);
      return source && [...source.tools().keys()];
    },
    forOllama(names) {
      const out: Tool[] = [];
      for (const name of names) {
        const entry = lookup(name);
        if (!entry) continue;
        out.push({
          type: 'function',
          function: {
            name: entry.def.name,
            description: entry.def.description,
            parameters: entry.def.parameters as NonNullable<Tool['function']['parameters']>,
          },
        });
      }
      return out;
    },
    checkArguments(name, args) {
      const entry = lookup(name);
      if (!entry) return `Unknown tool "${name}".`;
      if (entry.validate(args)) return null;
      return toFieldErrors(entry.validate.errors ?? [], 'arguments')
        .map(
          (e) =>
            `${e.path === '' ? 'arguments' : `arguments${e.path.replace(/\//g, '.')}`} ${e.message}`,
        )
        .join('; ');
    },
  };
}

export interface BuiltinToolsOptions {
  now: () => number;
  /** HTTP_TOOL_ALLOWLIST: empty leaves `http_get` out of the registry. */
  httpAllowlist: readonly string[];
  /** DNS resolver for the SSRF guard (tests pass their own). */
  resolve?: ResolveHost;
}

/** The built-in tools: `current_time`, `calculator`, and `http_get` when hosts are allowlisted. */
export function createBuiltinTools(options: BuiltinToolsOptions): ToolDefinition[] {
  const tools = [createCurrentTimeTool({ now: options.now }), createCalculatorTool()];
  if (options.httpAllowlist.length > 0) {
    const guard = createSsrfGuard({ allowHosts: options.httpAllowlist, resolve: options.resolve });
    tools.push(createHttpGetTool({ guard }));
  }
  return tools;
}
