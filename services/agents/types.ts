/**
 * The shapes of the agents API: agent definitions, limits and the run object every endpoint
 * (and the webhook) returns. `schemas/agent*.schema.json` describe the same shapes for clients.
 */
import type { Message } from '../ollama';

export interface AgentOptions {
  temperature?: number;
  top_p?: number;
  seed?: number;
  num_ctx?: number;
  num_predict?: number;
}

export interface AgentLimits {
  max_steps: number;
  max_tool_calls: number;
  max_parallel_tool_calls: number;
  max_repeat_tool_call: number;
  timeout_ms: number;
  tool_timeout_ms: number;
  max_tool_output_chars: number;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_schema'; name?: string; schema: Record<string, unknown>; strict?: boolean };

/** JSON Schema of a tool's arguments, as the client declares it (an object schema). */
export type ToolParametersSchema = Record<string, unknown>;

/**
 * A tool the caller runs itself: when the model calls it, the run pauses in `requires_action`
 * until the caller submits the output (POST /agents/runs/{id}/resume).
 */
export interface ClientToolSpec {
  type: 'client';
  name: string;
  description: string;
  parameters: ToolParametersSchema;
}

/** A registered (server-side) tool named as an object; `require_approval` pauses before each call. */
export interface ServerToolSpec {
  type: 'server';
  name: string;
  require_approval?: boolean;
}

/** An agent's or a request's tool: a server tool's name, or one of the objects above. */
export type ToolSpec = string | ServerToolSpec | ClientToolSpec;

/**
 * How many answers a run makes and how it picks one (groupthink): `vote` takes the majority
 * final answer of `samples` independent runs; `judge` lets a model pick among them.
 */
export type Strategy =
  | { type: 'single' }
  | { type: 'vote'; samples: number }
  | { type: 'judge'; samples: number; judge_model?: string };

/** One sample of a groupthink run. */
export interface Candidate {
  index: number;
  status: RunStatus;
  stop_reason: StopReason | null;
  /** The options.seed the sample ran with. */
  seed: number;
  output: { text: string; json?: unknown };
  usage: RunUsage;
}

/** The groupthink record of a run whose strategy is not `single`. */
export interface Groupthink {
  strategy: Exclude<Strategy, { type: 'single' }>;
  candidates: Candidate[];
  /** The chosen candidate's index (null when no candidate finished). */
  winner: number | null;
  /** vote: each distinct (normalised) answer, its count and who gave it, most votes first. */
  votes?: Array<{ answer: string; count: number; candidates: number[] }>;
  /** judge: the judge's model and reason, or why the vote decided instead. */
  judge?: { model: string; rationale: string | null; fallback: boolean };
}

/** Which tools the model may or must call: forced choices apply to the run's first model step. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** An agent as registered (AGENTS_FILE or built in) or given inline (then `name` may be absent). */
export interface AgentDefinition {
  name: string;
  description?: string;
  model?: string;
  system?: string;
  tools?: ToolSpec[];
  /** MCP servers (defined in AGENTS_FILE) whose tools the agent may call. */
  mcp_servers?: string[];
  options?: AgentOptions;
  /** Ollama's `think`; on (true or a level) also streams the thinking as `thinking.delta` events. */
  think?: ThinkSetting;
  limits?: Partial<AgentLimits>;
  response_format?: ResponseFormat;
}

/** Ollama's `think`: on or off, or a level for models that have levels (ollama-api.md §4.5). */
export type ThinkSetting = boolean | 'low' | 'medium' | 'high' | 'max';

/** Every status a run can have (the metrics label them with these values only). */
export const RUN_STATUSES = [
  'queued',
  'in_progress',
  'requires_action',
  'completed',
  'incomplete',
  'failed',
  'cancelled',
] as const;

export type RunStatus = (typeof RUN_STATUSES)[number];

/** Every reason a run can stop for (the metrics label them with these values only). */
export const STOP_REASONS = [
  'end_turn',
  'max_steps',
  'max_tool_calls',
  'tool_loop',
  'timeout',
  'output_invalid',
  'context_exceeded',
  'tool_choice_unmet',
  'action_expired',
  'cancelled',
  'ollama_unavailable',
  'model_error',
  'internal_error',
  // The replica executing the run died; another replica ended the run (retryable).
  'interrupted',
] as const;

export type StopReason = (typeof STOP_REASONS)[number];

/** The status a stop reason ends a run with: only `end_turn` is a success. */
export function statusFor(reason: StopReason): RunStatus {
  switch (reason) {
    case 'end_turn':
      return 'completed';
    case 'cancelled':
      return 'cancelled';
    case 'ollama_unavailable':
    case 'model_error':
    case 'internal_error':
    case 'interrupted':
      return 'failed';
    default:
      return 'incomplete';
  }
}

export interface StepUsage {
  input_tokens: number;
  output_tokens: number;
}

export interface ModelStep {
  index: number;
  /** Groupthink: the candidate whose step this is. */
  candidate?: number;
  kind: 'model';
  /**
   * `loop`: a turn of the tool loop; `repair`: the one extra call for a structured answer;
   * `judge`: the groupthink judge's call.
   */
  purpose: 'loop' | 'repair' | 'judge';
  model: string;
  status: 'ok' | 'error' | 'cancelled';
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  usage: StepUsage;
  /** Ollama's own durations (ms) from the final chunk, and the gateway's queue / first-byte times. */
  ollama: {
    load_ms: number;
    prompt_eval_ms: number;
    eval_ms: number;
    total_ms: number;
    queue_ms: number;
    first_byte_ms: number | null;
    /** From sending to Ollama until the last byte (the gateway's measure). */
    last_byte_ms: number | null;
    done_reason: string | null;
  } | null;
  tool_calls: number;
  error?: string;
}

export type ToolStatus = 'ok' | 'error' | 'timeout' | 'rejected';

export interface ToolStep {
  index: number;
  /** Groupthink: the candidate whose step this is. */
  candidate?: number;
  kind: 'tool';
  status: ToolStatus;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  tool: {
    id: string;
    name: string;
    arguments: Record<string, unknown>;
    status: ToolStatus;
    output_preview: string;
    error?: string;
    attempts: number;
  };
}

export type RunStep = ModelStep | ToolStep;

export interface RunUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  model_calls: number;
  tool_calls: number;
  wall_ms: number;
}

