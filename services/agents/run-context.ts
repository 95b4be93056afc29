import type { ValidateFunction } from 'ajv';
import type { AdmissionTicket } from '../../src/principal';
import type { Message, Tool } from '../ollama';
import type { RunEventType } from './events';
import type { GroupStrategy } from './groupthink';
import type { PauseDraft, ResumePoint } from './pause';
import type {
  AgentLimits,
  AgentOptions,
  AgentRun,
  ClientToolSpec,
  ThinkSetting,
  ToolChoice,
} from './types';

/** Everything one run needs, resolved by the service before the loop starts. */
export interface RunSpec {
  run: AgentRun;
  /** Appends an event to the run's log (see RunRepository.append). */
  emit: (type: RunEventType, data?: Record<string, unknown>) => void;
  /**
   * The run's one controller. Aborted from outside by a cancel, a streaming client that went
   * away, or shutdown: a {@link RunStop} as the reason becomes the run's stop (shutdown passes
   * one), any other reason means `cancelled`. The runner aborts it itself when the run ends
   * any other way, so the Ollama request and the tools still holding its signal stop.
   */
  controller: AbortController;
  /** Called once, with the run, right after its terminal event. */
  onEnd: (run: AgentRun) => void;
  /**
   * Called instead of `onEnd` when the run pauses for its caller (a client tool's output, an
   * approval). The runner is done with the run then; `run.required_action` is the caller's part.
   */
  onPause: (run: AgentRun, draft: PauseDraft) => void;
  /** Set when the run goes on after a pause: the calls it stopped at and the caller's answers. */
  resume?: ResumePoint;
  /** For telemetry: a registered agent name or `inline`. */
  agentLabel: string;
  /** The principal id that started the run: its tokens are counted against this key. */
  owner?: string;
  model: string;
  /** The conversation so far: system prompt, then the caller's input or messages. */
  messages: Message[];
  toolNames: readonly string[];
  /** Server tools (among `toolNames`) whose calls wait for the caller's approval. */
  approvalTools: readonly string[];
  /** Tools the caller runs: a call pauses the run. */
  clientTools: readonly ClientToolSpec[];
  /** Checks a client tool call's arguments: null when valid, else the problems for the model. */
  checkClientArgs: (name: string, args: unknown) => string | null;
  /** Groupthink: several candidates and a vote or a judge (absent: one answer). */
  strategy?: GroupStrategy;
  /** `none` sends no tools; a forced choice applies to the first model step of the run. */
  toolChoice: ToolChoice;
  options: AgentOptions;
  limits: AgentLimits;
  /**
   * Someone may watch the tokens arrive (streamed, background and webhook runs): model steps
   * stream from Ollama and emit a delta per chunk. False for answered runs: one non-streamed
   * Ollama call per model step (see model-step.ts).
   */
  streamTokens: boolean;
  /** The run's `think`: sent to Ollama when set; on (not `false`) also streams `thinking.delta` events. */
  think?: ThinkSetting;
  /** Set when a structured answer was asked for (`response_format: json_schema`). */
  format?: { schema: Record<string, unknown>; validate: ValidateFunction };
  /** Whose generations these are, for admission (the caller's key or client IP, its limits). */
  ticket?: AdmissionTicket;
}

/**
 * What the parts of one run's loop (model steps, tool rounds) share. A run ends the moment it
 * is stopped — cancel, deadline and shutdown end it synchronously — while the step that was in
 * flight unwinds later; so parts emit through `emit` (dropped once the run ended) and check
 * `ended()` before recording a late result.
 */
export interface StepContext {
  spec: RunSpec;
  /** The run's own signal: aborted when the run ends for any reason. */
  signal: AbortSignal;
  /** Tools as sent to Ollama (empty when the agent has none). */
  ollamaTools: Tool[];
  emit(type: RunEventType, data: Record<string, unknown>): void;
  ended(): boolean;
  /** The injected clock as an ISO timestamp. */
  iso(): string;
}
