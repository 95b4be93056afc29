/**
 * What the services report about their work, as plain events. Services call these hooks;
 * the metrics module (prom-client) implements them. Services never import prom-client, and a
 * test can pass its own recorder. Every hook must be cheap and must never throw.
 */

export type InferenceOperation = 'chat' | 'generate' | 'embed' | 'preload' | 'unload' | 'pull';
/** Which API a generation came through: agent runs, or the drop-in OpenAI / Ollama endpoints. */
export type InferenceApi = 'agents' | 'openai' | 'ollama';
export type InferenceOutcome =
  | 'success'
  | 'error'
  | 'cancelled'
  | 'timeout'
  | 'busy'
  | 'unavailable'
  | 'not_found'
  | 'queue_full'
  | 'queue_timeout'
  | 'circuit_open';

export interface InferenceEvent {
  /** The model name as requested (the metrics module maps unknown names to `other`). */
  model: string;
  operation: InferenceOperation;
  outcome: InferenceOutcome;
  /** The API the call came through (default `agents`: everything but the drop-in endpoints). */
  api?: InferenceApi;
  /** Whole call, seconds, from admission to the last byte. */
  durationS: number;
  /** Time spent waiting in the gateway's own queue, seconds. */
  queueWaitS?: number;
  /** Time from sending the request to the first content token, seconds (streams only). */
  ttftS?: number;
  promptTokens?: number;
  completionTokens?: number;
  /** Ollama's own durations, nanoseconds, from the final chunk. */
  evalDurationNs?: number;
  loadDurationNs?: number;
  promptEvalDurationNs?: number;
}

export interface HealthCheckEvent {
  up: boolean;
  durationS: number;
}

export interface ModelSwitchEvent {
  outcome: 'success' | 'error' | 'conflict';
  durationS: number;
}

export interface AgentRunEvent {
  /** A registered agent name, or `inline`. */
  agent: string;
  status: string;
  stopReason: string;
  durationS: number;
}

export interface AgentStepEvent {
  agent: string;
  kind: 'model' | 'tool';
}

export interface ToolCallEvent {
  tool: string;
  outcome: 'ok' | 'error' | 'timeout' | 'rejected';
}

export interface WebhookEvent {
  outcome: 'delivered' | 'failed';
  attempts: number;
}

/**
 * Runs handled across replicas (Redis): a run taken over after its replica died, a cancel sent
 * to the replica executing a run, and one received from another replica.
 */
export interface RunCoordinationEvent {
  kind: 'takeover' | 'cancel_sent' | 'cancel_received';
}

export interface RouteEvent {
  reason: 'loaded' | 'installed' | 'least_loaded' | 'affinity' | 'failover';
  /** The backend's id (its index in OLLAMA_HOSTS, or a discovered pod's address; never its URL). */
  backend: string;
}

export interface ModelLoadEvent {
  /** The backend the gateway loaded a model on. */
  backend: string;
}

export interface McpFailureEvent {
  server: string;
}

export interface Telemetry {
  inference(e: InferenceEvent): void;
  healthCheck(e: HealthCheckEvent): void;
  modelSwitch(e: ModelSwitchEvent): void;
  /** This replica applied a switch another replica made (it reached it through the store). */
  modelSwitchPropagated(): void;
  agentRun(e: AgentRunEvent): void;
  agentStep(e: AgentStepEvent): void;
  toolCall(e: ToolCallEvent): void;
  webhook(e: WebhookEvent): void;
  runCoordination(e: RunCoordinationEvent): void;
  /** A generation was routed to a backend (optional: recorders that ignore routing omit it). */
  route?(e: RouteEvent): void;
  /** The gateway started loading a model on a backend. */
  modelLoad?(e: ModelLoadEvent): void;
  /** A backend left for good (it left discovery and finished its work): its series go. */
  backendRemoved?(e: { backend: string }): void;
  /** An MCP server could not be reached or listed (its tools are unavailable meanwhile). */
  mcpFailure(e: McpFailureEvent): void;
}

/** Telemetry that records nothing (unit tests that do not look at metrics). */
export function createNoopTelemetry(): Telemetry {
  const noop = (): void => undefined;
  return {
    inference: noop,
    healthCheck: noop,
    modelSwitch: noop,
    modelSwitchPropagated: noop,
    agentRun: noop,
    agentStep: noop,
    toolCall: noop,
    webhook: noop,
    runCoordination: noop,
    mcpFailure: noop,
  };
}
