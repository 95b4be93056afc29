/**
 * What a server-side tool is. Adding a tool is one file exporting a `createXTool(...)` factory
 * that returns a {@link ToolDefinition}, plus one line where the registry is built.
 */

/** JSON Schema of a tool's arguments (an object schema, as Ollama's `tools[].function.parameters`). */
export interface ToolParameters {
  type: 'object';
  properties: Record<string, Record<string, unknown>>;
  required?: string[];
  additionalProperties?: boolean;
}

export interface ToolContext {
  /** Aborted when the call's deadline passes or the run is cancelled; tools must stop then. */
  signal: AbortSignal;
}

export interface ToolDefinition {
  /** `snake_case`, what the model calls. */
  name: string;
  /** Told to the model; say what it does and what it returns. */
  description: string;
  parameters: ToolParameters;
  /** Safe to call again with the same arguments (no side effects): failed calls are retried once. */
  idempotent: boolean;
  /** The tool's own deadline, ms; the run's `tool_timeout_ms` can only shorten it. */
  timeoutMs: number;
  /** Runs the call with arguments already validated against `parameters`. The result is sent to the model as JSON. */
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<unknown>;
}

/**
 * A failure the model should read (bad input, a refused URL). Its message goes back to the
 * model verbatim, so it must be precise and free of internals. `retryable: false` stops
 * the one retry an idempotent tool would otherwise get.
 */
export class ToolError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ToolError';
    this.retryable = options.retryable ?? false;
  }
}
