import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ErrorCode } from '../../src/errors';
import type { InferenceEvent, Telemetry } from '../telemetry';
import * as buckets from './buckets';
import {
  createCappedLabeler,
  createEnumLabeler,
  createModelLabeler,
  createNameLabeler,
  HTTP_METHODS,
  RUN_STATUSES,
  STOP_REASONS,
} from './labels';
import { registerStateGauges, type MetricsState } from './state-gauges';

export type { MetricsState } from './state-gauges';

export interface MetricsOptions {
  /** The app's own registry (never prom-client's global one). */
  registry: Registry;
  /** For `app_info`. */
  build: { version: string };
  /** For `app_info`; the running Node by default. */
  nodeVersion?: string;
  /** Installed model names Ollama lists (cached); any other model is labelled `other`. */
  knownModels?: () => readonly string[];
  /** Registered agent names; `inline` is always allowed; others are `other`. */
  knownAgents?: () => readonly string[];
  /** Registered tool names; others are `other`. */
  knownTools?: () => readonly string[];
  /** Getters the state gauges read at scrape time. */
  state?: MetricsState;
  /** Node process metrics (`process_*`, `nodejs_*`); on unless false. */
  defaultMetrics?: boolean;
}

export type HttpLabel = 'method' | 'route' | 'status_code';

/** The HTTP instruments, recorded by middleware/http-metrics. */
export interface HttpInstruments {
  requests: Counter<HttpLabel>;
  duration: Histogram<HttpLabel>;
  inFlight: Gauge;
  /** A request method, or `other` (Node accepts ~30 methods; only these are worth a series). */
  method(method: string): string;
}

/** Everything that records metrics; it is also the app's {@link Telemetry}. */
export interface Metrics extends Telemetry {
  readonly registry: Registry;
  readonly http: HttpInstruments;
  /** One error response, by catalogued code (the error handler's `onError`). */
  error(code: ErrorCode): void;
  /**
   * One request refused by a rate limiter. Pass the route template or the limiter's budget
   * name, never a raw URL; past 50 distinct values new ones are labelled `other`.
   */
  rateLimited(route: string): void;
  /** The label a model name gets (`other` unless Ollama lists it). */
  modelLabel(model: string): string;
}

/** Outcomes of calls that reached Ollama; the others were refused before and took no time there. */
const RAN_OUTCOMES = new Set<InferenceEvent['outcome']>([
  'success',
  'error',
  'timeout',
  'cancelled',
]);
const RATE_LIMITED_ROUTES_MAX = 50;
const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const isCount = (n: number | undefined): n is number =>
  n !== undefined && Number.isFinite(n) && n > 0;
const isDuration = (n: number | undefined): n is number =>
  n !== undefined && Number.isFinite(n) && n >= 0;

/**
 * Builds every metric of the service on `registry` and returns the recorder. Hooks never throw
 * and never do I/O: label values go through bounded mappings and bad numbers are dropped.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const { registry } = options;
  const registers = [registry];
  const none = (): readonly string[] => [];
  const modelLabel = createModelLabeler(options.knownModels ?? none);
  const agentLabel = createNameLabeler(options.knownAgents ?? none, ['inline']);
  const toolLabel = createNameLabeler(options.knownTools ?? none);
  const statusLabel = createEnumLabeler(RUN_STATUSES);
  const stopReasonLabel = createEnumLabeler(STOP_REASONS);
  const methodLabel = createEnumLabeler(HTTP_METHODS);
  const routeLabel = createCappedLabeler(RATE_LIMITED_ROUTES_MAX);

  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // prom-client names these three gauges `_total`, which Prometheus reserves for counters
    // (`promtool check metrics` rejects them); the same counts by type remain as
    // `nodejs_active_{handles,requests,resources}`, and sum() gives the totals.
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  registerStateGauges(registry, options.state ?? {});

  const http: HttpInstruments = {
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by route template and status.',
      labelNames: ['method', 'route', 'status_code'],
      registers,
    }),
    duration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its response (streams: to the last event).',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [...buckets.HTTP_DURATION_BUCKETS],
      registers,
    }),
    inFlight: new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being served now.',
      registers,
    }),
    method: methodLabel,
  };

  const inferenceRequests = new Counter({
    name: 'inference_requests_total',
    help: 'Ollama calls by model, operation and outcome (refusals by the queue or circuit included).',
    labelNames: ['model', 'operation', 'outcome'],
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
    labelNames: ['model'],
    buckets: [...buckets.TTFT_BUCKETS],
    registers,
  });
  const tokens = new Counter({
    name: 'inference_tokens_total',
    help: 'Tokens Ollama reported: kind="prompt" (prompt_eval_count) or "completion" (eval_count).',
    labelNames: ['model', 'kind'],
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
  const rateLimitHits = new Counter({
    name: 'rate_limit_hits_total',
    help: 'Requests refused by a rate limiter (429 RATE_LIMITED).',
    labelNames: ['route'],
    registers,
  });
  const errors = new Counter({
    name: 'errors_total',
    help: 'Error responses by error code (the catalog in src/errors.ts).',
    labelNames: ['code'],
    registers,
  });
  new Gauge({
    name: 'app_info',
    help: 'Build information; always 1.',
    labelNames: ['version', 'node_version'],
    registers,
  }).set(
    { version: options.build.version, node_version: options.nodeVersion ?? process.version },
    1,
  );

  return {
    registry,
    http,
    modelLabel,
    error: (code) => errors.inc({ code }),
    rateLimited: (route) => rateLimitHits.inc({ route: routeLabel(route) }),

    inference(e) {
      const model = modelLabel(e.model);
      inferenceRequests.inc({ model, operation: e.operation, outcome: e.outcome });
      if (RAN_OUTCOMES.has(e.outcome) && isDuration(e.durationS)) {
        inferenceDuration.observe({ model, operation: e.operation }, e.durationS);
      }
      if (isDuration(e.queueWaitS)) queueWait.observe(e.queueWaitS);
      if (isDuration(e.ttftS)) ttft.observe({ model }, e.ttftS);
      if (isCount(e.promptTokens)) tokens.inc({ model, kind: 'prompt' }, e.promptTokens);
      if (isCount(e.completionTokens))
        tokens.inc({ model, kind: 'completion' }, e.completionTokens);
      if (isCount(e.completionTokens) && isCount(e.evalDurationNs)) {
        tokensPerSecond.observe({ model }, e.completionTokens / (e.evalDurationNs / 1e9));
      }
      if (isDuration(e.loadDurationNs) && e.loadDurationNs / 1e9 > buckets.MODEL_LOAD_MIN_S) {
        modelLoad.observe({ model }, e.loadDurationNs / 1e9);
      }
    },
    healthCheck(e) {
      if (isDuration(e.durationS)) healthCheck.observe(e.durationS);
    },
    modelSwitch(e) {
      switches.inc({ outcome: e.outcome });
      if (isDuration(e.durationS)) switchDuration.observe(e.durationS);
    },
    agentRun(e) {
      const agent = agentLabel(e.agent);
      const stopReason = stopReasonLabel(e.stopReason === '' ? 'none' : e.stopReason);
      runs.inc({ agent, status: statusLabel(e.status), stop_reason: stopReason });
      if (isDuration(e.durationS)) runDuration.observe({ agent }, e.durationS);
    },
    agentStep(e) {
      steps.inc({ agent: agentLabel(e.agent), kind: e.kind });
    },
    toolCall(e) {
      toolCalls.inc({ tool: toolLabel(e.tool), outcome: e.outcome });
    },
    webhook(e) {
      webhooks.inc({ outcome: e.outcome });
    },
  };
}
