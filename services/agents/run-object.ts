import { randomFillSync } from 'node:crypto';
import type { CallTimings } from '../ollama';
import type { AgentRun, RunError, StopReason } from './types';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

const ID_CHARS = 22;
/** Ids drawn from one fill of the CSPRNG: one call per 128 runs instead of one per run. */
const IDS_PER_FILL = 128;

/**
 * A source of run ids: `run_` + 22 random base62 characters (about 131 bits) from the CSPRNG,
 * unguessable, so ids leak nothing. The random bytes are drawn in blocks (a CSPRNG call costs
 * about as much for 2.8 KB as for 22 bytes) and each byte is used once.
 */
export function createRunIds(): () => string {
  const pool = Buffer.alloc(ID_CHARS * IDS_PER_FILL);
  let offset = pool.length;
  return () => {
    if (offset === pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    let id = 'run_';
    for (let end = offset + ID_CHARS; offset < end; offset += 1) {
      id += ALPHABET[pool[offset]! % ALPHABET.length];
    }
    return id;
  };
}

/** The clock as an ISO timestamp. */
export function createIsoClock(now: () => number): () => string {
  return () => new Date(now()).toISOString();
}

/** Ends a run early from anywhere in the loop; the runner turns it into the run's stop_reason. */
export class RunStop extends Error {
  constructor(
    readonly reason: StopReason,
    message: string,
    readonly details?: unknown,
    /** Overrides whether the reason is retryable (a run cut by shutdown is, elsewhere). */
    readonly retryable?: boolean,
  ) {
    super(message);
    this.name = 'RunStop';
  }
}

/**
 * The stop of a run still going when the service shuts down: `cancelled`, retryable (on
 * another replica), with `details.code` SHUTTING_DOWN so a client can tell it from a cancel.
 */
export function shutdownStop(): RunStop {
  return new RunStop(
    'cancelled',
    'The service is shutting down; the run was stopped before it finished.',
    { code: 'SHUTTING_DOWN' },
    true,
  );
}

/** Stop reasons a client may simply retry later. */
const RETRYABLE: ReadonlySet<StopReason> = new Set(['ollama_unavailable', 'timeout']);

export function runErrorOf(stop: RunStop, stepIndex: number | undefined): RunError {
  const error: RunError = {
    code: stop.reason,
    message: stop.message,
    retryable: stop.retryable ?? RETRYABLE.has(stop.reason),
  };
  if (stepIndex !== undefined) error.step_index = stepIndex;
  if (stop.details !== undefined) error.details = stop.details;
  return error;
}

/** A new run object in `queued`. */
export function newRun(fields: {
  id: string;
  agent: AgentRun['agent'];
  model: string;
  createdAt: string;
  metadata: Record<string, string>;
  webhook: AgentRun['webhook'];
}): AgentRun {
  return {
    id: fields.id,
    object: 'agent.run',
    status: 'queued',
    stop_reason: null,
    agent: fields.agent,
    model: fields.model,
    created_at: fields.createdAt,
    started_at: null,
    completed_at: null,
    output: { text: '', messages: [] },
    steps: [],
    usage: {
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      model_calls: 0,
      tool_calls: 0,
      wall_ms: 0,
    },
    error: null,
    metadata: fields.metadata,
    webhook: fields.webhook,
    required_action: null,
  };
}

/** A copy for a response, an event or a webhook: later progress does not change what was sent. */
export function snapshot(run: AgentRun): AgentRun {
  return structuredClone(run);
}

/** At most `max` characters, marked when cut. */
export function preview(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

/** The gateway's timings of the run's finished model calls, in step order (for Server-Timing). */
export function modelCallTimings(run: AgentRun): CallTimings[] {
  const timings: CallTimings[] = [];
  for (const step of run.steps) {
    if (step.kind !== 'model' || !step.ollama) continue;
    const { queue_ms, first_byte_ms, last_byte_ms } = step.ollama;
    timings.push({
      queueMs: queue_ms,
      ...(first_byte_ms !== null ? { firstByteMs: first_byte_ms } : {}),
      ...(last_byte_ms !== null ? { ollamaMs: last_byte_ms } : {}),
    });
  }
  return timings;
}

/** The first finished model call's timings, if there is one yet. */
export function firstModelTimings(run: AgentRun): CallTimings | undefined {
  return modelCallTimings(run)[0];
}
