import { Counter, Histogram, type Registry } from 'prom-client';
import * as buckets from './buckets';

/**
 * The inference, agent, Ollama and protection instruments, registered on `registry` (the HTTP
 * instruments are built in index.ts, the state gauges in state-gauges.ts). Names carry their
 * unit; help texts are what `/metrics` shows next to each family.
 */
export function createInstruments(registry: Registry) {
  const registers = [registry];
  const inferenceRequests = new Counter({
    name: 'inference_requests_total',
    help: 'Ollama calls by model, operation and outcome (refusals by the queue or circuit included).',
    labelNames: ['api', 'model', 'operation', 'outcome'],
    registers,
  });
  const inferenceDuration = new Histogram({
    name: 'inference_duration_seconds',
    help: 'Ollama calls that ran (success, error, timeout, cancelled), from admission to the last byte.',
    labelNames: ['model', 'operation'],
    buckets: [...buckets.INFERENCE_DURATION_BUCKETS],
    registers,
  });
  const ttft = new Histogram({
    name: 'inference_time_to_first_token_seconds',
    help: 'Streamed generations: from sending to Ollama to the first content token.',
    labelNames: ['api', 'model'],
    buckets: [...buckets.TTFT_BUCKETS],
    registers,
  });
  const tokens = new Counter({
    name: 'inference_tokens_total',
    help: 'Tokens Ollama reported: kind="prompt" (prompt_eval_count) or "completion" (eval_count).',
    labelNames: ['api', 'model', 'kind'],
    registers,
  });
  const keyTokens = new Counter({
    name: 'tokens_total',
    help: 'Tokens Ollama reported per API key id (configured ids; others are "other") and model, by kind (prompt or completion).',
    labelNames: ['key_id', 'model', 'kind'],
    registers,
  });
  const tokensPerSecond = new Histogram({
    name: 'inference_tokens_per_second',
    help: 'Generation speed per call: eval_count / eval_duration as Ollama reports them.',
    labelNames: ['model'],
    buckets: [...buckets.TOKENS_PER_SECOND_BUCKETS],
    registers,
  });
  const modelLoad = new Histogram({
    name: 'inference_model_load_seconds',
    help: `Model loads Ollama reported (load_duration above ${buckets.MODEL_LOAD_MIN_S} s).`,
    labelNames: ['model'],
    buckets: [...buckets.MODEL_LOAD_BUCKETS],
    registers,
  });
  const queueWait = new Histogram({
    name: 'inference_queue_wait_seconds',
    help: "Wait for a free Ollama slot in the gateway's admission queue.",
    labelNames: ['api'],
    buckets: [...buckets.QUEUE_WAIT_BUCKETS],
    registers,
  });
  const healthCheck = new Histogram({
    name: 'ollama_health_check_duration_seconds',
    help: 'Duration of one background Ollama health check.',
    buckets: [...buckets.HEALTH_CHECK_BUCKETS],
    registers,
  });
  const switches = new Counter({
    name: 'model_switch_total',
    help: 'Active model switches by outcome.',
    labelNames: ['outcome'],
    registers,
  });
  const switchDuration = new Histogram({
    name: 'model_switch_duration_seconds',
    help: 'Duration of an active model switch (including the load).',
    buckets: [...buckets.MODEL_LOAD_BUCKETS],
    registers,
  });
  const switchesPropagated = new Counter({
    name: 'model_switches_propagated_total',
    help: 'Active model switches this replica applied after another replica made them.',
    registers,
  });
  const runs = new Counter({
    name: 'agent_runs_total',
    help: 'Finished agent runs by agent, status and stop reason.',
    labelNames: ['agent', 'status', 'stop_reason'],
    registers,
  });
  const runDuration = new Histogram({
    name: 'agent_run_duration_seconds',
    help: 'Duration of finished agent runs.',
    labelNames: ['agent'],
    buckets: [...buckets.AGENT_RUN_BUCKETS],
    registers,
  });
  const steps = new Counter({
    name: 'agent_steps_total',
    help: 'Agent steps by agent and kind (model call or tool call).',
    labelNames: ['agent', 'kind'],
    registers,
  });
  const toolCalls = new Counter({
    name: 'agent_tool_calls_total',
    help: 'Tool calls by tool and outcome.',
    labelNames: ['tool', 'outcome'],
    registers,
  });
  const webhooks = new Counter({
    name: 'webhook_notifications_total',
    help: 'Webhook notifications by final outcome (after retries).',
    labelNames: ['outcome'],
    registers,
  });
  const runTakeovers = new Counter({
    name: 'agent_run_takeovers_total',
    help: 'Runs this replica ended as interrupted (or whose webhook it delivered) after the replica executing them stopped renewing their lease.',
    registers,
  });
  const runRemoteCancels = new Counter({
    name: 'agent_run_remote_cancels_total',
    help: 'Cancels of runs executing on another replica: sent by this replica, or received for a run it executes.',
    labelNames: ['direction'],
    registers,
  });
  const mcpFailures = new Counter({
    name: 'mcp_server_failures_total',
    help: 'Failed connections or tool listings of an MCP tool server (its tools are unavailable until a refresh succeeds).',
    labelNames: ['server'],
    registers,
  });
  const rateLimitHits = new Counter({
    name: 'rate_limit_hits_total',
    help: 'Requests refused by a rate limiter (429 RATE_LIMITED).',
    labelNames: ['route'],
    registers,
  });
  const rateLimitStoreErrors = new Counter({
    name: 'rate_limit_store_errors_total',
    help: 'Requests served without a rate limit because the shared store (Redis) failed (fail open).',
    registers,
  });
  const redisCommands = new Histogram({
    name: 'redis_command_duration_seconds',
    help: 'Redis commands by the part of the service that sent them (group) and outcome (ok, error).',
    labelNames: ['group', 'outcome'],
    buckets: [...buckets.REDIS_COMMAND_BUCKETS],
    registers,
  });
  const errors = new Counter({
    name: 'errors_total',
    help: 'Error responses by error code (the catalog in src/errors.ts).',
    labelNames: ['code'],
    registers,
  });
  return {
    inferenceRequests,
    inferenceDuration,
    ttft,
    tokens,
    keyTokens,
    tokensPerSecond,
    modelLoad,
    queueWait,
    healthCheck,
    switches,
    switchDuration,
    switchesPropagated,
    runs,
    runDuration,
    steps,
    toolCalls,
    webhooks,
    runTakeovers,
    runRemoteCancels,
    mcpFailures,
    rateLimitHits,
    rateLimitStoreErrors,
    redisCommands,
    errors,
  };
}

export type Instruments = ReturnType<typeof createInstruments>;