export interface RunError {
  code: StopReason;
  message: string;
  retryable: boolean;
  step_index?: number;
  details?: unknown;
}

export interface WebhookState {
  url: string;
  events: string[];
  last_delivery_status: 'pending' | 'delivered' | 'failed' | 'skipped';
  last_status_code: number | null;
  attempts: number;
}

/** The run object: returned by every run endpoint, carried by terminal events and webhooks. */
export interface AgentRun {
  id: string;
  object: 'agent.run';
  status: RunStatus;
  stop_reason: StopReason | null;
  agent: { name: string; inline: boolean; config_hash: string };
  model: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  output: { text: string; json?: unknown; messages: Message[] };
  steps: RunStep[];
  usage: RunUsage;
  error: RunError | null;
  metadata: Record<string, string>;
  webhook: WebhookState | null;
  /** Set while the run waits in `requires_action` for its caller; null otherwise. */
  required_action: RequiredAction | null;
  /** Present when the run's strategy is `vote` or `judge`. */
  groupthink?: Groupthink;
}

/** One call a paused run waits on: a client tool's output, or an approval of a server tool. */
export interface ActionCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  /** `client`: submit its output; `approval`: approve or deny the server tool call. */
  type: 'client' | 'approval';
}

/** What a paused run waits for (`type` says which answer the calls need, see ActionCall). */
export interface RequiredAction {
  type: 'submit_tool_outputs' | 'approve_tool_calls';
  tool_calls: ActionCall[];
  /** When the pause ends as `action_expired` if nobody resumed the run. */
  expires_at: string;
}
