/**
 * MCP tool servers (Model Context Protocol, streamable HTTP transport) through the official
 * TypeScript SDK (`@modelcontextprotocol/sdk`): the server's tools are listed at start and again
 * every refresh interval, kept when the allowlist names them, and offered to agents as server
 * tools named `<server>__<tool>`. A server that fails makes its tools unavailable until a
 * refresh reaches it again: a run never fails for it (a call to a tool that went away is an
 * "unknown tool" result for the model), and readiness never depends on it.
 */
import { readFile } from 'node:fs/promises';
import type { ValidateFunction } from 'ajv';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js' with {
  'resolution-mode': 'import',
};
import type { Clock, TimerHandle } from '../../src/clock';
import type { Logger } from '../../src/logger';
import type { SchemaRegistry } from '../../src/validation';
import { createGuardedFetch, SsrfError, type SsrfGuard } from '../net';
import { ToolError, type ToolDefinition, type ToolParameters } from './types';

/** One MCP server as AGENTS_FILE defines it. */
export interface McpServerConfig {
  name: string;
  url: string;
  /** A JSON or `Name: value` lines file with request headers (secrets stay out of the file). */
  headers_file?: string;
  /** The tool names (as the server calls them) agents may use; absent: every tool. */
  tools?: string[];
}

/** A tool of an MCP server, ready for the registry: its definition and its compiled schema. */
export interface McpTool {
  def: ToolDefinition;
  validate: ValidateFunction;
}

export interface McpServerStatus {
  name: string;
  up: boolean;
  /** The exposed names of the tools available now. */
  tools: string[];
  error: string | null;
  checked_at: string | null;
}

export interface McpSource {
  readonly name: string;
  /** Connects and lists the tools; never throws (a failure is the server's status). */
  refresh(): Promise<void>;
  /** Lists at once, then again every `refreshMs` on the clock. */
  start(): void;
  stop(): Promise<void>;
  /** The tools available now, by exposed name. */
  tools(): ReadonlyMap<string, McpTool>;
  status(): McpServerStatus;
}

export interface McpSourceOptions {
  server: McpServerConfig;
  /**
   * Checks the URL (and its DNS answer) before every connection, and resolves the host again
   * for each connection the client opens (its `lookup`).
   */
  guard: SsrfGuard;
  schemas: SchemaRegistry;
  clock: Clock;
  logger: Logger;
  refreshMs: number;
  /** Longest result text given to the model; longer results are cut and marked. */
  maxResultChars: number;
  /** Deadline of one MCP call (listing or tool call), ms. */
  timeoutMs: number;
  /** Called once per failure (connection, listing, refresh), for the metric. */
  onFailure: (server: string) => void;
}

