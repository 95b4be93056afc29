import type { ValidateFunction } from 'ajv';
import type { Tool } from '../ollama';
import type { SchemaRegistry } from '../../src/validation';
import { toFieldErrors } from '../../src/validation';
import { createSsrfGuard, type ResolveHost } from '../net';
import { createCalculatorTool } from './calculator';
import { createCurrentTimeTool } from './current-time';
import { createHttpGetTool } from './http-get';
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
}

/** Compiles each tool's argument schema once with the process's one Ajv. */
export function createToolRegistry(options: {
  tools: readonly ToolDefinition[];
  schemas: SchemaRegistry;
}): ToolRegistry {
  const tools = new Map<string, { def: ToolDefinition; validate: ValidateFunction }>();
  for (const def of options.tools) {
    if (tools.has(def.name)) throw new Error(`tool "${def.name}" is registered twice`);
    tools.set(def.name, { def, validate: options.schemas.compile({ ...def.parameters }) });
  }
  return {
    names: () => [...tools.keys()].sort(),
    get: (name) => tools.get(name)?.def,
    forOllama(names) {
      const out: Tool[] = [];
      for (const name of names) {
        const entry = tools.get(name);
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
      const entry = tools.get(name);
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