/** The most tools one server may offer; those after it in its listing are left out. */
export const MCP_MAX_TOOLS = 128;
/** The longest tool description offered to the model; a longer one is cut. */
export const MCP_MAX_DESCRIPTION_CHARS = 1024;
/** The longest input schema (as JSON); a tool whose schema is longer is left out. */
export const MCP_MAX_SCHEMA_CHARS = 16 * 1024;
/** The smallest cap on one MCP answer: room for a listing of MCP_MAX_TOOLS tools. */
const MIN_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * The most bytes one HTTP answer of an MCP server may have: 4 per character of the longest
 * result kept (UTF-8's widest), and at least MIN_ANSWER_BYTES.
 */
export function mcpAnswerLimit(maxResultChars: number): number {
  return Math.max(4 * maxResultChars, MIN_ANSWER_BYTES);
}

/** The exposed name: `<server>__<tool>`, lower-case, other characters as `_`. */
export function exposedName(server: string, tool: string): string {
  return `${server}__${tool.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 64);
}

/** Headers from a file: a JSON object of strings, or `Name: value` lines. */
export async function readHeaders(file: string): Promise<Record<string, string>> {
  const text = await readFile(file, 'utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const parsed = JSON.parse(trimmed) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
  }
  const headers: Record<string, string> = {};
  for (const line of trimmed.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return headers;
}

/** The text of a tool result: its text parts joined; other parts as JSON. */
function resultText(content: unknown): string {
  if (!Array.isArray(content)) return JSON.stringify(content ?? null);
  return content
    .map((part: { type?: unknown; text?: unknown }) =>
      part.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(part),
    )
    .join('\n');
}

export function createMcpSource(options: McpSourceOptions): McpSource {
  const { server, guard, schemas, clock, logger } = options;
  // Every connection of the client resolves its host through the guard, and every answer is
  // bounded while it is read.
  const http = createGuardedFetch(guard, {
    maxBodyBytes: mcpAnswerLimit(options.maxResultChars),
  });
  let client: Client | null = null;
  let current = new Map<string, McpTool>();
  let state: McpServerStatus = {
    name: server.name,
    up: false,
    tools: [],
    error: 'not listed yet',
    checked_at: null,
  };
  let timer: TimerHandle | null = null;
  let refreshing: Promise<void> | null = null;
  // Validators of the last listing by schema text: a refresh that lists the same schema reuses
  // its validator instead of compiling (and caching in Ajv) a new one every interval.
  let validators = new Map<string, ValidateFunction>();
  let nextValidators = new Map<string, ValidateFunction>();
  const compile = (parameters: ToolParameters): ValidateFunction => {
    // A draft marker of the server's own choosing is not one Ajv needs (or may know).
    const {
      $schema: _draft,
      $id: _id,
      ...schema
    } = parameters as ToolParameters & {
      $schema?: unknown;
      $id?: unknown;
    };
    const key = JSON.stringify(schema);
    const fn = validators.get(key) ?? schemas.compile(schema);
    nextValidators.set(key, fn);
    return fn;
  };

  const fail = (err: unknown): void => {
    const message =
      err instanceof SsrfError ? `URL refused: ${err.message}` : (err as Error).message || 'failed';
    if (state.up || state.error !== message) {
      logger.warn('MCP server unavailable; its tools are left out', {
        mcp_server: server.name,
        error: message,
      });
    }
    options.onFailure(server.name);
    current = new Map();
    state = {
      name: server.name,
      up: false,
      tools: [],
      error: message,
      checked_at: new Date(clock.now()).toISOString(),
    };
    const old = client;
    client = null;
    void old?.close().catch(() => undefined);
  };

  const connect = async (): Promise<Client> => {
    if (client) return client;
    const url = await guard.check(server.url);
    const headers = server.headers_file ? await readHeaders(server.headers_file) : {};
    // The SDK is loaded by the first connection: it weighs about 30 MB of RSS, which a gateway
    // without MCP servers (AGENTS_FILE names none) does not carry.
    const [{ Client: McpClient }, { StreamableHTTPClientTransport }] = await Promise.all([
      import('@modelcontextprotocol/sdk/client/index.js'),
      import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    ]);
    const transport = new StreamableHTTPClientTransport(url, {
      // Redirects are not followed: a redirect could lead past the SSRF guard.
      requestInit: { headers, redirect: 'error' },
      fetch: http.fetch,
    });
    const next = new McpClient({ name: 'ollama-agent-gateway', version: '1' });
    await next.connect(transport, { timeout: options.timeoutMs });
    client = next;
    return next;
  };

  const toolOf = (name: string, tool: { description?: string; inputSchema: unknown }): McpTool => {
    const parameters = tool.inputSchema as ToolParameters;
    // Descriptions and schemas go to the model on every step of every run that has the tool.
    if (JSON.stringify(parameters).length > MCP_MAX_SCHEMA_CHARS) {
      throw new Error(`its input schema is longer than ${MCP_MAX_SCHEMA_CHARS} characters`);
    }
    const description = tool.description ?? name;
    const def: ToolDefinition = {
      name: exposedName(server.name, name),
      description:
        description.length > MCP_MAX_DESCRIPTION_CHARS
          ? `${description.slice(0, MCP_MAX_DESCRIPTION_CHARS - 1)}…`
          : description,
      parameters,
      // MCP does not say whether a tool has side effects: never retried.
      idempotent: false,
      timeoutMs: options.timeoutMs,
      async run(args, ctx) {
        const c = client;
        if (!c) throw new ToolError(`The MCP server ${server.name} is unavailable.`);
        let result: Awaited<ReturnType<Client['callTool']>>;
        try {
          result = await c.callTool({ name, arguments: args }, undefined, {
            signal: ctx.signal,
            timeout: options.timeoutMs,
          });
        } catch (err) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          throw new ToolError(`The MCP server ${server.name} failed: ${(err as Error).message}`);
        }
        let text = resultText(result.content);
        if (text.length > options.maxResultChars) {
          text = `${text.slice(0, options.maxResultChars)}… [${text.length - options.maxResultChars} more characters]`;
        }
        if (result.isError === true) throw new ToolError(text);
        return { result: text };
      },
    };
    return { def, validate: compile(parameters) };
  };

  const list = async (): Promise<void> => {
    try {
      const c = await connect();
      const listed = await c.listTools(undefined, { timeout: options.timeoutMs });
      const next = new Map<string, McpTool>();
      nextValidators = new Map();
      for (const tool of listed.tools) {
        if (server.tools && !server.tools.includes(tool.name)) continue;
        if (next.size === MCP_MAX_TOOLS) {
          logger.warn('MCP tools left out: the server offers more than MCP_MAX_TOOLS', {
            mcp_server: server.name,
            max: MCP_MAX_TOOLS,
          });
          break;
        }
        try {
          const made = toolOf(tool.name, tool);
          next.set(made.def.name, made);
        } catch (err) {
          logger.warn('MCP tool left out: its input schema is too long or does not compile', {
            mcp_server: server.name,
            tool: tool.name,
            error: err,
          });
        }
      }
      current = next;
      validators = nextValidators;
      state = {
        name: server.name,
        up: true,
        tools: [...next.keys()].sort(),
        error: null,
        checked_at: new Date(clock.now()).toISOString(),
      };
    } catch (err) {
      fail(err);
    }
  };

  return {
    name: server.name,
    refresh() {
      refreshing ??= list().finally(() => (refreshing = null));
      return refreshing;
    },
    start() {
      void this.refresh();
      timer ??= clock.every(options.refreshMs, () => void this.refresh());
    },
    async stop() {
      timer?.cancel();
      timer = null;
      const old = client;
      client = null;
      await old?.close().catch(() => undefined);
      await http.close();
    },
    tools: () => current,
    status: () => state,
  };
}
